using Engram.Core.Memories;
using Engram.Core.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Net.Http.Headers;

namespace Engram.Server.Http;

/// <summary><c>/v1/memories</c>: create (single and batch), read, list, update, delete, bulk delete, history.</summary>
internal static class MemoriesEndpoints
{
    public static IEndpointRouteBuilder MapMemoriesEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/memories").WithTags("memories");

        group.MapPost("/", CreateAsync).WithName("CreateMemory").Requires(Role.Write)
            .WithSummary("Remember something. 201 when new; 200 with duplicate=true when the same content exists in the same scope.")
            .Accepts<NewMemory>("application/json")
            .Produces<WrittenMemory>(StatusCodes.Status201Created).Produces<WrittenMemory>(StatusCodes.Status200OK)
            .ProducesProblem(400).ProducesProblem(409);
        group.MapPost("/batch", CreateBatchAsync).WithName("CreateMemories").Requires(Role.Write)
            .WithSummary("Create up to 1,000 memories in one transaction; each item reports created, duplicate or error.")
            .Accepts<BatchRequest>("application/json").Produces<BatchResponse>().ProducesProblem(400);
        group.MapGet("/{id}", GetAsync).WithName("GetMemory").Requires(Role.Read).Produces<Memory>().ProducesProblem(404);
        group.MapGet("/", ListAsync).WithName("ListMemories").Requires(Role.Read)
            .WithSummary("List memories newest first, filtered; page with limit and next_cursor.")
            .Produces<MemoryListResponse>().ProducesProblem(400);
        group.MapPatch("/{id}", UpdateAsync).WithName("UpdateMemory").Requires(Role.Write)
            .WithSummary("Partial update: absent fields stay, null clears. If-Match: \"<version>\" guards against lost updates.")
            .Accepts<MemoryPatch>("application/json").Produces<WrittenMemory>()
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(412);
        group.MapDelete("/{id}", DeleteAsync).WithName("DeleteMemory").Requires(Role.Write).Produces(StatusCodes.Status204NoContent).ProducesProblem(404);
        group.MapDelete("/", DeleteManyAsync).WithName("DeleteMemories").Requires(Role.Write)
            .WithSummary("Delete every memory matching a filter; needs a scope filter and confirm=true.")
            .Produces<BulkDeleteResponse>().ProducesProblem(400);
        group.MapGet("/{id}/history", HistoryAsync).WithName("GetMemoryHistory").Requires(Role.Read).Produces<HistoryResponse>().ProducesProblem(404);
        return app;
    }

    private static async Task<IResult> CreateAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        if (Mem0.Mem0Endpoints.IsMem0Request(http))
        {
            return await Mem0Call(http, () => Mem0.Mem0Endpoints.AddAsync(http, memories, ct));
        }
        QueryParser.RefuseAllExcept(http.Request.Query, "on_duplicate");
        var policy = QueryParser.OnDuplicate(http.Request.Query);
        var request = await JsonBody.ReadAsync<NewMemory>(http.Request, BodySize.Memory, ct);
        var result = await memories.CreateAsync(http.GetCaller(), request, policy, ct);
        SetETag(http, result.Memory.Version);
        var body = new WrittenMemory(result);
        return result.Duplicate
            ? TypedResults.Ok(body)
            : TypedResults.Created($"/v1/memories/{result.Memory.Id}", body);
    }

    private static async Task<IResult> CreateBatchAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query, "on_duplicate");
        var policy = QueryParser.OnDuplicate(http.Request.Query);
        var request = await JsonBody.ReadAsync<BatchRequest>(http.Request, BodySize.Batch, ct);
        var results = await memories.CreateBatchAsync(http.GetCaller(), request.Items ?? [], policy, ct);
        return TypedResults.Ok(new BatchResponse(results));
    }

    private static async Task<IResult> GetAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        if (Mem0.Mem0Endpoints.IsMem0Request(http))
        {
            return await Mem0Call(http, () => Mem0.Mem0Endpoints.GetAsync(id, http, memories, ct));
        }
        QueryParser.RefuseAllExcept(http.Request.Query);
        var memory = await memories.GetAsync(http.GetCaller(), id, ct);
        SetETag(http, memory.Version);
        return TypedResults.Ok(memory);
    }

    private static async Task<IResult> ListAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        if (Mem0.Mem0Endpoints.IsMem0Request(http))
        {
            return await Mem0Call(http, () => Mem0.Mem0Endpoints.ListFromQueryAsync(http, memories, ct));
        }
        var query = http.Request.Query;
        var filter = QueryParser.Filter(query, "limit", "cursor");
        var page = await memories.ListAsync(http.GetCaller(), filter, QueryParser.Int(query, "limit"), QueryParser.Single(query, "cursor"), ct);
        return TypedResults.Ok(new MemoryListResponse(page.Items, page.NextCursor));
    }

    private static async Task<IResult> UpdateAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var expected = ParseIfMatch(http.Request.Headers.IfMatch.ToString());
        var patch = await JsonBody.ReadAsync<MemoryPatch>(http.Request, BodySize.Memory, ct);
        var result = await memories.UpdateAsync(http.GetCaller(), id, patch, expected, ct);
        SetETag(http, result.Memory.Version);
        return TypedResults.Ok(new WrittenMemory(result));
    }

    private static async Task<IResult> DeleteAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        if (Mem0.Mem0Endpoints.IsMem0Request(http))
        {
            return await Mem0Call(http, () => Mem0.Mem0Endpoints.DeleteAsync(id, http, memories, ct));
        }
        QueryParser.RefuseAllExcept(http.Request.Query);
        var seq = await memories.DeleteAsync(http.GetCaller(), id, ct);
        http.Response.Headers["X-Engram-Seq"] = seq.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> DeleteManyAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        if (Mem0.Mem0Endpoints.IsMem0Request(http))
        {
            return await Mem0Call(http, () => Mem0.Mem0Endpoints.DeleteAllAsync(http, memories, ct));
        }
        var filter = QueryParser.Filter(http.Request.Query, "confirm");
        var result = await memories.DeleteManyAsync(http.GetCaller(), filter, QueryParser.Bool(http.Request.Query, "confirm"), ct);
        http.Audit(AuditActions.MemoriesBulkDelete, http.Request.QueryString.Value, $"{result.Deleted} deleted");
        return TypedResults.Ok(new BulkDeleteResponse(result.Deleted, result.LastSeq));
    }

    private static async Task<IResult> HistoryAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        if (Mem0.Mem0Endpoints.IsMem0Request(http))
        {
            return await Mem0Call(http, () => Mem0.Mem0Endpoints.HistoryAsync(id, http, memories, ct));
        }
        QueryParser.RefuseAllExcept(http.Request.Query);
        var history = await memories.GetHistoryAsync(http.GetCaller(), id, ct);
        return TypedResults.Ok(new HistoryResponse(history));
    }

    /// <summary>A mem0 client's request on a path both APIs share: the mem0 handler, with mem0's error bodies.</summary>
    private static async Task<IResult> Mem0Call(HttpContext http, Func<Task<IResult>> handler) =>
        (IResult)(await Mem0.Mem0Endpoints.Guard(http, async () => await handler()))!;

    private static void SetETag(HttpContext http, long version) =>
        http.Response.Headers.ETag = $"\"{version}\"";

    /// <summary>Accepts <c>"3"</c>, <c>W/"3"</c>, <c>3</c> or <c>*</c> (any version).</summary>
    private static long? ParseIfMatch(string header)
    {
        if (string.IsNullOrWhiteSpace(header) || header.Trim() == "*")
        {
            return null;
        }
        if (EntityTagHeaderValue.TryParse(header.Trim(), out var tag) && long.TryParse(tag.Tag.AsSpan().Trim('"'), out var version))
        {
            return version;
        }
        if (long.TryParse(header.Trim(), out var bare))
        {
            return bare;
        }
        throw new Core.Common.ValidationException("If-Match", $"If-Match must be the ETag of the memory, e.g. \"3\" (got {header})");
    }
}

public sealed record BatchRequest(IReadOnlyList<NewMemory?>? Items);

public sealed record BatchResponse(IReadOnlyList<BatchItemResult> Results);

public sealed record MemoryListResponse(IReadOnlyList<Memory> Items, string? NextCursor);

public sealed record BulkDeleteResponse(int Deleted, long? Seq);

public sealed record HistoryResponse(IReadOnlyList<HistoryEntry> Items);
