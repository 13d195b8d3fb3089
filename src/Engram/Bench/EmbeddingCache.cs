using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Engram.Core.Embeddings;

namespace Engram.Cli.Bench;

/// <summary>
/// A disk cache of vectors in front of an embedder, for the benchmark only: a transformer needs minutes for
/// LongMemEval's 30k turns, and a tuning run should embed nothing it has embedded before. One append-only
/// file per model id (<c>&lt;dir&gt;/&lt;model id&gt;.vec</c>) of records [SHA-256 of role + text][dimensions
/// float32]; a torn last record (an interrupted run) is ignored. Thread-safe; cached vectors are shared, so
/// callers must not change them (the index copies what it keeps).
/// </summary>
public sealed class CachedEmbeddingProvider : IEmbeddingProvider, IDisposable
{
    private readonly IEmbeddingProvider _inner;
    private readonly Dictionary<string, float[]> _vectors = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly FileStream _file;

    public CachedEmbeddingProvider(IEmbeddingProvider inner, string directory)
    {
        _inner = inner;
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, string.Concat(inner.ModelId.Select(c => char.IsLetterOrDigit(c) || c is '-' or '.' ? c : '_')) + $"-{inner.Dimensions}.vec");
        _file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        var record = 32 + (inner.Dimensions * sizeof(float));
        var buffer = new byte[record];
        while (_file.Length - _file.Position >= record)
        {
            _file.ReadExactly(buffer);
            _vectors[Convert.ToHexString(buffer, 0, 32)] = MemoryMarshal.Cast<byte, float>(buffer.AsSpan(32)).ToArray();
        }
        _file.Seek(0, SeekOrigin.End);
        _file.Position -= (_file.Length % record); // overwrite a torn tail
        Loaded = _vectors.Count;
    }

    /// <summary>Vectors read from disk at start.</summary>
    public int Loaded { get; }

    /// <summary>Texts this run had to embed (cache misses).</summary>
    public int Embedded { get; private set; }

    public string ModelId => _inner.ModelId;

    public int Dimensions => _inner.Dimensions;

    public async ValueTask<float[]> EmbedAsync(string text, CancellationToken ct = default) =>
        (await EmbedBatchAsync([text], ct).ConfigureAwait(false))[0];

    public async ValueTask<float[]> EmbedQueryAsync(string text, CancellationToken ct = default)
    {
        var key = Key("q", text);
        if (TryGet(key) is { } hit)
        {
            return hit;
        }
        var vector = await _inner.EmbedQueryAsync(text, ct).ConfigureAwait(false);
        Store([(key, vector)]);
        return vector;
    }

    public async ValueTask<float[][]> EmbedBatchAsync(IReadOnlyList<string> texts, CancellationToken ct = default)
    {
        var result = new float[texts.Count][];
        var keys = texts.Select(t => Key("d", t)).ToArray();
        var missing = new List<int>();
        for (var i = 0; i < texts.Count; i++)
        {
            if (TryGet(keys[i]) is { } hit)
            {
                result[i] = hit;
            }
            else
            {
                missing.Add(i);
            }
        }
        if (missing.Count > 0)
        {
            var vectors = await _inner.EmbedBatchAsync(missing.Select(i => texts[i]).ToList(), ct).ConfigureAwait(false);
            for (var j = 0; j < missing.Count; j++)
            {
                result[missing[j]] = vectors[j];
            }
            Store(missing.Select((i, j) => (keys[i], vectors[j])).ToList());
        }
        return result;
    }

    private float[]? TryGet(string key)
    {
        lock (_gate)
        {
            return _vectors.TryGetValue(key, out var v) ? v : null;
        }
    }

    private void Store(IReadOnlyList<(string Key, float[] Vector)> entries)
    {
        lock (_gate)
        {
            foreach (var (key, vector) in entries)
            {
                if (!_vectors.TryAdd(key, vector))
                {
                    continue;
                }
                Embedded++;
                _file.Write(Convert.FromHexString(key));
                _file.Write(MemoryMarshal.AsBytes(vector.AsSpan()));
            }
            _file.Flush();
        }
    }

    private static string Key(string role, string text) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(role + "\0" + text)));

    public void Dispose()
    {
        _file.Dispose();
        (_inner as IDisposable)?.Dispose();
    }
}
