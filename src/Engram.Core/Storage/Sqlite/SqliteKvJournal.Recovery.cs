using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Microsoft.Win32.SafeHandles;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Opening the journal: whose it is, and what a crash (or damage) left in it.
/// <para>
/// The file starts with a header (<see cref="FileHeaderBytes"/>) naming the database it belongs to: the random
/// <c>kv_journal_id</c> in that database's store_meta. A journal whose header names another database, or that has none beside
/// a database that already has an id (or was just created), holds another database's acknowledged writes: it is never applied
/// here, and, when it holds records, it is moved aside (<c>engram.db-kvjournal.foreign-…</c>) for its own database, not
/// deleted. A file without a header from before the id existed (the previous release, left by a crash) is replayed once into
/// a database without an id, which then gets one.
/// </para>
/// <para>
/// Records carry their place in their batch (<see cref="Batch"/>). Only the last batch copied into the file can be torn by a
/// crash, and it was not acknowledged until the copy ended: an incomplete last batch is dropped whole (an MSET stays all or
/// nothing). A record missing before an intact later batch cannot be a torn write (that batch was copied after it ended):
/// it is damage (a flipped bit, a bad sector, a tool that edited the file). Then every intact record is still replayed, in
/// order, the file is copied aside (<c>engram.db-kvjournal.damaged-…</c>) and <see cref="Notices"/> names the numbers lost.
/// Refusing to open would not bring the damaged records back (their bytes are gone), would keep the whole store down, and
/// the only way on would be to move the journal away, losing the intact records after the damage as well.
/// </para>
/// </summary>
internal sealed unsafe partial class SqliteKvJournal
{
    /// <summary>The file's header: magic, format, the database's journal id (16 bytes), CRC-32 of what precedes it; records follow.</summary>
    public const int FileHeaderBytes = 32;

    /// <summary>store_meta key of the random id the journal's header must carry (32 hex digits).</summary>
    public const string IdentityKey = "kv_journal_id";

    /// <summary>"EKJ2": read as a record's length by the previous release it is far above any record, so it reads an empty file.</summary>
    private const uint Magic = 0x324A_4B45;

    /// <summary>
    /// The header's format, at bytes 24..28 and covered by its CRC. Format 3 (this release) may hold DEL and expiry records
    /// (<see cref="RecordKind"/>); format 2 (a zero there, and a CRC of the first 20 bytes only) holds SETs and increments.
    /// A release that knows only format 2 computes its CRC over the first 20 bytes, finds it wrong, takes the header for a
    /// damaged one and moves a file that holds records aside unapplied (<c>engram.db-kvjournal.foreign-…</c>): it would
    /// otherwise have applied a DEL or an expiry change as a SET of an empty value. Put back beside the database under this
    /// release, the file is applied.
    /// </summary>
    private const uint Format = 3;

    private const int LegacyFixedPayloadBytes = 24;

    /// <summary>Texts were written as valid UTF-8: bytes that are not were damaged (or are not a record).</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Recovery messages of the open (a journal set aside, damage found), by <see cref="StoreNotice"/> kind: the store records them.</summary>
    public List<(string Kind, string Message)> Notices { get; } = [];

    /// <summary>The bytes before <see cref="_zeroTo"/> may hold records above the applied mark the open did not keep: zeroed by <see cref="Start"/>.</summary>
    private long _zeroTo;

    /// <summary>The header already names this database (<see cref="Start"/> need not write it).</summary>
    private bool _headerIsOurs;

    /// <summary>Newest record kept by the open (the next number follows it).</summary>
    private long _openedNewest;

    /// <summary>A new random journal id, as store_meta holds it (32 hex digits).</summary>
    public static string NewIdentity() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    /// <summary>The database's journal id as store_meta holds it, or null when it has none yet.</summary>
    public static byte[]? ParseIdentity(string? text) =>
        text is { Length: 32 } && text.All(char.IsAsciiHexDigit) ? Convert.FromHexString(text) : null;

