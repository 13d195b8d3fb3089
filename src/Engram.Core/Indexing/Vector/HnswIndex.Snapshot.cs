using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Engram.Core.Indexing.Vector;

/// <summary>
/// Binary snapshot, little-endian: a fixed header (magic "ENGRAMHN", format version, options, counts, level-generator
/// state) with its own checksum, then sections, each a byte length, the raw arrays exactly as held in memory
/// (rows padded as in memory, so loading is a straight copy), and a 64-bit checksum. Loading checks every checksum
/// and every structural invariant (ids in range, list sizes, levels, tombstone count), so a corrupt or truncated
/// snapshot throws <see cref="InvalidDataException"/> instead of producing an index that crashes or lies later.
/// </summary>
public sealed unsafe partial class HnswIndex
{
    public const int SnapshotVersion = 1;
    private const int HeaderSize = 72;

    private static ReadOnlySpan<byte> SnapshotMagic => "ENGRAMHN"u8;

    /// <summary>Writes a snapshot of the index; concurrent searches continue, writers wait.</summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        EnsureLittleEndian();
        _lock.EnterReadLock();
        try
        {
            Span<byte> header = stackalloc byte[HeaderSize];
            SnapshotMagic.CopyTo(header);
            BinaryPrimitives.WriteInt32LittleEndian(header[8..], SnapshotVersion);
            BinaryPrimitives.WriteInt32LittleEndian(header[12..], Dimensions);
            BinaryPrimitives.WriteInt32LittleEndian(header[16..], (int)_options.Quantization);
            BinaryPrimitives.WriteInt32LittleEndian(header[20..], _options.M);
            BinaryPrimitives.WriteInt32LittleEndian(header[24..], _options.EfConstruction);
            BinaryPrimitives.WriteInt32LittleEndian(header[28..], _options.EfSearch);
            BinaryPrimitives.WriteInt32LittleEndian(header[32..], _options.ExactSearchThreshold);
            BinaryPrimitives.WriteUInt64LittleEndian(header[36..], _options.Seed);
            BinaryPrimitives.WriteUInt64LittleEndian(header[44..], _rngState);
            BinaryPrimitives.WriteInt32LittleEndian(header[52..], _nodeCount);
            BinaryPrimitives.WriteInt32LittleEndian(header[56..], _entry);
            BinaryPrimitives.WriteInt32LittleEndian(header[60..], _maxLevel);
            BinaryPrimitives.WriteUInt64LittleEndian(header[64..], Checksum(header[..64]));
            stream.Write(header);

            var n = _nodeCount;
            WriteSection(stream, MemoryMarshal.AsBytes(_docOfNode.AsSpan(0, n)));
            WriteSection(stream, _levels.AsSpan(0, n));
            WriteSection(stream, MemoryMarshal.AsBytes(_deleted.AsSpan(0, n)));
            if (_quantized)
            {
                WriteSection(stream, MemoryMarshal.AsBytes(_codes.Span[..(n * _codeStride)]));
                WriteSection(stream, MemoryMarshal.AsBytes(_scales.Span[..n]));
            }
            if (_hasFloats)
            {
                WriteSection(stream, MemoryMarshal.AsBytes(_vectors.Span[..(n * _floatStride)]));
            }
            WriteSection(stream, MemoryMarshal.AsBytes(_links0.Span[..(n * _stride0)]));
            WriteSection(stream, MemoryMarshal.AsBytes(_linksUpper.Span[.._upperUsed]));
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Reads a snapshot written by <see cref="Save"/>; throws <see cref="InvalidDataException"/> if it is damaged.</summary>
    public static HnswIndex Load(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        EnsureLittleEndian();
        try
        {
            return LoadCore(stream);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("HNSW snapshot is truncated", e);
        }
    }

    private static HnswIndex LoadCore(Stream stream)
    {
        Span<byte> header = stackalloc byte[HeaderSize];
        stream.ReadExactly(header);
        if (!header[..8].SequenceEqual(SnapshotMagic))
        {
            throw new InvalidDataException("not an HNSW snapshot (bad magic)");
        }
        if (BinaryPrimitives.ReadUInt64LittleEndian(header[64..]) != Checksum(header[..64]))
        {
            throw new InvalidDataException("HNSW snapshot header checksum mismatch");
        }
        var version = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        if (version != SnapshotVersion)
        {
            throw new InvalidDataException($"HNSW snapshot version {version} is not supported (expected {SnapshotVersion})");
        }
        var dimensions = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        HnswOptions options;
        HnswIndex index;
        try
        {
            options = new HnswOptions
            {
                Quantization = (VectorQuantization)BinaryPrimitives.ReadInt32LittleEndian(header[16..]),
                M = BinaryPrimitives.ReadInt32LittleEndian(header[20..]),
                EfConstruction = BinaryPrimitives.ReadInt32LittleEndian(header[24..]),
                EfSearch = BinaryPrimitives.ReadInt32LittleEndian(header[28..]),
                ExactSearchThreshold = BinaryPrimitives.ReadInt32LittleEndian(header[32..]),
                Seed = BinaryPrimitives.ReadUInt64LittleEndian(header[36..]),
            };
            ArgumentOutOfRangeException.ThrowIfGreaterThan(dimensions, 1 << 16, nameof(dimensions));
            index = new HnswIndex(dimensions, options);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"HNSW snapshot has invalid options: {e.Message}", e);
        }
        var n = BinaryPrimitives.ReadInt32LittleEndian(header[52..]);
        var entry = BinaryPrimitives.ReadInt32LittleEndian(header[56..]);
        var maxLevel = BinaryPrimitives.ReadInt32LittleEndian(header[60..]);
        if (n < 0 || entry < -1 || entry >= n || maxLevel < -1 || maxLevel > MaxLevel || (entry < 0) != (maxLevel < 0))
        {
            throw new InvalidDataException("HNSW snapshot header is inconsistent");
        }
        index._rngState = BinaryPrimitives.ReadUInt64LittleEndian(header[44..]);
        index.Restore(stream, n, entry, maxLevel);
        return index;
    }

