using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace Engram.Core.Embeddings;

/// <summary>
/// Word vectors in Engram's compact binary format (tools/embeddings/README.md): a vocabulary in frequency-rank
/// order and one vector per word, int8 with a float32 scale per vector (or plain float32). Immutable and thread-safe.
/// </summary>
public sealed class WordVectorModel
{
    /// <summary>The manifest resource name of the built-in model inside Engram.Core.</summary>
    public const string EmbeddedResourceName = "Engram.Core.Embeddings.glove6b-100d-int8.bin";

    /// <summary>"ENGRAMWV" as the first eight bytes of the file.</summary>
    public static ReadOnlySpan<byte> Magic => "ENGRAMWV"u8;

    public const int FormatVersion = 1;
    public const int HeaderSize = 20;

    private static readonly Lazy<WordVectorModel> EmbeddedInstance = new(LoadEmbeddedCore, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly Dictionary<string, int> _index;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly string[] _words;
    private readonly float[] _scales;   // int8 only: one scale per word
    private readonly sbyte[] _quantized; // int8 only
    private readonly float[] _floats;    // float32 only

    private WordVectorModel(string modelId, WordVectorType type, int dimensions, string[] words, float[] scales, sbyte[] quantized, float[] floats)
    {
        ModelId = modelId;
        Type = type;
        Dimensions = dimensions;
        _words = words;
        _scales = scales;
        _quantized = quantized;
        _floats = floats;
        _index = new Dictionary<string, int>(words.Length, StringComparer.Ordinal);
        var longest = 0;
        for (var i = 0; i < words.Length; i++)
        {
            _index.TryAdd(words[i], i);
            longest = Math.Max(longest, words[i].Length);
        }
        _lookup = _index.GetAlternateLookup<ReadOnlySpan<char>>();
        LongestWord = longest;
    }

    /// <summary>The model id stored in the file, e.g. "builtin-glove6b-100d-int8-v1".</summary>
    public string ModelId { get; }

    public WordVectorType Type { get; }

    public int Dimensions { get; }

    /// <summary>Number of words; word i has frequency rank i + 1 in the source vocabulary (most frequent first).</summary>
    public int Count => _words.Length;

    /// <summary>Length in chars of the longest word: longer tokens cannot be in the vocabulary.</summary>
    public int LongestWord { get; }

    /// <summary>The model embedded in Engram.Core, loaded on first use and shared by the process.</summary>
    public static WordVectorModel Embedded => EmbeddedInstance.Value;

    public string Word(int index) => _words[index];

    /// <summary>Looks up an exact (already lowercased) word without allocating; returns its index or -1.</summary>
    public int IndexOf(ReadOnlySpan<char> word) => _lookup.TryGetValue(word, out var index) ? index : -1;

    /// <summary>Adds <paramref name="weight"/> times word <paramref name="index"/>'s vector to <paramref name="destination"/>.</summary>
    public void AddScaled(int index, float weight, Span<float> destination)
    {
        var dims = Dimensions;
        if (destination.Length != dims)
        {
            throw new ArgumentException($"destination must have {dims} elements", nameof(destination));
        }
        if (Type == WordVectorType.Float32)
        {
            TensorPrimitives.MultiplyAdd(_floats.AsSpan(index * dims, dims), weight, destination, destination);
            return;
        }
        var scale = weight * _scales[index];
        var source = _quantized.AsSpan(index * dims, dims);
        if (Avx2.IsSupported && Fma.IsSupported)
        {
            AddScaledAvx2(source, scale, destination);
            return;
        }
        Span<float> buffer = stackalloc float[dims];
        TensorPrimitives.ConvertChecked<sbyte, float>(source, buffer);
        TensorPrimitives.MultiplyAdd(buffer, scale, destination, destination);
    }

    /// <summary>Dequantize and accumulate in one pass: 8 int8 values sign-extended, converted and fused-multiply-added at a time.</summary>
    private static unsafe void AddScaledAvx2(ReadOnlySpan<sbyte> source, float scale, Span<float> destination)
    {
        fixed (sbyte* src = source)
        fixed (float* dst = destination)
        {
            var factor = Vector256.Create(scale);
            var d = 0;
            for (; d + 8 <= source.Length; d += 8)
            {
                var values = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(src + d));
                Avx.Store(dst + d, Fma.MultiplyAdd(values, factor, Avx.LoadVector256(dst + d)));
            }
            for (; d < source.Length; d++)
            {
                dst[d] = MathF.FusedMultiplyAdd(src[d], scale, dst[d]);
            }
        }
    }

    /// <summary>Copies word <paramref name="index"/>'s (dequantized) vector into <paramref name="destination"/>.</summary>
    public void CopyVector(int index, Span<float> destination)
    {
        destination[..Dimensions].Clear();
        AddScaled(index, 1f, destination[..Dimensions]);
    }