    /// <summary>
    /// Opens the journal beside <paramref name="databasePath"/> and takes its lock, or returns null when another process holds
    /// it (that process applies its own records). Records above <paramref name="appliedJsn"/> (left by a crash) wait in it
    /// to be applied: the store applies them and then calls <see cref="Start"/>. Any failure to open a file that is there
    /// (permissions, a read-only file system, a folder in its place) throws: it may hold acknowledged SETs, and a store opened
    /// without them served older values and later, once the file opened again, replayed them over newer writes.
    /// <paramref name="identity"/>: the database's <see cref="IdentityKey"/> (null: it has none yet); with
    /// <paramref name="newDatabase"/> (the database file was just created) any records in the file belong to a database that is gone.
    /// </summary>
    public static SqliteKvJournal? TryOpen(string databasePath, SqliteKvWriteBehind states, long appliedJsn, byte[]? identity, bool newDatabase = false)
    {
        var path = databasePath + Suffix;
        var file = OpenLocked(path);
        if (file is null)
        {
            return null;
        }
        try
        {
            var scan = Read(file.SafeFileHandle, appliedJsn);
            var foreign = Foreign(scan, identity, newDatabase, appliedJsn);
            if (foreign is not null)
            {
                var aside = AsidePath(path, "foreign");
                // Renamed while this process holds it (the lock goes with the open file), then a new file takes its place.
                File.Move(path, aside);
                file.Dispose();
                file = OpenLocked(path) ?? throw new IOException($"'{path}' was taken by another process while its foreign journal was moved aside");
                file.SetLength(0);
                scan = Read(file.SafeFileHandle, appliedJsn);
                foreign = $"The key-value journal '{path}' was not applied: {foreign}. It holds acknowledged writes of that database, so it "
                    + $"was moved to '{aside}'. Put it back beside its own database (as {Path.GetFileName(path)}, with no server running "
                    + "there) to apply them, or delete it if that database is gone.";
            }
            var journal = new SqliteKvJournal(file, states, Math.Max(appliedJsn, scan.Newest) + 1, scan.Records)
            {
                _zeroTo = scan.Extent,
                _headerIsOurs = scan.Identity is { } id && identity is not null && id.AsSpan().SequenceEqual(identity) && scan.Format == Format,
                _openedNewest = scan.Newest,
            };
            if (foreign is not null)
            {
                journal.Notices.Add((StoreNotice.KvJournalForeign, foreign));
            }
            if (scan.Lost > 0 || scan.DamageAmongApplied)
            {
                var copy = AsidePath(path, "damaged");
                File.WriteAllBytes(copy, scan.Bytes);
                journal.Notices.Add((StoreNotice.KvJournalDamaged, scan.Lost > 0
                    ? $"The key-value journal '{path}' is damaged in the middle (not a torn last write: intact records follow the damage): "
                        + $"{scan.Lost} acknowledged write(s) numbered {scan.LostFrom}..{scan.LostTo} cannot be read and are lost; the "
                        + $"{scan.Records.Count} intact record(s) were applied in order. A copy of the file is at '{copy}'. Check the disk."
                    : $"The key-value journal '{path}' is damaged among records already applied: nothing was lost. A copy of the file is "
                        + $"at '{copy}'. Check the disk."));
            }
            journal.Map();
            return journal;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static FileStream? OpenLocked(string path)
    {
        try
        {
            // FileShare.None takes an exclusive advisory lock (flock) on Unix: one owner per file.
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            if ((ex is IOException io && IsHeldByAnotherProcess(io)) || !Path.Exists(path))
            {
                return null; // another process applies the records; or there is no file, so no record (SETs go through the writer)
            }
            throw new IOException($"{ex.Message}; it may hold acknowledged SETs, so the store does not open without it", ex);
        }
    }

    /// <summary>Why the file's records are not this database's, or null when they are (or there are none).</summary>
    private static string? Foreign(Scan scan, byte[]? identity, bool newDatabase, long appliedJsn)
    {
        if (scan.HasHeader)
        {
            if (scan.Identity is null)
            {
                return scan.AnyRecord ? "its header is damaged, so the database it belongs to is unknown" : null;
            }
            if (identity is null || !scan.Identity.AsSpan().SequenceEqual(identity))
            {
                return scan.AnyRecord
                    ? $"it belongs to another database (journal id {Convert.ToHexStringLower(scan.Identity)}; this database's is "
                        + $"{(identity is null ? "not set" : Convert.ToHexStringLower(identity))})"
                    : null;
            }
            return null;
        }
        // No header: the previous release's format. Its records are this database's only while the database has no id (the
        // id is stored once they are applied); beside a database just created they belong to one that is gone.
        if (newDatabase)
        {
            return scan.AnyRecord ? "it was left beside a database file that no longer exists (this one was just created)" : null;
        }
        if (identity is not null)
        {
            return scan.Records.Count > 0
                ? $"it has no database id, and its {scan.Records.Count} record(s) above this database's applied mark ({appliedJsn}) "
                    + "cannot be this database's (its own were applied before it got its id)"
                : null;
        }
        return null;
    }

    private static string AsidePath(string path, string what)
    {
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var aside = $"{path}.{what}-{stamp}";
        for (var n = 2; Path.Exists(aside); n++)
        {
            aside = $"{path}.{what}-{stamp}-{n}";
        }
        return aside;
    }

    /// <summary>
    /// Starts taking SETs, once the store applied what the open found (<see cref="Pending"/> is 0): zeroes what is left above
    /// the applied mark (records of a dropped torn batch, or beyond damage, would otherwise be taken for new ones after the
    /// next crash, since new records reuse their numbers), writes the header naming <paramref name="identity"/> (the
    /// database's <see cref="IdentityKey"/>, stored before this call) and writes records from just after it.
    /// </summary>
    public void Start(byte[] identity, long appliedJsn)
    {
        lock (_states.StateLock)
        {
            if (_base == null || _pending.Count > 0 || _applying.Count > 0)
            {
                return; // not mapped (SETs go to the writer), or the leftover could not be applied yet: not before it is
            }
            var zeroTo = Math.Min(_zeroTo, CapacityBytes);
            if (zeroTo > FileHeaderBytes)
            {
                new Span<byte>(_base + FileHeaderBytes, (int)(zeroTo - FileHeaderBytes)).Clear();
            }
            if (!_headerIsOurs)
            {
                var header = new Span<byte>(_base, FileHeaderBytes);
                header.Clear();
                BinaryPrimitives.WriteUInt32LittleEndian(header, Magic);
                identity.CopyTo(header[4..20]);
                BinaryPrimitives.WriteUInt32LittleEndian(header[24..], Format);
                BinaryPrimitives.WriteUInt32LittleEndian(header[20..], HeaderCrc(header, Format));
                _headerIsOurs = true;
            }
            _nextJsn = Math.Max(appliedJsn, _openedNewest) + 1;
            _fileBytes = FileHeaderBytes;
            _accepting = true;
        }
    }

    /// <summary>
    /// The header's CRC-32: of its first 20 bytes in format 2, of those and the format field in format 3 (so that a release
    /// that knows only format 2 finds it wrong, see <see cref="Format"/>).
    /// </summary>
    private static uint HeaderCrc(ReadOnlySpan<byte> header, uint format)
    {
        if (format == 2)
        {
            return Crc32.HashToUInt32(header[..20]);
        }
        var crc = new Crc32();
        crc.Append(header[..20]);
        crc.Append(header[24..28]);
        return crc.GetCurrentHashAsUInt32();
    }

    /// <summary>What <see cref="Read"/> found.</summary>
    internal sealed class Scan
    {
        /// <summary>Records above the applied mark to apply, in order.</summary>
        public List<Record> Records { get; } = [];

        /// <summary>The number of the last record kept (0: none).</summary>
        public long Newest { get; set; }

        /// <summary>The end of the furthest intact record above the applied mark (kept or not).</summary>
        public long Extent { get; set; }

        /// <summary>The file starts with a header (<see cref="Identity"/> null: a damaged one).</summary>
        public bool HasHeader { get; set; }

        public byte[]? Identity { get; set; }

        /// <summary>The header's format (2 or <see cref="Format"/>) when <see cref="Identity"/> was read.</summary>
        public uint Format { get; set; }

        /// <summary>Some intact record is in the file, whatever its number.</summary>
        public bool AnyRecord { get; set; }

        /// <summary>Acknowledged records proven lost to damage: how many, the first and last number missing.</summary>
        public long Lost { get; set; }

        public long LostFrom { get; set; }

        public long LostTo { get; set; }

        /// <summary>Damage was found before an intact record, among records that were applied already.</summary>
        public bool DamageAmongApplied { get; set; }

        /// <summary>The file's bytes (a damaged file is copied aside from them: the lock keeps another open from reading it).</summary>
        public byte[] Bytes { get; set; } = [];

        /// <summary>The length of the sound part of the file (tests).</summary>
        public long ValidBytes { get; set; }
    }

    /// <summary>Reads the file: the records above <paramref name="appliedJsn"/> to apply, and what else it holds (<see cref="Scan"/>).</summary>
    internal static Scan Read(SafeFileHandle handle, long appliedJsn)
    {
        var length = RandomAccess.GetLength(handle);
        var bytes = new byte[length];
        var read = 0;
        while (read < length)
        {
            var n = RandomAccess.Read(handle, bytes.AsSpan(read), read);
            if (n == 0)
            {
                break;
            }
            read += n;
        }
        bytes = read == length ? bytes : bytes[..read];
        var scan = new Scan { Bytes = bytes };
        if (bytes.Length >= FileHeaderBytes && BinaryPrimitives.ReadUInt32LittleEndian(bytes) == Magic)
        {
            scan.HasHeader = true;
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(20));
            var format = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(24));
            if ((format == Format && HeaderCrc(bytes, Format) == crc) || (format == 0 && HeaderCrc(bytes, 2) == crc))
            {
                scan.Identity = bytes[4..20];
                scan.Format = format == 0 ? 2 : format;
            }
            ReadRecords(bytes, appliedJsn, scan);
        }
        else
        {
            ReadLegacy(bytes, appliedJsn, scan);
        }
        return scan;
    }

