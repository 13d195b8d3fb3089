using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Server.Http;

namespace Engram.Cli.Client;

internal sealed partial class HttpMemoryClient
{
    public async Task<KvWritten> KvSetAsync(string key, JsonElement value, long? ttlSeconds, bool nx, bool xx, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, KeyPath(key)) { Content = JsonContent(new KvPutRequest(value, ttlSeconds, nx ? true : null, xx ? true : null)) };
        return Deserialize<KvWritten>(await SendAsync(request, ct), EngramJson.Options);
    }

    public async Task<KvItem> KvGetAsync(string key, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, KeyPath(key));
        return Deserialize<KvItem>(await SendAsync(request, ct), EngramJson.Options);
    }

    public async Task KvDeleteAsync(string key, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, KeyPath(key));
        await SendAsync(request, ct);
    }

    public async Task<KvPage> KvListAsync(string? pattern, int? limit, string? cursor, CancellationToken ct)
    {
        var query = new List<string>();
        if (pattern is not null)
        {
            query.Add("pattern=" + Uri.EscapeDataString(pattern));
        }
        if (limit is not null)
        {
            query.Add("limit=" + limit.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        if (cursor is not null)
        {
            query.Add("cursor=" + Uri.EscapeDataString(cursor));
        }
        using var request = new HttpRequestMessage(HttpMethod.Get, "v1/kv" + (query.Count == 0 ? "" : "?" + string.Join('&', query)));
        return Deserialize<KvPage>(await SendAsync(request, ct), EngramJson.Options);
    }

    public async Task<KvHistoryResult> KvHistoryAsync(string key, int? limit, string? cursor, CancellationToken ct)
    {
        var query = "?history=true" + (limit is null ? "" : "&limit=" + limit.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)) +
            (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor));
        using var request = new HttpRequestMessage(HttpMethod.Get, KeyPath(key) + query);
        return Deserialize<KvHistoryResult>(await SendAsync(request, ct), EngramJson.Options);
    }

    public async Task<long> KvIncrementAsync(string key, long by, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, KeyPath(key) + "/incr") { Content = JsonContent(new KvIncrRequest(by)) };
        return Deserialize<KvIncrResponse>(await SendAsync(request, ct), EngramJson.Options).Value;
    }

    public async Task<KvItem> KvExpireAsync(string key, long ttlSeconds, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, KeyPath(key) + "/expire") { Content = JsonContent(new KvExpireRequest(ttlSeconds)) };
        return Deserialize<KvItem>(await SendAsync(request, ct), EngramJson.Options);
    }

    /// <summary>Calls cleanup until the server says it is done (each call is bounded in time), so the CLI shows one command.</summary>
    public async Task<int> KvCleanupAsync(string pattern, CancellationToken ct)
    {
        var total = 0;
        string? cursor = null;
        do
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/kv/cleanup") { Content = JsonContent(new KvCleanupRequest(pattern, cursor)) };
            var step = Deserialize<KvCleanupResult>(await SendAsync(request, ct), EngramJson.Options);
            total += step.Deleted;
            cursor = step.Done ? null : step.NextCursor ?? throw new BackendUnavailableException("the server answered done=false without a next_cursor");
        }
        while (cursor is not null);
        return total;
    }

    /// <summary>Each key is one escaped path segment ('/' as %2F, ':' as %3A): the server decodes the raw target once.</summary>
    private static string KeyPath(string key) => "v1/kv/" + Uri.EscapeDataString(key);
}
