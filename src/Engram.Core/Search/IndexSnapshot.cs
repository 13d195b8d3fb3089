using System.Security.Cryptography;
using Engram.Core.Indexing.Text;
using Engram.Core.Indexing.Vector;

namespace Engram.Core.Search;

/// <summary>
/// A snapshot of a <see cref="MemoryIndex"/> in one file next to the store, so a start does not
/// rebuild (and re-embed) everything. Format: "ENGRAMIX", version, the store's id, the applied
/// sequence number, the embedding model and analyzer settings, then the doc table, BM25, the pending
/// set and the HNSW graph; last a SHA-256 of all of it. Written to a temporary file and renamed, so
/// a crash leaves the old snapshot or the new one, never half of one. Any mismatch or damage makes
/// <see cref="TryLoad"/> refuse it with a reason, and the caller rebuilds from the store.
/// </summary>
public static class IndexSnapshot
{
    public const string FileName = "engram.index";
    /// <summary>
    /// 2: the doc table keeps each memory's entities. 3: the lexical index indexes CJK and Thai as bigrams
    /// and carries its typo table. 4: each document's superseded flag. An older snapshot is refused and rebuilt.
    /// </summary>
    private const int FormatVersion = 4;
    private static readonly byte[] Magic = "ENGRAMIX"u8.ToArray();

    /// <summary>Writes <paramref name="index"/> to <paramref name="path"/> atomically; returns the file's size.</summary>
    public static long Save(MemoryIndex index, string path, string storeId, SearchOptions search)
    {
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16))
        {
            using (var writer = new BinaryWriter(file, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Magic);
                writer.Write(FormatVersion);
                writer.Write(storeId);
                index.WriteSnapshot(writer, search);
            }
            file.Flush();
            file.Position = 0;
            var hash = SHA256.HashData(file);
            file.Write(hash);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
        return new FileInfo(path).Length;
    }

    /// <summary>
    /// Checks that the snapshot is whole and belongs to the store (length, checksum, format, store id)
    /// without loading it; null when sound (or absent: <paramref name="exists"/> is false), else why not.
    /// </summary>
    public static string? Verify(string path, string storeId, out bool exists)
    {
        exists = File.Exists(path);
        if (!exists)
        {
            return null;
        }
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            if (file.Length < Magic.Length + 32)
            {
                return "snapshot is truncated";
            }
            var stored = new byte[32];
            file.Position = file.Length - 32;
            file.ReadExactly(stored);
            file.Position = 0;
            if (!SHA256.HashData(new BoundedStream(file, file.Length - 32)).AsSpan().SequenceEqual(stored))
            {
                return "snapshot checksum does not match (damaged file)";
            }
            file.Position = 0;
            using var reader = new BinaryReader(file, System.Text.Encoding.UTF8, leaveOpen: true);
            if (!reader.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic) || reader.ReadInt32() != FormatVersion)
            {
                return "not a snapshot of this format version";
            }
            return reader.ReadString() != storeId ? "snapshot belongs to another store (restored or replaced database)" : null;
        }
        catch (Exception ex) when (ex is IOException or EndOfStreamException or InvalidDataException or UnauthorizedAccessException)
        {
            return "snapshot unreadable: " + ex.Message;
        }
    }

    /// <summary>Loads the snapshot, or returns null with the reason it cannot be used.</summary>
    public static MemoryIndex? TryLoad(string path, string storeId, string embeddingModel, SearchOptions search,
        Func<int, IVectorIndex> createVectorIndex, out string reason)
    {
        if (!File.Exists(path))
        {
            reason = "no snapshot";
            return null;
        }
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            if (file.Length < Magic.Length + 32)
            {
                reason = "snapshot is truncated";
                return null;
            }
            // Verify the checksum over the whole body before trusting a single field.
            var stored = new byte[32];
            file.Position = file.Length - 32;
            file.ReadExactly(stored);
            file.Position = 0;
            var actual = SHA256.HashData(new BoundedStream(file, file.Length - 32));
            if (!actual.AsSpan().SequenceEqual(stored))
            {
                reason = "snapshot checksum does not match (damaged file)";
                return null;
            }
            file.Position = 0;
            using var reader = new BinaryReader(file, System.Text.Encoding.UTF8, leaveOpen: true);
            if (!reader.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic) || reader.ReadInt32() != FormatVersion)
            {
                reason = "not a snapshot of this format version";
                return null;
            }
            if (reader.ReadString() != storeId)
            {
                reason = "snapshot belongs to another store (restored or replaced database)";
                return null;
            }
            return MemoryIndex.ReadSnapshot(reader, embeddingModel, search, createVectorIndex, out reason);
        }
        catch (Exception ex) when (ex is IOException or EndOfStreamException or InvalidDataException or ArgumentException or UnauthorizedAccessException)
        {
            reason = "snapshot unreadable: " + ex.Message;
            return null;
        }
    }

    /// <summary>The first <c>length</c> bytes of a stream, read-only (to hash a file without its trailer).</summary>
    private sealed class BoundedStream(Stream inner, long length) : Stream
    {
        private readonly long _length = length;
        private long _remaining = length;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => _length;

        public override long Position { get => _length - _remaining; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var read = inner.Read(buffer, offset, (int)Math.Min(count, _remaining));
            _remaining -= read;
            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