    /// <summary>
    /// Reads the records after the header. From the header on, records are numbered one after another until the last one
    /// written since the file started again; after it lie zeros or older, applied records (lower numbers). Where a record is
    /// unreadable, the rest of the file is searched for an intact record numbered above both the last one read and the applied
    /// mark: stale records never are (the file starts again only once everything in it is applied), so one found is this
    /// round's, and what lay between was either torn (in the last batch) or damaged (before a later batch).
    /// </summary>
    private static void ReadRecords(byte[] bytes, long appliedJsn, Scan scan)
    {
        var found = new List<(Record Record, uint Batch, long End, bool AfterDamage)>();
        long position = FileHeaderBytes;
        long newest = 0;
        var afterDamage = false;
        while (true)
        {
            var parsed = TryParse(bytes, position, out var record, out var batch, out var end);
            if (parsed == Parsed.Intact && record.Jsn > newest)
            {
                found.Add((record, batch, end, afterDamage));
                afterDamage = false;
                newest = record.Jsn;
                position = end;
                scan.AnyRecord = true;
                continue;
            }
            if (parsed == Parsed.Intact)
            {
                scan.AnyRecord = true;
                break; // an older record the writes since the file started again did not reach: applied
            }
            var next = FindNext(bytes, position + 1, Math.Max(newest, appliedJsn));
            if (next < 0)
            {
                break;
            }
            afterDamage = true;
            position = next;
        }
        scan.ValidBytes = found.Count == 0 ? FileHeaderBytes : found[^1].End;
        var start = found.FindIndex(f => f.Record.Jsn > appliedJsn);
        if (start < 0)
        {
            scan.DamageAmongApplied = found.Exists(f => f.AfterDamage);
            return;
        }
        scan.Extent = found[^1].End;
        // The last batch counts only if all of it is there: its copy may have been cut short, and it was acknowledged only
        // once the copy ended. (memmove may write a batch's ends after its middle, so intact records can follow a torn one.)
        var (last, lastBatch, _, _) = found[^1];
        var lastStart = last.Jsn - (lastBatch & ~LastInBatch);
        var firstOfLast = found.FindIndex(start, f => f.Record.Jsn >= lastStart);
        var complete = (lastBatch & LastInBatch) != 0 && found[firstOfLast].Record.Jsn == lastStart
            && found.Count - firstOfLast == last.Jsn - lastStart + 1;
        var keep = complete ? found.Count : firstOfLast;
        // Every number from the applied mark up to the last record kept was written (the file starts again at the mark + 1
        // and numbers follow one another), and each before a batch that is there in full: one missing is damage.
        var expected = appliedJsn + 1;
        for (var i = start; i < keep; i++)
        {
            var jsn = found[i].Record.Jsn;
            if (jsn > expected)
            {
                scan.LostFrom = scan.Lost == 0 ? expected : scan.LostFrom;
                scan.LostTo = jsn - 1;
                scan.Lost += jsn - expected;
            }
            scan.Records.Add(found[i].Record);
            expected = jsn + 1;
        }
        scan.Newest = keep > start ? found[keep - 1].Record.Jsn : 0;
        scan.DamageAmongApplied = scan.Lost == 0 && found.Take(keep).Any(f => f.AfterDamage);
    }

