using System.Text.Json;
using Engram.Core.KeyValue;

namespace Engram.Cli.Client;

/// <summary>
/// What <c>engram kv</c> needs: the key-value half of the REST API, in process (KvService) or over
/// HTTP (/v1/kv), with the same types and the same Core exceptions either way.
/// </summary>
internal interface IKeyValueClient
{
    Task<KvWritten> KvSetAsync(string key, JsonElement value, long? ttlSeconds, bool nx, bool xx, CancellationToken ct);

    Task<KvItem> KvGetAsync(string key, CancellationToken ct);

    Task KvDeleteAsync(string key, CancellationToken ct);

    Task<KvPage> KvListAsync(string? pattern, int? limit, string? cursor, CancellationToken ct);

    Task<long> KvIncrementAsync(string key, long by, CancellationToken ct);

    Task<KvItem> KvExpireAsync(string key, long ttlSeconds, CancellationToken ct);

    Task<int> KvCleanupAsync(string pattern, CancellationToken ct);

    Task<KvHistoryResult> KvHistoryAsync(string key, int? limit, string? cursor, CancellationToken ct);
}
