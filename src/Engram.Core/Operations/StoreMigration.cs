using System.Diagnostics;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Transfer;

namespace Engram.Core.Operations;

/// <summary>
/// <c>engram migrate</c>: copies one store into another, SQLite or PostgreSQL either way, record by
/// record as they were (ids, versions, times, history; key-value entries with their history chains;
/// graph entities with their observations, relations; memory links; conversations with their history and
/// their extraction jobs, a pending one queued and due on the target; the stored embedding vectors of each memory's
/// current version, so nothing is embedded again), plus the API keys and the secret they are
/// hashed with, so every key keeps working. The source is read from one consistent snapshot and
/// streamed: a batch of lines at a time, each batch one transaction on the target.
/// <para>
/// Resumable: the target records which store it is being filled from (store_meta <c>migrated_from</c>),
/// and a record already there (same id, key, entity or relation) is skipped, so a run that was
/// interrupted, killed or failed is simply run again: it copies what is missing and nothing twice.
/// A target that holds anything else is refused unless <see cref="MigrationOptions.Force"/>.
/// </para>
/// <para>
/// At the end the counts per tenant (memories, their history rows, keys and their history rows, entities,
/// observations, relations, memory links, conversations and their history rows, extraction jobs) of the source snapshot and the target are compared; any difference fails
/// the migration. The audit log stays with the source (it records who did what there).
/// </para>
/// </summary>
public static class StoreMigration
{
    /// <summary>store_meta key on the target: the store id of the source it is (being) filled from.</summary>
    public const string MarkerKey = "migrated_from";

    /// <summary>store_meta key on the target: when the last run finished with matching counts.</summary>
    public const string CompletedKey = "migration_completed_at";

    /// <summary>store_meta key on the target: "true" when the migration was forced into a store that held other data.</summary>
    public const string MergedKey = "migration_merged";

    public const int BatchSize = 256;