    private enum Parsed
    {
        Intact,
        Unreadable,
    }

    /// <summary>The record at <paramref name="position"/> if its length fits, its CRC matches and its fields parse.</summary>
    private static Parsed TryParse(byte[] bytes, long position, out Record record, out uint batch, out long end)
    {
        record = default;
        batch = 0;
        end = 0;
        if (position + HeaderBytes > bytes.Length)
        {
            return Parsed.Unreadable;
        }
        var size = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan((int)position));
        if (size < FixedPayloadBytes + 16 || size > bytes.Length - position - HeaderBytes)
        {
            return Parsed.Unreadable;
        }
        var payload = bytes.AsSpan((int)position + HeaderBytes, size);
        if (Crc32.HashToUInt32(payload) != BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)position + 4)))
        {
            return Parsed.Unreadable;
        }
        var offset = FixedPayloadBytes;
        if (!TryReadText(payload, ref offset, out var tenant) || !TryReadText(payload, ref offset, out var actor)
            || !TryReadText(payload, ref offset, out var key) || !TryReadText(payload, ref offset, out var json))
        {
            return Parsed.Unreadable; // an older record of the previous release's layout (applied), or a malformed one
        }
        var jsn = BinaryPrimitives.ReadInt64LittleEndian(payload);
        batch = BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]);
        var at = BinaryPrimitives.ReadInt64LittleEndian(payload[12..]);
        var expires = BinaryPrimitives.ReadInt64LittleEndian(payload[20..]);
        var kind = offset < payload.Length ? (RecordKind)payload[offset] : RecordKind.Set;
        if (jsn <= 0 || (batch & ~LastInBatch) >= jsn || kind > RecordKind.TtlChanged || (kind != RecordKind.Set && offset + 1 != payload.Length))
        {
            return Parsed.Unreadable;
        }
        record = new Record(jsn, new Caller(tenant, actor), new KvWrite(key, json, expires == long.MinValue ? null : expires), at, kind);
        end = position + HeaderBytes + size;
        return Parsed.Intact;
    }

    /// <summary>
    /// The first offset from <paramref name="from"/> holding an intact record numbered above <paramref name="above"/>, or -1.
    /// Every byte is a candidate (a damaged length says nothing about where the next record starts); the length and the number
    /// are checked before the CRC, so a scan of the whole reserved file costs some tens of milliseconds, once, at an open.
    /// </summary>
    private static long FindNext(byte[] bytes, long from, long above)
    {
        for (var q = from; q + HeaderBytes + FixedPayloadBytes + 16 <= bytes.Length; q++)
        {
            var size = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan((int)q));
            if (size < FixedPayloadBytes + 16 || size > bytes.Length - q - HeaderBytes)
            {
                continue;
            }
            var jsn = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan((int)q + HeaderBytes));
            if (jsn <= above || jsn - above > int.MaxValue)
            {
                continue;
            }
            if (TryParse(bytes, q, out _, out _, out _) == Parsed.Intact)
            {
                return q;
            }
        }
        return -1;
    }

    /// <summary>
    /// The previous release's file (no header, records of 24 fixed bytes, no batch field): read as it read it, up to the first
    /// unreadable record or older number. It is read once, after an upgrade that followed a crash; <see cref="Start"/> then
    /// zeroes all of it.
    /// </summary>
    private static void ReadLegacy(byte[] bytes, long appliedJsn, Scan scan)
    {
        long position = 0;
        long newest = 0;
        while (position + HeaderBytes <= bytes.Length)
        {
            var size = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan((int)position));
            if (size < 40 || size > bytes.Length - position - HeaderBytes)
            {
                break;
            }
            var payload = bytes.AsSpan((int)position + HeaderBytes, size);
            if (Crc32.HashToUInt32(payload) != BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)position + 4)))
            {
                break;
            }
            var jsn = BinaryPrimitives.ReadInt64LittleEndian(payload);
            if (jsn <= newest)
            {
                break; // an older record the writes since the file started again did not reach: applied
            }
            var offset = LegacyFixedPayloadBytes;
            if (!TryReadText(payload, ref offset, out var tenant) || !TryReadText(payload, ref offset, out var actor)
                || !TryReadText(payload, ref offset, out var key) || !TryReadText(payload, ref offset, out var json))
            {
                break;
            }
            var at = BinaryPrimitives.ReadInt64LittleEndian(payload[8..]);
            var expires = BinaryPrimitives.ReadInt64LittleEndian(payload[16..]);
            var incremented = offset < payload.Length && payload[offset] == (byte)RecordKind.Incremented;
            newest = jsn;
            scan.AnyRecord = true;
            if (jsn > appliedJsn)
            {
                scan.Records.Add(new Record(jsn, new Caller(tenant, actor), new KvWrite(key, json, expires == long.MinValue ? null : expires), at,
                    incremented ? RecordKind.Incremented : RecordKind.Set));
                scan.Newest = jsn;
            }
            position += HeaderBytes + size;
        }
        scan.ValidBytes = position;
        // Zeroed whole before new records are written: its torn tail may hide intact records with the numbers new ones take.
        scan.Extent = scan.AnyRecord ? bytes.Length : 0;
    }

    private static bool TryReadText(ReadOnlySpan<byte> payload, ref int offset, out string text)
    {
        text = "";
        if (payload.Length - offset < 4)
        {
            return false;
        }
        var length = BinaryPrimitives.ReadInt32LittleEndian(payload[offset..]);
        if (length < 0 || length > payload.Length - offset - 4)
        {
            return false;
        }
        try
        {
            text = StrictUtf8.GetString(payload.Slice(offset + 4, length));
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        offset += 4 + length;
        return true;
    }
}