    private void Restore(Stream stream, int n, int entry, int maxLevel)
    {
        if (n > _capacity)
        {
            Grow(n);
        }
        ReadSection(stream, MemoryMarshal.AsBytes(_docOfNode.AsSpan(0, n)));
        ReadSection(stream, _levels.AsSpan(0, n));
        ReadSection(stream, MemoryMarshal.AsBytes(_deleted.AsSpan(0, n)));
        if (_quantized)
        {
            ReadSection(stream, MemoryMarshal.AsBytes(_codes.Span[..(n * _codeStride)]));
            ReadSection(stream, MemoryMarshal.AsBytes(_scales.Span[..n]));
        }
        if (_hasFloats)
        {
            ReadSection(stream, MemoryMarshal.AsBytes(_vectors.Span[..(n * _floatStride)]));
        }
        ReadSection(stream, MemoryMarshal.AsBytes(_links0.Span[..(n * _stride0)]));

        // Upper lists were reserved in insertion order, so their offsets are the running sum of the levels.
        var upper = 0L;
        for (var node = 0; node < n; node++)
        {
            var level = _levels[node];
            if (level > MaxLevel)
            {
                throw new InvalidDataException($"HNSW snapshot: node {node} has level {level}");
            }
            _upperOffset[node] = level > 0 ? (int)upper : -1;
            upper += level * _strideUpper;
        }
        if (upper > int.MaxValue)
        {
            throw new InvalidDataException("HNSW snapshot: upper layers too large");
        }
        _upperUsed = (int)upper;
        if (_upperUsed > _linksUpper.Length)
        {
            _linksUpper = new PinnedBlock<int>(_upperUsed);
        }
        ReadSection(stream, MemoryMarshal.AsBytes(_linksUpper.Span[.._upperUsed]));

        var live = 0;
        var deleted = MemoryMarshal.AsBytes(_deleted.AsSpan(0, n));
        for (var node = 0; node < n; node++)
        {
            if (deleted[node] > 1)
            {
                throw new InvalidDataException($"HNSW snapshot: node {node} has an invalid tombstone flag");
            }
            var doc = _docOfNode[node];
            if (doc < 0)
            {
                throw new InvalidDataException($"HNSW snapshot: node {node} has a negative document number");
            }
            if (doc >= _nodeOfDoc.Length)
            {
                Array.Resize(ref _nodeOfDoc, Math.Max(doc + 1, _nodeOfDoc.Length * 2));
            }
            var previous = _nodeOfDoc[doc] - 1;
            if (!_deleted[node])
            {
                if (previous >= 0 && !_deleted[previous])
                {
                    throw new InvalidDataException($"HNSW snapshot: document {doc} is live twice");
                }
                live++;
                _nodeOfDoc[doc] = node + 1;
            }
            else if (previous < 0)
            {
                _nodeOfDoc[doc] = node + 1;
            }
            for (var layer = 0; layer <= _levels[node]; layer++)
            {
                ValidateLinks(node, layer, n);
            }
        }
        if (entry >= 0 && _levels[entry] != maxLevel)
        {
            throw new InvalidDataException("HNSW snapshot: entry point is not on the top layer");
        }
        _nodeCount = n;
        _liveCount = live;
        _deletedCount = n - live;
        _entry = entry;
        _maxLevel = maxLevel;
    }

