using Engram.Core.Memories;
using Engram.Core.Reflection;
using Engram.Core.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary>
/// Reflections (issue 16): <c>POST /v1/reflect</c> runs one reflection pass over the caller's scopes now (write role; a
/// scoped key reflects on its own scope only); <c>GET /v1/memories/{id}/links</c> shows a memory's links (derived_from,
/// duplicate_of and the reverse); <c>GET /v1/memories?duplicate_of=ID</c> (or <c>*</c>) is served by
/// <see cref="MemoriesEndpoints"/> through <see cref="ReflectionService.ListDuplicatesAsync"/>.
/// </summary>
internal static class ReflectEndpoints
{
    public static IEndpointRouteBuilder MapReflectEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/reflect", ReflectAsync).WithName("Reflect").WithTags("reflections").Requires(Role.Write)
            .WithSummary("Reflect now: near-duplicates (merged by the model, flagged without one) and reflection memories per changed scope. " +
                "Body ({} at least): user_id, agent_id, session_id, namespace narrow the scopes; dry_run plans only; duplicates_only needs no model. " +
                "Without a model and without duplicates_only: 503.")
            .Accepts<ReflectRequest>("application/json").Produces<ReflectionReport>().ProducesProblem(400).ProducesProblem(502).ProducesProblem(503)
            .DisableRequestTimeout();
        app.MapGet("/v1/memories/{id}/links", LinksAsync).WithName("GetMemoryLinks").WithTags("memories").Requires(Role.Read)
            .WithSummary("A memory's links: derived_from (a reflection's sources), duplicate_of, and the reflections derived from it and its flagged duplicates.")
            .Produces<MemoryLinks>().ProducesProblem(404);
        return app;
    }

    private static async Task<IResult> ReflectAsync(HttpContext http, ReflectionService reflections, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        // A JSON body is required (at least {}), as on every other POST: an empty one is a 400, not a default run.
        var request = await JsonBody.ReadAsync<ReflectRequest>(http.Request, BodySize.Small, ct);
        return TypedResults.Ok(await reflections.RunAsync(http.GetCaller(), request, ct: ct));
    }

    private static async Task<IResult> LinksAsync(string id, HttpContext http, ReflectionService reflections, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        return TypedResults.Ok(await reflections.GetLinksAsync(http.GetCaller(), id, ct));
    }

    /// <summary><c>GET /v1/memories?duplicate_of=ID|*</c> (with limit and cursor only): the memories flagged as duplicates.</summary>
    public static async Task<IResult> DuplicatesAsync(HttpContext http, ReflectionService reflections, CancellationToken ct)
    {
        var query = http.Request.Query;
        QueryParser.RefuseAllExcept(query, "duplicate_of", "limit", "cursor");
        var page = await reflections.ListDuplicatesAsync(http.GetCaller(), QueryParser.Single(query, "duplicate_of") ?? "", QueryParser.Int(query, "limit"),
            QueryParser.Single(query, "cursor"), ct);
        return TypedResults.Ok(new MemoryListResponse(page.Items, page.NextCursor));
    }
}
