using System.Text.Json;
using Engram.Core.KeyValue;

namespace Engram.Cli.Client;

internal sealed partial class InProcessMemoryClient
{
    private KvService? _keyValue;

    /// <summary>Built on first use with the options the server would read, MEMORY_DEFAULT_TTL_SECONDS included.</summary>
    private KvService KeyValue => _keyValue ??= new KvService((Core.KeyValue.IKeyValueStore)_store, _options.KeyValue, TimeProvider.System, Gate);

    public Task<KvWritten> KvSetAsync(string key, JsonElement value, long? ttlSeconds, bool nx, bool xx, CancellationToken ct) =>
        KeyValue.SetAsync(Caller, key, value, ttlSeconds, nx, xx, ct);

    public Task<KvItem> KvGetAsync(string key, CancellationToken ct) => KeyValue.GetAsync(Caller, key, ct);

    public Task KvDeleteAsync(string key, CancellationToken ct) => KeyValue.DeleteAsync(Caller, key, ct);

    public Task<KvPage> KvListAsync(string? pattern, int? limit, string? cursor, CancellationToken ct) => KeyValue.ListAsync(Caller, pattern, limit, cursor, ct);

    public Task<long> KvIncrementAsync(string key, long by, CancellationToken ct) => KeyValue.IncrementAsync(Caller, key, by, ct);

    public Task<KvItem> KvExpireAsync(string key, long ttlSeconds, CancellationToken ct) => KeyValue.ExpireAsync(Caller, key, ttlSeconds, ct);

    public Task<int> KvCleanupAsync(string pattern, CancellationToken ct) => KeyValue.CleanupAsync(Caller, pattern, ct);

    public Task<KvHistoryResult> KvHistoryAsync(string key, int? limit, string? cursor, CancellationToken ct) =>
        KeyValue.GetHistoryAsync(Caller, key, limit, cursor, ct);
}
