using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Engram.Core.Embeddings.Transformer;

namespace Engram.AnnBench;

/// <summary>
/// 384-dimension vectors of real sentences: the turns of ../shared/data/locomo-dev and lme-dev (long turns cut into
/// pieces of at most 64 words, duplicates dropped), embedded as documents by the transformer embedder. Embedding
/// is slow (tens to hundreds of texts a second), so the vectors are cached under /var/tmp/engram-bench and a run
/// only continues where the last one stopped, within a time box.
/// </summary>
internal static class SentenceVectors
{
    private const int PieceWords = 64;

    public static float[] Load(TransformerModel model, int limit, TimeSpan budget, out int count)
    {
        var texts = Texts().Take(limit).ToList();
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', texts))))[..12].ToLowerInvariant();
        Directory.CreateDirectory(BenchPaths.CacheRoot);
        var cache = Path.Combine(BenchPaths.CacheRoot, $"sentences-{model.Name}-{key}.f32");
        var rowBytes = model.Dimensions * sizeof(float);
        var done = File.Exists(cache) ? (int)(new FileInfo(cache).Length / rowBytes) : 0;
        Console.WriteLine($"sentences: {texts.Count} distinct texts (turns, pieces of <= {PieceWords} words); {done} already embedded in {cache}");
        if (done < texts.Count)
        {
            using var embedder = new TransformerEmbeddingProvider(model);
            using var file = new FileStream(cache, FileMode.Append, FileAccess.Write);
            var clock = Stopwatch.StartNew();
            var start = done;
            while (done < texts.Count && clock.Elapsed < budget)
            {
                var batch = texts.GetRange(done, Math.Min(256, texts.Count - done));
                foreach (var vector in embedder.Embed(batch, query: false))
                {
                    file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(vector.AsSpan()));
                }
                file.Flush();
                done += batch.Count;
                Console.Write($"\rsentences: embedded {done}/{texts.Count} ({(done - start) / clock.Elapsed.TotalSeconds:F0} texts/s)   ");
            }
            Console.WriteLine();
        }
        count = done;
        var bytes = File.ReadAllBytes(cache);
        var vectors = new float[count * model.Dimensions];
        Buffer.BlockCopy(bytes, 0, vectors, 0, vectors.Length * sizeof(float));
        return vectors;
    }

    private static IEnumerable<string> Texts()
    {
        var root = DataRoot() ?? throw new InvalidOperationException("no ../shared/data/locomo-dev (set ENGRAM_BENCH_DATA to the folder holding locomo-dev and lme-dev)");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var folder in new[] { "locomo-dev", "lme-dev" })
        {
            var path = Path.Combine(root, folder);
            if (!Directory.Exists(path))
            {
                continue;
            }
            foreach (var file in Directory.EnumerateFiles(path, "*.json").Order(StringComparer.Ordinal))
            {
                using var document = JsonDocument.Parse(File.ReadAllBytes(file));
                foreach (var property in document.RootElement.EnumerateObject())
                {
                    if (!property.Name.StartsWith("session_", StringComparison.Ordinal) || property.Value.ValueKind != JsonValueKind.Array)
                    {
                        continue;
                    }
                    foreach (var turn in property.Value.EnumerateArray())
                    {
                        if (!turn.TryGetProperty("text", out var text) || text.GetString() is not { Length: > 0 } value)
                        {
                            continue;
                        }
                        var words = value.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                        for (var w = 0; w < words.Length; w += PieceWords)
                        {
                            var piece = string.Join(' ', words.Skip(w).Take(PieceWords));
                            if (seen.Add(piece))
                            {
                                yield return piece;
                            }
                        }
                    }
                }
            }
        }
    }

    private static string? DataRoot()
    {
        foreach (var candidate in new[] { Environment.GetEnvironmentVariable("ENGRAM_BENCH_DATA"), "../shared/data", "../../shared/data", "/work/shared/data" })
        {
            if (candidate is not null && Directory.Exists(Path.Combine(candidate, "locomo-dev")))
            {
                return candidate;
            }
        }
        return null;
    }
}