    public static async Task<MigrationReport> RunAsync(IMemoryStore source, IMemoryStore target, MigrationOptions options,
        IProgress<OperationProgress>? progress = null, CancellationToken ct = default)
    {
        var started = Stopwatch.GetTimestamp();
        var from = Transfer(source, "source");
        var to = Transfer(target, "target");
        if (source.StoreId.Length > 0 && source.StoreId == target.StoreId)
        {
            // A restored backup or a copied folder keeps its store id: it holds the source's own records (same ids),
            // so merging it back would have nothing to tell apart. Say so rather than "the same store" for two folders.
            throw new ValidationException("--to", "the source and the target are the same store, or copies of one (a restored backup or a copied " +
                "folder keeps the store id): migrate into a new or empty store instead");
        }
        var report = new MigrationReport { SourceStoreId = source.StoreId };
        var marker = await to.GetMetaAsync(MarkerKey, ct).ConfigureAwait(false);
        if (marker == source.StoreId)
        {
            report.Resumed = true;
            report.Merged = await to.GetMetaAsync(MergedKey, ct).ConfigureAwait(false) == "true";
        }
        else
        {
            var holds = await DescribeContentAsync(target, ct).ConfigureAwait(false);
            if (holds is not null && !options.Force)
            {
                throw new ConflictException(marker is null
                    ? $"the target holds data already ({holds}); migrate into an empty store, or pass --force to add the source's records to it"
                    : $"the target was filled from another store (id {marker}) and holds {holds}; pass --force to add this source's records to it");
            }
            report.Merged = holds is not null;
            await to.SetMetaAsync(MergedKey, report.Merged ? "true" : null, ct).ConfigureAwait(false);
            await to.SetMetaAsync(MarkerKey, source.StoreId, ct).ConfigureAwait(false);
            await to.SetMetaAsync(CompletedKey, null, ct).ConfigureAwait(false);
        }

        await using (var reader = await from.OpenExportAsync(null, ct).ConfigureAwait(false))
        {
            // The stored vectors too: without them the target's instances would embed the whole corpus again.
            reader.Vectors = true;
            report.SourceCounts = await reader.CountPerTenantAsync(ct).ConfigureAwait(false);
            if (options.ApiKeys)
            {
                await CopyApiKeysAsync(source, target, report, ct).ConfigureAwait(false);
            }
            // The web UI's login keys, so a migrated deployment keeps its users logged in.
            await StoreMetaTransfer.WriteAsync(to, await StoreMetaTransfer.ReadAsync(from, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
            var total = (await reader.CountAsync(ct).ConfigureAwait(false)).Total;
            var batch = new List<(string Kind, JsonDocument Document)>(BatchSize);
            // A copy of the source store's records: identifiers it holds from before invisible characters were refused are kept.
            var rules = new ImportRules(0, (options.Validation ?? ImportValidation.Default).ForStoreCopy(), Exact: true);
            try
            {
                await foreach (var line in reader.LinesAsync(ct).ConfigureAwait(false))
                {
                    // The line's buffer is reused for the next one: the batch keeps a copy.
                    batch.Add((line.Kind, JsonDocument.Parse(line.Json.ToArray())));
                    if (batch.Count == BatchSize)
                    {
                        await FlushAsync(to, batch, rules, report, ct).ConfigureAwait(false);
                        progress?.Report(new OperationProgress("records", report.Processed, total));
                    }
                }
                await FlushAsync(to, batch, rules, report, ct).ConfigureAwait(false);
                progress?.Report(new OperationProgress("records", report.Processed, total));
            }
            finally
            {
                foreach (var (_, document) in batch)
                {
                    document.Dispose();
                }
            }
        }

        await using (var check = await to.OpenExportAsync(null, ct).ConfigureAwait(false))
        {
            report.TargetCounts = await check.CountPerTenantAsync(ct).ConfigureAwait(false);
        }
        var differences = report.SourceCounts.Compare(report.TargetCounts);
        // Merged into a store that held other records: every source record must be there; more is expected.
        report.Differences = report.Merged ? [.. differences.Where(d => d.Target < d.Source)] : differences;
        if (report.Ok)
        {
            await to.SetMetaAsync(CompletedKey, DateTimeOffset.UtcNow.ToString("O"), ct).ConfigureAwait(false);
        }
        report.Elapsed = Stopwatch.GetElapsedTime(started);
        return report;
    }

    private static IStoreTransfer Transfer(IMemoryStore store, string role) =>
        store as IStoreTransfer ?? throw new ValidationException(role, $"the {store.Kind} store cannot be migrated");

    /// <summary>What the store holds, as "N memories, N keys, ..." (null when nothing).</summary>
    private static async Task<string?> DescribeContentAsync(IMemoryStore store, CancellationToken ct)
    {
        var counts = await store.ReadCountsAsync(ct).ConfigureAwait(false);
        var memories = counts.Memories.Values.Sum();
        var keys = store is IApiKeyStore apiKeys ? (await apiKeys.ListApiKeysAsync(null, ct).ConfigureAwait(false)).Count : 0;
        return memories + counts.KvKeys + counts.GraphEntities + counts.GraphRelations + keys == 0
            ? null
            : $"{memories} memories, {counts.KvKeys} keys, {counts.GraphEntities} entities, {counts.GraphRelations} relations, {keys} API keys";
    }

    private static async Task FlushAsync(IStoreTransfer target, List<(string Kind, JsonDocument Document)> batch, ImportRules rules, MigrationReport report,
        CancellationToken ct)
    {
        if (batch.Count == 0)
        {
            return;
        }
        try
        {
            var results = await target.ImportAsync([.. batch.Select(b => b.Document.RootElement)], rules, ct).ConfigureAwait(false);
            for (var i = 0; i < results.Count; i++)
            {
                report.Count(batch[i].Kind, results[i].Outcome, results[i].Error);
            }
        }
        finally
        {
            foreach (var (_, document) in batch)
            {
                document.Dispose();
            }
            batch.Clear();
        }
    }

    /// <summary>
    /// Copies the API keys with their hashes and the secret the hashes are keyed with (<see cref="ApiKeyTransfer"/>). A
    /// target that has keys under another secret keeps them, and the source's are not copied (said in the report).
    /// </summary>
    private static async Task CopyApiKeysAsync(IMemoryStore source, IMemoryStore target, MigrationReport report, CancellationToken ct)
    {
        if (await ApiKeyTransfer.ReadAsync(source, ct).ConfigureAwait(false) is not { } keys)
        {
            return;
        }
        var result = await ApiKeyTransfer.WriteAsync(target, keys, ct).ConfigureAwait(false);
        report.ApiKeysCopied += result.Copied;
        if (result.Note is null)
        {
            report.ApiKeysSkipped += result.Skipped;
        }
        report.ApiKeysNote = result.Note;
    }
}

/// <summary>What <c>engram migrate</c> may do beyond copying into an empty store.</summary>
/// <param name="Force">Copy into a target that holds other data (its records stay; the source's are added).</param>
/// <param name="ApiKeys">Copy the API keys and their secret (default), so users' keys keep working on the target.</param>
public sealed record MigrationOptions(bool Force = false, bool ApiKeys = true)
{
    /// <summary>The rules and limits each record is held to on the target (null: <see cref="ImportValidation.Default"/>).</summary>
    public ImportValidation? Validation { get; init; }
}

/// <summary>What a migration did, per kind, and whether the target's counts match the source's.</summary>
public sealed class MigrationReport
{
    private readonly Dictionary<string, KindCounts> _kinds = ExportKinds.Records.ToDictionary(k => k, _ => new KindCounts(), StringComparer.Ordinal);

    public string SourceStoreId { get; init; } = "";

    /// <summary>The target had been partly filled from this source by an earlier run: this run went on from there.</summary>
    public bool Resumed { get; internal set; }

    /// <summary>The target held other data (--force): the check is that every source record is there.</summary>
    public bool Merged { get; internal set; }

    public IReadOnlyDictionary<string, KindCounts> Kinds => _kinds;

    public long Copied => _kinds.Values.Sum(k => k.Imported);

    public long Skipped => _kinds.Values.Sum(k => k.Skipped);

    public long Failed => _kinds.Values.Sum(k => k.Failed);

    public long Processed => Copied + Skipped + Failed;

    public int ApiKeysCopied { get; internal set; }

    public int ApiKeysSkipped { get; internal set; }

    public string? ApiKeysNote { get; internal set; }

    /// <summary>The first refusals (kind and reason); <see cref="Failed"/> counts them all.</summary>
    public List<string> Errors { get; } = [];

    public TransferCounts SourceCounts { get; internal set; } = new();

    public TransferCounts TargetCounts { get; internal set; } = new();

    public IReadOnlyList<CountDifference> Differences { get; internal set; } = [];

    public bool Ok => Failed == 0 && Differences.Count == 0;

    public TimeSpan Elapsed { get; internal set; }

    internal void Count(string kind, ImportOutcome outcome, Exception? error)
    {
        var counts = _kinds[kind];
        switch (outcome)
        {
            case ImportOutcome.Imported:
                counts.Imported++;
                break;
            case ImportOutcome.Skipped:
                counts.Skipped++;
                break;
            default:
                counts.Failed++;
                if (Errors.Count < StoreImport.MaxErrors)
                {
                    Errors.Add($"{kind}: {error?.Message ?? "refused"}");
                }
                break;
        }
    }
}
