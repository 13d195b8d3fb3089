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
            .WithSummary("Remember something. 201 when new; 200 with duplicate=true when the same content exists in the same scope. " +
                "With messages (a conversation) instead of content: 202 with the extraction job's id (wait=true: the job once done), or, with infer=false, each user message stored as it is " +
                "(results per message: 201 when one was created, 200 when all were duplicates, 400 or 409 with the results when none was stored).")
            .Accepts<NewMemory>("application/json")
            .Produces<WrittenMemory>(StatusCodes.Status201Created).Produces<WrittenMemory>(StatusCodes.Status200OK)
            .Produces<JobAccepted>(StatusCodes.Status202Accepted).Produces<Core.Llm.ExtractionJob>(StatusCodes.Status200OK)
            .ProducesProblem(400).ProducesProblem(409).ProducesProblem(503);
        group.MapPost("/batch", CreateBatchAsync).WithName("CreateMemories").Requires(Role.Write)
            .WithSummary("Create up to 1,000 memories in one transaction; each item reports created, duplicate or error.")
            .Accepts<BatchRequest>("application/json").Produces<BatchResponse>().ProducesProblem(400);
        group.MapGet("/{id}", GetAsync).WithName("GetMemory").Requires(Role.Read).Produces<Memory>().ProducesProblem(404);
        group.MapGet("/", ListAsync).WithName("ListMemories").Requires(Role.Read)
            .WithSummary("List memories newest first, filtered; page with limit and next_cursor. duplicate_of=ID (or *) lists the memories flagged as near-duplicates of ID (of any), with limit and cursor only.")
            .Produces<MemoryListResponse>().ProducesProblem(400);
        group.MapPatch("/{id}", UpdateAsync).WithName("UpdateMemory").Requires(Role.Write)
            .WithSummary("Partial update: absent fields stay, null clears. If-Match: \"<version>\" guards against lost updates.")
            .Accepts<MemoryPatch>("application/json").Produces<WrittenMemory>()
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(412);
        group.MapDelete("/{id}", DeleteAsync).WithName("DeleteMemory").Requires(Role.Write).Produces(StatusCodes.Status204NoContent).ProducesProblem(404)
            .ProducesProblem(412).WithSummary("Deletes a memory. If-Match: \"<version>\" deletes it only at that version.");
        group.MapDelete("/", DeleteManyAsync).WithName("DeleteMemories").Requires(Role.Write)
            .WithSummary("Delete every memory matching a filter; needs a scope filter and confirm=true.")
            .Produces<BulkDeleteResponse>().ProducesProblem(400);
        group.MapGet("/{id}/history", HistoryAsync).WithName("GetMemoryHistory").Requires(Role.Read).Produces<HistoryResponse>().ProducesProblem(404);
        return app;
    }

    private static async Task<IResult> CreateAsync(HttpContext http, MemoryService memories, Core.Llm.ConversationExtractor extractor, CancellationToken ct)
    {
        if (Mem0.Mem0Endpoints.IsMem0Request(http))
        {
            return await Mem0Call(http, () => Mem0.Mem0Endpoints.AddAsync(http, memories, ct));
        }
        QueryParser.RefuseAllExcept(http.Request.Query, "on_duplicate", "wait");
        var policy = QueryParser.OnDuplicate(http.Request.Query);
        var request = await JsonBody.ReadAsync<NewMemory>(http.Request, BodySize.Memory, ct);
        if (request.Messages is not null || request.Infer is not null)
        {
            return await ConversationAsync(http, request, policy, memories, extractor, ct);
        }
        if (QueryParser.Bool(http.Request.Query, "wait"))
        {
            throw new Core.Common.ValidationException("wait", "wait=true waits for an extraction job: send messages (a conversation) with it");
        }
        var result = await memories.CreateAsync(http.GetCaller(), request, policy, ct);
        SetETag(http, result.Memory.Version);
        var body = new WrittenMemory(result);
        return result.Duplicate
            ? TypedResults.Ok(body)
            : TypedResults.Created($"/v1/memories/{result.Memory.Id}", body);
    }

    /// <summary>
    /// A conversation: with infer (the default) it is stored with its extraction job and the job's id answered at once
    /// (202), or the job once done with wait=true (bounded); with infer=false each user message becomes a memory as it is.
    /// </summary>
    private static async Task<IResult> ConversationAsync(HttpContext http, NewMemory request, DuplicatePolicy policy, MemoryService memories,
        Core.Llm.ConversationExtractor extractor, CancellationToken ct)
    {
        if (request.Messages is null)
        {
            throw new Core.Common.ValidationException("infer", "infer goes with messages (a conversation to extract memories from)");
        }
        if (request.Content is not null)
        {
            throw new Core.Common.ValidationException("content", "send content (one memory) or messages (a conversation), not both");
        }
        var infer = request.Infer ?? true;
        var wait = QueryParser.Bool(http.Request.Query, "wait");
        if (!infer)
        {
            if (wait)
            {
                throw new Core.Common.ValidationException("wait", "wait=true waits for an extraction job; infer=false stores at once");
            }
            // Verbatim: each user message as it is, with the request's fields (type, tags, ...), through the batch path.
            var positions = request.Messages.Select((m, i) => (m, i)).Where(p => p.m?.Role == "user").Select(p => p.i).ToList();
            var items = positions.Select(i => (NewMemory?)(request with { Content = request.Messages[i]!.Content, Messages = null, Infer = null })).ToList();
            if (items.Count == 0)
            {
                throw new Core.Common.ValidationException("messages", "messages must hold at least one user message");
            }
            return VerbatimOutcome(await memories.CreateBatchAsync(http.GetCaller(), items, policy, ct), positions);
        }
        // What the model decides is not the caller's to set.
        var decided = request.Type is not null ? "type" : request.Tier is not null ? "tier" : request.Importance is not null ? "importance"
            : request.Valence is not null ? "valence" : request.Tags is not null ? "tags" : request.Entities is not null ? "entities"
            : request.ExpiresAt is not null ? "expires_at" : request.TtlSeconds is not null ? "ttl_seconds" : request.ValidFrom is not null ? "valid_from"
            : request.ValidTo is not null ? "valid_to" : request.CreatedAt is not null ? "created_at" : null;
        if (decided is not null)
        {
            throw new Core.Common.ValidationException(decided, $"{decided} is decided per fact by the model when infer is true (send infer=false to store the messages as they are)");
        }
        var conversation = new Core.Llm.Conversation(request.Messages)
        {
            UserId = request.UserId,
            AgentId = request.AgentId,
            SessionId = request.SessionId,
            Namespace = request.Namespace,
            Metadata = request.Metadata,
            Source = request.Source,
        };
        var caller = http.GetCaller();
        var id = await extractor.EnqueueAsync(caller, conversation, ct);
        http.Response.Headers.Location = $"/v1/jobs/{id}";
        if (!wait)
        {
            return TypedResults.Json(new JobAccepted(id, Core.Llm.ExtractionStatus.Queued), statusCode: StatusCodes.Status202Accepted);
        }
        // The job is stored: what is left is waiting, bounded by MaxWait itself. Under the request time-out (30 s by
        // default) a wait past it was answered 503 "read before retrying", and a client retrying queued the same
        // conversation again.
        http.Features.Get<Microsoft.AspNetCore.Http.Timeouts.IHttpRequestTimeoutFeature>()?.DisableTimeout();
        var job = await extractor.WaitAsync(caller, id, Core.Llm.ConversationExtractor.MaxWait, ct);
        return TypedResults.Json(job, statusCode: job.IsFinished ? StatusCodes.Status200OK : StatusCodes.Status202Accepted);
    }

    /// <summary>
    /// The answer to a conversation stored verbatim. Each user message is an item of a batch and reports in its slot, as
    /// on the batch route; the status tells what became of the whole: 201 when a memory was created, 200 when every
    /// stored message was a duplicate of an existing memory, and a problem body with the per-message results when
    /// nothing was stored (409 when every message was a duplicate refused by on_duplicate=reject, else 400).
    /// </summary>
    private static IResult VerbatimOutcome(IReadOnlyList<BatchItemResult> results, List<int> positions)
    {
        var body = new BatchResponse(results);
        if (results.Any(r => r.Status == BatchItemResult.Created))
        {
            return TypedResults.Created((string?)null, body);
        }
        if (results.Any(r => r.Status == BatchItemResult.DuplicateStatus))
        {
            return TypedResults.Ok(body);
        }
        // Every item failed: a refused duplicate carries the existing memory's id, a validation error none.
        var rejected = results.All(r => r.Id is not null);
        var extra = new Dictionary<string, object?> { ["results"] = results };
        if (rejected)
        {
            extra["existing_id"] = results[0].Id;
        }
        var detail = $"nothing was stored: messages[{positions[0]}]: {results[0].Error}" + (results.Count > 1 ? $" (and {results.Count - 1} more; see results)" : "");
        return Problems.For(rejected ? StatusCodes.Status409Conflict : StatusCodes.Status400BadRequest, detail, rejected ? null : "messages", extra);
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

    private static async Task<IResult> ListAsync(HttpContext http, MemoryService memories, Core.Reflection.ReflectionService reflections, CancellationToken ct)
    {
        if (Mem0.Mem0Endpoints.IsMem0Request(http))
        {
            return await Mem0Call(http, () => Mem0.Mem0Endpoints.ListFromQueryAsync(http, memories, ct));
        }
        var query = http.Request.Query;
        if (query.ContainsKey("duplicate_of"))
        {
            return await ReflectEndpoints.DuplicatesAsync(http, reflections, ct); // flagged near-duplicates (reflections, issue 16)
        }
        var filter = QueryParser.Filter(query, "limit", "cursor", "include_superseded") with { ExcludeSuperseded = !QueryParser.Bool(query, "include_superseded") };
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
        var seq = await memories.DeleteAsync(http.GetCaller(), id, ParseIfMatch(http.Request.Headers.IfMatch.ToString()), ct);
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
