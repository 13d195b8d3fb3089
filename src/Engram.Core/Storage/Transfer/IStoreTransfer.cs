using System.Text.Json;
using Engram.Core.Operations;

namespace Engram.Core.Storage.Transfer;

/// <summary>
/// What export, import, logical backups and <c>engram migrate</c> need of a store, on either backend:
/// a consistent snapshot to read lines from, and an import that writes records as they were (ids,
/// versions, times and history kept) with a change-log entry each, so indexes and other instances
/// pick them up.
/// </summary>
public interface IStoreTransfer
{
    /// <summary>
    /// Opens a consistent snapshot of the store for an export (<paramref name="tenant"/> null: every tenant; else that tenant
    /// and its scope partitions, see <see cref="Security.ScopeGuard.Partition"/>).
    /// </summary>
    Task<ExportReader> OpenExportAsync(string? tenant, CancellationToken ct = default);

    /// <summary>The newest memory row when an import starts: only rows up to it count as content duplicates (the file's own twins are kept).</summary>
    Task<long> GetImportBaselineAsync(CancellationToken ct = default);

    /// <summary>
    /// Imports the records as one group of writes (one transaction; a record that fails never takes the
    /// others with it); each result is <see cref="ImportOutcome.Imported"/>, <see cref="ImportOutcome.Skipped"/>
    /// or the exception that refused it; with <see cref="ImportRules.StopAtRefusal"/> the records after a refused one are
    /// <see cref="ImportOutcome.NotReached"/>.
    /// </summary>
    Task<IReadOnlyList<(ImportOutcome Outcome, Exception? Error)>> ImportAsync(IReadOnlyList<JsonElement> records, ImportRules rules, CancellationToken ct = default);

    /// <summary>A value of the store's own settings table (store_meta), or null.</summary>
    Task<string?> GetMetaAsync(string key, CancellationToken ct = default);

    /// <summary>The store_meta rows whose key starts with <paramref name="prefix"/>, in key order.</summary>
    Task<IReadOnlyList<KeyValuePair<string, string>>> ListMetaAsync(string prefix, CancellationToken ct = default);

    /// <summary>Sets (or with null removes) a value of store_meta.</summary>
    Task SetMetaAsync(string key, string? value, CancellationToken ct = default);
}
