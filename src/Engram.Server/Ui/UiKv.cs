using Engram.Core.KeyValue;
using Engram.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>Key-value: keys by pattern (paged), one key's value, its TTL (counting down with JS) and history.</summary>
internal static class UiKv
{
    public static async Task<IResult> PageAsync(HttpContext http, KvService kv, CancellationToken ct)
    {
        var query = UiPage.Filled(http.Request.Query);
        QueryParser.RefuseAllExcept(query, "pattern", "key", "cursor");
        var pattern = QueryParser.Single(query, "pattern") ?? "*";
        var key = QueryParser.Single(query, "key");
        var caller = http.GetCaller();
        var page = await kv.ListAsync(caller, pattern, 100, QueryParser.Single(query, "cursor"), ct);

        var item = key is null ? null : await kv.GetAsync(caller, key, ct);
        IReadOnlyList<KvHistoryItem> history = key is null ? [] : (await kv.GetHistoryAsync(caller, key, 50, null, ct)).Items;
        return UiPage.Render<KeyValuePage>(http, new KeyValuePage.Data(pattern, page, key, item, history));
    }
}
