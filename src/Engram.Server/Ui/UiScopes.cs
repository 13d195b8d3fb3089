using Engram.Core.Memories;
using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>Scopes: the users, agents, sessions and namespaces the memories name, with counts, each a link to its memories and a delete (dry run first).</summary>
internal static class UiScopes
{
    /// <summary>The scan is bounded so the page stays fast on a big store; past it the page says the counts are partial.</summary>
    internal const int MaxScanned = 5_000;

    public static async Task<IResult> PageAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(UiPage.Filled(http.Request.Query));
        var caller = http.GetCaller();
        var counts = new SortedDictionary<(string Field, string Name), int>();
        string? cursor = null;
        var scanned = 0;
        do
        {
            var page = await memories.ListAsync(caller, new MemoryFilter { ExcludeSuperseded = true }, 1000, cursor, ct);
            foreach (var m in page.Items)
            {
                foreach (var (field, name) in new[] { ("user_id", m.UserId), ("agent_id", m.AgentId), ("session_id", m.SessionId), ("namespace", m.Namespace) })
                {
                    if (name is not null)
                    {
                        counts[(field, name)] = counts.GetValueOrDefault((field, name)) + 1;
                    }
                }
            }
            scanned += page.Items.Count;
            cursor = page.NextCursor;
        }
        while (cursor is not null && scanned < MaxScanned);

        var html = new HtmlBuilder();
        if (cursor is not null)
        {
            html.Add($"<p class=\"notice error\">Counts cover the newest {scanned} memories only.</p>");
        }
        html.Add($"<div class=\"table-wrap\"><table><thead><tr><th>Kind</th><th>Name</th><th>Memories</th><th></th></tr></thead><tbody>");
        foreach (var ((field, name), n) in counts)
        {
            html.Add($"<tr><td>{field}</td><td><a href=\"/ui/memories?{field}={Uri.EscapeDataString(name)}\">{name}</a></td><td>{n}</td><td>");
            if (caller.Role >= Role.Write)
            {
                html.Add($"<form method=\"post\" action=\"/ui/memories/bulk-delete\" class=\"inline\">{UiPage.Antiforgery(http)}<input type=\"hidden\" name=\"{field}\" value=\"{name}\"><button class=\"secondary\" type=\"submit\">Delete…</button></form>");
            }
            html.Add($"</td></tr>");
        }
        if (counts.Count == 0)
        {
            html.Add($"<tr><td colspan=\"4\" class=\"muted\">No memory names a scope.</td></tr>");
        }
        html.Add($"</tbody></table></div>");
        return UiPage.Render(http, "Scopes", "/ui/scopes", html);
    }
}
