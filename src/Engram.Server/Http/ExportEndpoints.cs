using Engram.Core.Common;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Transfer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary>
/// <c>GET /v1/admin/export</c>: the store as Engram's JSON Lines export (the format of
/// <c>engram export</c>), streamed as it is read from a consistent snapshot, so the server never
/// holds it in memory. The caller's tenant by default (its key's, or the one X-Engram-Tenant names), with the
/// key-value entries and graphs its scoped keys keep in the tenant's partitions;
/// <c>?all_tenants=true</c> exports every tenant; <c>?vectors=true</c> adds the stored embedding vectors. Admin keys only, and not scoped ones (a scope limits
/// a key to some users or agents of its tenant; an export would reach past it). Never API keys.
/// Not bound by Engram:RequestTimeoutSeconds: an export takes as long as the store is large.
/// </summary>
internal static class ExportEndpoints
{
    public const string ContentType = "application/x-ndjson";

    public static IEndpointRouteBuilder MapExportEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/admin/export", ExportAsync).WithName("ExportStore").WithTags("admin").Requires(Role.Admin)
            .WithSummary("The tenant's memories (with history), key-value entries and graph as JSON Lines, streamed; all_tenants=true for every tenant, vectors=true with the stored embedding vectors.")
            .Produces(StatusCodes.Status200OK, contentType: ContentType).ProducesProblem(403).DisableRequestTimeout();
        return app;
    }

    internal static async Task ExportAsync(HttpContext http, IMemoryStore store, TimeProvider clock, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query, "all_tenants", "vectors");
        var caller = http.GetCaller();
        caller.Require(Role.Admin, "export the store");
        if (caller.IsScoped)
        {
            throw new ForbiddenException("a scoped key may not export: the export holds every user and agent of the tenant");
        }
        var source = (IStoreTransfer)store; // both stores are (see IStoreTransfer)
        var tenant = QueryParser.Bool(http.Request.Query, "all_tenants") ? null : caller.Tenant;
        http.Response.ContentType = ContentType;
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"engram-export-{clock.GetUtcNow():yyyyMMdd-HHmmss}.jsonl\"";
        // The whole tenant in one body (the UI's Export link serves it to a browser too): no cache may keep a copy, and
        // no browser may read the JSON Lines, which hold stored text such as "<script>", as anything but what they are.
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers.XContentTypeOptions = "nosniff";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var vectors = QueryParser.Bool(http.Request.Query, "vectors");
        await StoreExport.WriteAsync(source, http.Response.Body, tenant, clock, vectors: vectors, ct: ct);
    }
}