    private void ValidateLinks(int node, int layer, int n)
    {
        var links = Links(node, layer);
        var count = links[0];
        if (count < 0 || count > (layer == 0 ? _m0 : _m))
        {
            throw new InvalidDataException($"HNSW snapshot: node {node} has {count} links on layer {layer}");
        }
        for (var i = 1; i <= count; i++)
        {
            var target = links[i];
            if (target < 0 || target >= n || target == node || _levels[target] < layer)
            {
                throw new InvalidDataException($"HNSW snapshot: node {node} links to invalid node {target} on layer {layer}");
            }
        }
    }

    private static void WriteSection(Stream stream, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(word, data.Length);
        stream.Write(word);
        stream.Write(data);
        BinaryPrimitives.WriteUInt64LittleEndian(word, Checksum(data));
        stream.Write(word);
    }

    private static void ReadSection(Stream stream, Span<byte> destination)
    {
        Span<byte> word = stackalloc byte[8];
        stream.ReadExactly(word);
        var length = BinaryPrimitives.ReadInt64LittleEndian(word);
        if (length != destination.Length)
        {
            throw new InvalidDataException($"HNSW snapshot section has {length} bytes, expected {destination.Length}");
        }
        stream.ReadExactly(destination);
        stream.ReadExactly(word);
        if (BinaryPrimitives.ReadUInt64LittleEndian(word) != Checksum(destination))
        {
            throw new InvalidDataException("HNSW snapshot section checksum mismatch");
        }
    }

    /// <summary>
    /// A fast 64-bit checksum (multiply-rotate per 8-byte word, xxHash's finaliser): catches corruption and
    /// truncation, not deliberate tampering.
    /// </summary>
    internal static ulong Checksum(ReadOnlySpan<byte> data)
    {
        const ulong Prime1 = 0x9E3779B185EBCA87UL;
        const ulong Prime2 = 0xC2B2AE3D27D4EB4FUL;
        var hash = ((ulong)data.Length * Prime1) ^ Prime2;
        var words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (var word in words)
        {
            hash = BitOperations.RotateLeft(hash ^ (word * Prime2), 31) * Prime1;
        }
        foreach (var b in data[(words.Length * 8)..])
        {
            hash = BitOperations.RotateLeft(hash ^ (b * Prime2), 11) * Prime1;
        }
        hash ^= hash >> 33;
        hash *= Prime2;
        hash ^= hash >> 29;
        hash *= 0x165667B19E3779F9UL;
        hash ^= hash >> 32;
        return hash;
    }

    private static void EnsureLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("HNSW snapshots are little-endian");
        }
    }
}
