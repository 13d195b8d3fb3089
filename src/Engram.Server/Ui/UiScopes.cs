using Engram.Core.Memories;
using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>Scopes: the users, agents, sessions and namespaces the memories name, with counts, each a link to its memories and a delete (dry run first).</summary>
internal static class UiScopes
{
    public static async Task<IResult> PageAsync(HttpContext http, Core.Search.SearchService search, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(UiPage.Filled(http.Request.Query));
        var caller = http.GetCaller();
        // The same counts as GET /v1/scopes: one pass over the index, exact at any size.
        var counts = await search.CountScopesAsync(caller, ct);

        var html = new HtmlBuilder();
        html.Add($"<div class=\"table-wrap\"><table><thead><tr><th>Kind</th><th>Name</th><th>Memories</th><th></th></tr></thead><tbody>");
        foreach (var (field, name, n) in counts)
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
