using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Core.Storage.Transfer;

namespace Engram.Core.Operations;

/// <summary>
/// Logical backups: the backup file format of <see cref="StoreBackup"/> (manifest + checksummed gzip payload)
/// holding Engram's export of the store (<see cref="BackupContents.Export"/>) rather than a SQLite database.
/// What <c>engram backup --store postgres://…</c> and a PostgreSQL-backed server make; operators also have
/// pg_dump and point-in-time recovery, but this one is verified by Engram and restores into either backend.
/// It holds what an export holds, the stored embedding vectors (a restore embeds nothing again), and after the records
/// one line of the API keys with their hashes and the secret they are keyed with (<see cref="ApiKeyTransfer"/>), so a
/// restore gives users back working keys, and one of the web UI's login keys (<see cref="StoreMetaTransfer"/>); no
/// audit log.
/// </summary>
public static class LogicalBackup
{
    private static readonly Dictionary<string, string> ManifestNames = new(StringComparer.Ordinal)
    {
        [ExportKinds.Memory] = "memories",
        [ExportKinds.KeyValue] = "kv_keys",
        [ExportKinds.Entity] = "graph_entities",
        [ExportKinds.Relation] = "graph_relations",
        [ExportKinds.Link] = "memory_links",
        [ExportKinds.Conversation] = "conversations",
        [ExportKinds.ExtractionJob] = "extraction_jobs",
        [ExportKinds.Vector] = "vectors",
    };

    /// <summary>Kinds of export format versions 2 and 3: a backup made before them has no count of them (which is then 0).</summary>
    private static readonly HashSet<string> LaterKinds = new([ExportKinds.Link, ExportKinds.Conversation, ExportKinds.ExtractionJob, ExportKinds.Vector],
        StringComparer.Ordinal);

