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

        return UiPage.Render<ScopesPage>(http, new ScopesPage.Data(counts, caller.Role >= Role.Write));
    }
}
