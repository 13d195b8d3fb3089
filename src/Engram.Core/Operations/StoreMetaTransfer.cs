using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Storage.Transfer;

namespace Engram.Core.Operations;

/// <summary>
/// The rows of a store's own settings table (<c>store_meta</c>) that belong to the deployment rather than to one
/// instance, and so travel with a logical backup and a migration: the web UI's Data Protection keys, which encrypt the
/// login cookie (without them every user logs in again after a restore). Everything else there stays behind: markers,
/// cursors and positions of the store it is in. Never part of an export.
/// </summary>
public static class StoreMetaTransfer
{
    /// <summary>The record kind of the one line a logical backup carries these rows in (after the records).</summary>
    public const string Kind = "store_meta";

    /// <summary>The prefix of the web UI's Data Protection key rows; the rest of the row's key is the key's friendly name.</summary>
    public const string UiDataProtectionPrefix = "ui_data_protection_key:";

    private static readonly string[] Prefixes = [UiDataProtectionPrefix];

    public static bool IsCarried(string key) => Prefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal) && key.Length > p.Length);

    /// <summary>The carried rows of <paramref name="store"/>, in key order.</summary>
    public static async Task<IReadOnlyList<KeyValuePair<string, string>>> ReadAsync(IStoreTransfer store, CancellationToken ct = default)
    {
        var rows = new List<KeyValuePair<string, string>>();
        foreach (var prefix in Prefixes)
        {
            rows.AddRange((await store.ListMetaAsync(prefix, ct).ConfigureAwait(false)).Where(r => IsCarried(r.Key)));
        }
        return rows;
    }

    /// <summary>Writes each row the target does not have yet (a row it has is its own and stays); how many were written.</summary>
    public static async Task<int> WriteAsync(IStoreTransfer target, IReadOnlyList<KeyValuePair<string, string>> rows, CancellationToken ct = default)
    {
        var written = 0;
        foreach (var (key, value) in rows)
        {
            if (IsCarried(key) && await target.GetMetaAsync(key, ct).ConfigureAwait(false) is null)
            {
                await target.SetMetaAsync(key, value, ct).ConfigureAwait(false);
                written++;
            }
        }
        return written;
    }

    /// <summary>The backup line: <c>{"kind":"store_meta","rows":[{"key":…,"value":…}]}</c>.</summary>
    public static byte[] ToLine(IReadOnlyList<KeyValuePair<string, string>> rows) =>
        JsonSerializer.SerializeToUtf8Bytes(new MetaLine(Kind, [.. rows.Select(r => new MetaRow(r.Key, r.Value))]), EngramJson.Options);

    /// <summary>Reads a backup line back; a row that is not one of the carried kinds, or has no value, throws <see cref="ValidationException"/>.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> FromLine(JsonElement line)
    {
        MetaLine? parsed;
        try
        {
            parsed = line.Deserialize<MetaLine>(EngramJson.Options);
        }
        catch (JsonException ex)
        {
            throw new ValidationException("store_meta", "the store_meta record does not parse: " + ex.Message);
        }
        var rows = new List<KeyValuePair<string, string>>();
        foreach (var row in parsed?.Rows ?? [])
        {
            if (row?.Key is not { } key || !IsCarried(key) || row.Value is not { } value)
            {
                throw new ValidationException("rows", $"the store_meta record holds a row that is not carried ('{row?.Key}')");
            }
            rows.Add(new(key, value));
        }
        return rows;
    }

    private sealed record MetaLine(string Kind, IReadOnlyList<MetaRow?>? Rows);

    private sealed record MetaRow(string? Key, string? Value);
}