    /// <summary>Backs up <paramref name="store"/> into the new file <paramref name="outFile"/> (owner-only), from one consistent snapshot.</summary>
    public static async Task<BackupManifest> CreateAsync(IMemoryStore store, string outFile, string kind, TimeProvider clock, CancellationToken ct = default)
    {
        var transfer = store as IStoreTransfer ?? throw new StoreException($"the {store.Kind} store cannot be backed up");
        (outFile, var temporary) = BackupFile.PrepareNew(outFile);
        var export = temporary + ".jsonl.tmp";
        var payload = temporary + ".gz.tmp";
        var partial = temporary + ".tmp";
        try
        {
            var createdAt = clock.GetUtcNow();
            ExportSummary summary;
            var apiKeys = await ApiKeyTransfer.ReadAsync(store, ct).ConfigureAwait(false);
            var meta = await StoreMetaTransfer.ReadAsync(transfer, ct).ConfigureAwait(false);
            await using (var output = BackupFile.CreatePrivate(export))
            {
                summary = await StoreExport.WriteAsync(transfer, output, null, clock, vectors: true, ct: ct).ConfigureAwait(false);
                if (apiKeys is not null)
                {
                    // After the records, one line of the keys: a restore gives users back working keys.
                    await output.WriteAsync(ApiKeyTransfer.ToLine(apiKeys), ct).ConfigureAwait(false);
                    await output.WriteAsync("\n"u8.ToArray(), ct).ConfigureAwait(false);
                }
                if (meta.Count > 0)
                {
                    await output.WriteAsync(StoreMetaTransfer.ToLine(meta), ct).ConfigureAwait(false);
                    await output.WriteAsync("\n"u8.ToArray(), ct).ConfigureAwait(false);
                }
            }
            var (schema, lastSeq) = ReadHeaderFacts(File.ReadLines(export).First());
            using (var input = new FileStream(export, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
            using (var output = BackupFile.CreatePrivate(payload))
            {
                using var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true);
                await input.CopyToAsync(gzip, 1 << 16, ct).ConfigureAwait(false);
            }
            var counts = new SortedDictionary<string, long>(StringComparer.Ordinal)
            {
                ["memories"] = summary.Counts.Memories,
                ["kv_keys"] = summary.Counts.KeyValues,
                ["graph_entities"] = summary.Counts.Entities,
                ["graph_relations"] = summary.Counts.Relations,
                ["memory_links"] = summary.Counts.Links,
                ["conversations"] = summary.Counts.Conversations,
                ["extraction_jobs"] = summary.Counts.Jobs,
                ["vectors"] = summary.Counts.Vectors ?? 0,
                [ApiKeyTransfer.Kind] = apiKeys?.Keys.Count ?? 0,
                [StoreMetaTransfer.Kind] = meta.Count,
            };
            var manifest = new BackupManifest(BackupFile.FormatVersion, StoreBackup.EngramVersion, schema, lastSeq, store.StoreId, counts, createdAt, kind,
                StoreBackup.Compression, new FileInfo(export).Length, BackupFile.Sha256Of(export), new FileInfo(payload).Length, BackupFile.Sha256Of(payload),
                BackupContents.Export);
            using (var output = BackupFile.CreatePrivate(partial))
            {
                BackupFile.WriteHead(output, manifest);
                using (var input = new FileStream(payload, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
                {
                    await input.CopyToAsync(output, 1 << 16, ct).ConfigureAwait(false);
                }
                output.Flush(flushToDisk: true);
            }
            File.Move(partial, outFile, overwrite: false);
            return manifest;
        }
        finally
        {
            StoreBackup.DeleteQuietly(export, payload, partial);
        }
    }

    /// <summary>The kind of a line that is not an export record but a backup's own (API keys, carried settings); null for a record.</summary>
    private static string? BackupLineKind(JsonElement record) =>
        record.ValueKind == JsonValueKind.Object && record.TryGetProperty("kind", out var kind) && kind.ValueKind == JsonValueKind.String
            ? kind.ValueEquals(ApiKeyTransfer.Kind) ? ApiKeyTransfer.Kind : kind.ValueEquals(StoreMetaTransfer.Kind) ? StoreMetaTransfer.Kind : null
            : null;

    /// <summary>Takes a backup's own line while it is restored into <paramref name="target"/>.</summary>
    private static async Task RestoreLineAsync(IMemoryStore target, string kind, JsonElement line, CancellationToken ct)
    {
        if (kind == ApiKeyTransfer.Kind)
        {
            await ApiKeyTransfer.WriteAsync(target, ApiKeyTransfer.FromLine(line), ct).ConfigureAwait(false);
        }
        else
        {
            await StoreMetaTransfer.WriteAsync((IStoreTransfer)target, StoreMetaTransfer.FromLine(line), ct).ConfigureAwait(false);
        }
    }

    private static (int Schema, long LastSeq) ReadHeaderFacts(string header)
    {
        using var document = JsonDocument.Parse(header);
        return (document.RootElement.GetProperty("schema_version").GetInt32(), document.RootElement.GetProperty("last_seq").GetInt64());
    }

    /// <summary>
    /// Checks a logical backup's payload (its checksum is checked already; <paramref name="payload"/> is at its start):
    /// it decompresses to an export of the recorded length and SHA-256, every line parses as a record with every
    /// field valid (by the write paths' rules, but for the configurable sizes: <see cref="ImportValidation.Unbounded"/>),
    /// and the records of each kind are as many as the manifest and the export's header say.
    /// </summary>
    internal static void VerifyPayload(Stream payload, BackupManifest manifest, List<string> problems, CancellationToken ct)
    {
        var start = payload.Position;
        long length = 0;
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            try
            {
                using var gzip = new GZipStream(payload, CompressionMode.Decompress, leaveOpen: true);
                var buffer = new byte[1 << 16];
                int read;
                while ((read = gzip.Read(buffer)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    length += read;
                }
            }
            catch (InvalidDataException ex)
            {
                problems.Add($"the payload does not decompress: {ex.Message}");
                return;
            }
            if (length != manifest.DatabaseBytes)
            {
                problems.Add($"the export has {length} bytes, the manifest says {manifest.DatabaseBytes}");
            }
            var sha = BackupFile.Hex(hash.GetHashAndReset());
            if (sha != manifest.DatabaseSha256)
            {
                problems.Add($"the export's SHA-256 is {sha}, the manifest says {manifest.DatabaseSha256}");
            }
        }
        if (problems.Count > 0)
        {
            return;
        }
        payload.Position = start;
        using var reader = new StreamReader(new GZipStream(payload, CompressionMode.Decompress, leaveOpen: true));
        var counted = ManifestNames.Values.ToDictionary(n => n, _ => 0L, StringComparer.Ordinal);
        long apiKeys = 0, metaRows = 0;
        var header = reader.ReadLine();
        JsonElement headerCounts = default;
        try
        {
            using var document = JsonDocument.Parse(header ?? "");
            if (!document.RootElement.TryGetProperty("format", out var format) || format.GetString() != ExportHeader.FormatName)
            {
                problems.Add("the export's first line is not an Engram export header");
                return;
            }
            headerCounts = document.RootElement.GetProperty("counts").Clone();
            if (headerCounts.ValueKind != JsonValueKind.Object)
            {
                problems.Add("the export's header has no counts object");
                return;
            }
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            problems.Add($"the export's header does not parse: {ex.Message}");
            return;
        }
        var number = 1;
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            number++;
            if (number % 4096 == 0)
            {
                ct.ThrowIfCancellationRequested();
            }
            try
            {
                using var document = JsonDocument.Parse(line);
                var record = document.RootElement;
                switch (BackupLineKind(record))
                {
                    case ApiKeyTransfer.Kind:
                        apiKeys += ApiKeyTransfer.FromLine(record).Keys.Count;
                        continue;
                    case StoreMetaTransfer.Kind:
                        metaRows += StoreMetaTransfer.FromLine(record).Count;
                        continue;
                }
                var kind = ImportRecords.Kind(record);
                _ = kind switch
                {
                    ExportKinds.Memory => (object)ImportRecords.Memory(record, ImportValidation.Unbounded, nowMs: null),
                    ExportKinds.KeyValue => ImportRecords.KeyValue(record, ImportValidation.Unbounded),
                    ExportKinds.Entity => ImportRecords.Entity(record),
                    ExportKinds.Relation => ImportRecords.Relation(record),
                    ExportKinds.Link => ImportRecords.Link(record),
                    ExportKinds.Conversation => ImportRecords.Conversation(record),
                    ExportKinds.Vector => ImportRecords.Vector(record),
                    _ => ImportRecords.Job(record, 0),
                };
                counted[ManifestNames[kind]]++;
            }
            catch (Exception ex) when (ex is JsonException || ImportRecords.IsRecordError(ex))
            {
                problems.Add($"line {number} of the export is not a valid record: {ex.Message}");
                if (problems.Count >= 20)
                {
                    return;
                }
            }
        }
        // Backups before these were carried have no count of them (and no line).
        foreach (var (name, count) in new[] { (ApiKeyTransfer.Kind, apiKeys), (StoreMetaTransfer.Kind, metaRows) })
        {
            if (count != manifest.Counts.GetValueOrDefault(name, 0))
            {
                problems.Add($"the export has {count} {name}, the manifest says {manifest.Counts.GetValueOrDefault(name, 0)}");
            }
        }
        foreach (var (kind, name) in ManifestNames)
        {
            var absent = LaterKinds.Contains(kind) ? 0 : -1;
            var expected = manifest.Counts.GetValueOrDefault(name, absent);
            if (counted[name] != expected)
            {
                problems.Add($"the export has {counted[name]} {name}, the manifest says {expected}");
            }
            // A count that is not a whole number (a hand-made file) is a mismatch to report, not an exception.
            var inHeader = !headerCounts.TryGetProperty(ExportCounts.HeaderNames[kind], out var n) ? absent
                : n.ValueKind == JsonValueKind.Number && n.TryGetInt64(out var whole) ? whole : long.MinValue;
            if (counted[name] != inHeader)
            {
                problems.Add($"the export has {counted[name]} {name}, its header says {inHeader}");
            }
        }
    }

    /// <summary>
    /// Restores the backup <paramref name="file"/> (either content) into <paramref name="target"/>, which must be
    /// empty: verified first (nothing is written when it is unsound); a logical backup is imported record by record,
    /// a SQLite database backup is copied over as <c>engram migrate</c> would (with its API keys).
    /// </summary>
    /// <param name="validation">The rules and limits each record is held to (null: <see cref="ImportValidation.Default"/>).</param>
    public static async Task<BackupVerification> RestoreAsync(string file, IMemoryStore target, CancellationToken ct = default, ImportValidation? validation = null)
    {
        var transfer = target as IStoreTransfer ?? throw new StoreException($"the {target.Kind} store cannot be restored into");
        // A backup holds a store's own records: identifiers from before invisible characters were refused are restored.
        validation = (validation ?? ImportValidation.Default).ForStoreCopy();
        var counts = await target.ReadCountsAsync(ct).ConfigureAwait(false);
        if (counts.Memories.Values.Sum() + counts.KvKeys + counts.GraphEntities + counts.GraphRelations > 0)
        {
            throw new RestoreRefusedException("the target store holds data already; restore into an empty database or a new folder");
        }
        var manifest = BackupFile.ReadManifest(file);
        if (manifest.Content != BackupContents.Export)
        {
            var scratch = Path.Combine(Path.GetTempPath(), $"engram-restore-{Guid.NewGuid():N}");
            Directory.CreateDirectory(scratch);
            try
            {
                var verified = StoreBackup.Verify(file, Path.Combine(scratch, SqliteMemoryStore.FileName), ct);
                if (!verified.Ok)
                {
                    return verified;
                }
                await using var source = SqliteMemoryStore.Open(scratch);
                var report = await StoreMigration.RunAsync(source, target, new MigrationOptions { Validation = validation }, null, ct).ConfigureAwait(false);
                return report.Ok ? verified : throw new StoreException($"the restore did not complete: {string.Join("; ", report.Differences)} {string.Join("; ", report.Errors)}");
            }
            finally
            {
                Directory.Delete(scratch, recursive: true);
            }
        }
        var verification = StoreBackup.Verify(file, ct: ct);
        if (!verification.Ok)
        {
            return verification;
        }
        using var input = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        BackupFile.ReadHead(input);
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        var imported = await StoreImport.ReadAsync(transfer, gzip, continueOnError: false, ct: ct,
            backupLines: (kind, line, token) => RestoreLineAsync(target, kind, line, token), validation: validation).ConfigureAwait(false);
        return imported.Failed == 0
            ? verification
            : throw new StoreException($"the restore stopped: {string.Join("; ", imported.Errors.Select(e => $"line {e.Line}: {e.Message}"))}");
    }
}
