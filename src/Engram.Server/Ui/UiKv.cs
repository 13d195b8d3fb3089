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

        var html = new HtmlBuilder();
        html.Add($"<form class=\"card filters\" method=\"get\" action=\"/ui/kv\"><label>Pattern<input name=\"pattern\" value=\"{pattern}\"></label><button type=\"submit\">List</button></form>");
        if (key is not null)
        {
            var item = await kv.GetAsync(caller, key, ct);
            var history = await kv.GetHistoryAsync(caller, key, 50, null, ct);
            html.Add($"<section class=\"card\" id=\"kv-value\"><h2>{key}</h2><pre class=\"mono\">{item.Value.GetRawText()}</pre>");
            html.Add($"<p>TTL: {new Raw(item.ExpiresAt is { } x ? $"<span data-expires=\"{x.UtcDateTime:O}\">{item.TtlSeconds} s</span>" : "none")}</p>");
            html.Add($"<h3>History</h3><ol class=\"timeline\">");
            foreach (var h in history.Items)
            {
                html.Add($"<li><strong>{h.Event}</strong> · version {h.Version} · <span class=\"mono\">{h.At}</span> · {h.Actor}<pre class=\"mono\">{h.Value?.GetRawText() ?? ""}</pre></li>");
            }
            html.Add($"</ol></section>");
        }
        html.Add($"<div class=\"table-wrap\"><table><thead><tr><th>Key</th><th>TTL</th><th>Version</th><th>Updated</th></tr></thead><tbody>");
        foreach (var k in page.Items)
        {
            html.Add($"<tr><td class=\"mono\"><a href=\"/ui/kv?pattern={Uri.EscapeDataString(pattern)}&amp;key={Uri.EscapeDataString(k.Key)}\">{k.Key}</a></td>");
            html.Add($"<td>{new Raw(k.ExpiresAt is { } x ? $"<span data-expires=\"{x.UtcDateTime:O}\">{k.TtlSeconds} s</span>" : "none")}</td><td>{k.Version}</td><td class=\"mono\">{k.UpdatedAt}</td></tr>");
        }
        if (page.Items.Count == 0)
        {
            html.Add($"<tr><td colspan=\"4\" class=\"muted\">No keys match.</td></tr>");
        }
        html.Add($"</tbody></table></div>");
        if (page.NextCursor is { } next)
        {
            html.Add($"<p><a class=\"button secondary\" href=\"/ui/kv?pattern={Uri.EscapeDataString(pattern)}&amp;cursor={Uri.EscapeDataString(next)}\">Next page</a></p>");
        }
        return UiPage.Render(http, "Key-value", "/ui/kv", html);
    }
}