    /// <summary>Loads a model file from disk.</summary>
    public static WordVectorModel Load(string path) => Parse(File.ReadAllBytes(path));

    /// <summary>Loads a model from a stream (read to its end).</summary>
    public static WordVectorModel Load(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.CanSeek)
        {
            var bytes = new byte[stream.Length - stream.Position];
            stream.ReadExactly(bytes);
            return Parse(bytes);
        }
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Parse(copy.ToArray());
    }

    private static WordVectorModel LoadEmbeddedCore()
    {
        using var stream = typeof(WordVectorModel).Assembly.GetManifestResourceStream(EmbeddedResourceName)
            ?? throw new InvalidOperationException($"embedded resource {EmbeddedResourceName} is missing from Engram.Core");
        return Load(stream);
    }

    /// <summary>Parses the documented format; throws <see cref="InvalidDataException"/> on anything unexpected.</summary>
    public static WordVectorModel Parse(ReadOnlySpan<byte> data)
    {
        var header = ReadHeader(data);
        var offset = HeaderSize + header.ModelIdLength;
        var vocabBytes = (int)BinaryPrimitives.ReadUInt32LittleEndian(Slice(data, offset, 4));
        offset += 4;
        var vocab = Slice(data, offset, vocabBytes);
        var words = new string[header.Count];
        var pos = 0;
        for (var i = 0; i < words.Length; i++)
        {
            var length = Slice(vocab, pos, 1)[0];
            words[i] = Encoding.UTF8.GetString(Slice(vocab, pos + 1, length));
            pos += 1 + length;
        }
        if (pos != vocabBytes)
        {
            throw new InvalidDataException("word vector file: vocabulary size does not match its header");
        }
        offset += vocabBytes;
        offset += (4 - offset % 4) % 4;
        var values = header.Count * header.Dimensions;
        float[] scales = [], floats = [];
        sbyte[] quantized = [];
        if (header.Type == WordVectorType.Int8)
        {
            scales = MemoryMarshal.Cast<byte, float>(Slice(data, offset, header.Count * 4)).ToArray();
            offset += header.Count * 4;
            quantized = MemoryMarshal.Cast<byte, sbyte>(Slice(data, offset, values)).ToArray();
            offset += values;
        }
        else
        {
            floats = MemoryMarshal.Cast<byte, float>(Slice(data, offset, values * 4)).ToArray();
            offset += values * 4;
        }
        if (offset != data.Length)
        {
            throw new InvalidDataException($"word vector file: {data.Length - offset} unexpected trailing bytes");
        }
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("word vector files are little-endian");
        }
        return new WordVectorModel(header.ModelId, header.Type, header.Dimensions, words, scales, quantized, floats);
    }

    /// <summary>Reads and validates the fixed header and the model id.</summary>
    public static WordVectorHeader ReadHeader(ReadOnlySpan<byte> data)
    {
        if (data.Length < HeaderSize || !data[..8].SequenceEqual(Magic))
        {
            throw new InvalidDataException("not an Engram word vector file (bad magic)");
        }
        var version = BinaryPrimitives.ReadUInt16LittleEndian(data[8..]);
        if (version != FormatVersion)
        {
            throw new InvalidDataException($"word vector file version {version} is not supported (expected {FormatVersion})");
        }
        var type = (WordVectorType)data[10];
        if (type is not (WordVectorType.Int8 or WordVectorType.Float32))
        {
            throw new InvalidDataException($"word vector file: unknown value type {data[10]}");
        }
        var idLength = data[11];
        var dims = (int)BinaryPrimitives.ReadUInt32LittleEndian(data[12..]);
        var count = (int)BinaryPrimitives.ReadUInt32LittleEndian(data[16..]);
        if (dims is <= 0 or > 4096 || count is <= 0 or > 10_000_000)
        {
            throw new InvalidDataException($"word vector file: implausible shape {count} x {dims}");
        }
        var modelId = Encoding.UTF8.GetString(Slice(data, HeaderSize, idLength));
        return new WordVectorHeader(version, type, dims, count, modelId, idLength);
    }

    private static ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> data, int offset, int length) =>
        offset >= 0 && length >= 0 && (long)offset + length <= data.Length
            ? data.Slice(offset, length)
            : throw new InvalidDataException("word vector file is truncated");
}

/// <summary>How vectors are stored in a word vector file (header byte 10).</summary>
public enum WordVectorType : byte
{
    /// <summary>int8 values; each vector has its own float32 scale (value = q * scale).</summary>
    Int8 = 1,

    /// <summary>float32 values.</summary>
    Float32 = 2,
}

/// <summary>The fixed header of a word vector file.</summary>
public sealed record WordVectorHeader(int Version, WordVectorType Type, int Dimensions, int Count, string ModelId, int ModelIdLength);
