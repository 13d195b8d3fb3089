using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Engram.Core.Common;
using Engram.Core.Llm;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using static Engram.Server.Http.Mem0.Mem0Values;

namespace Engram.Server.Http.Mem0;

/// <summary>
/// mem0's platform API as its official clients call it (3.x: /v3/memories/…; 1.x/2.x: /v1 and /v2 paths), translated
/// onto <see cref="MemoryService"/> and <see cref="SearchService"/>: no second store and no second rule. Field mapping:
/// user_id and agent_id as they are, run_id → session_id, app_id → namespace; memory ids shown as UUIDs (the ULID's
/// 128 bits) and accepted in both forms; errors as <c>{"detail": …}</c>. Paths that Engram's own API also has
/// (<c>/v1/memories…</c>) reach these handlers through <see cref="IsMem0Request"/>.
/// </summary>
internal static class Mem0Endpoints
{
    public static IEndpointRouteBuilder MapMem0Endpoints(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("").WithTags("mem0").AddEndpointFilter(async (context, next) => await Guard(context.HttpContext, async () => await next(context)));
        g.MapGet("/v1/ping", Ping).WithName("Mem0Ping").Requires(Role.Read)
            .WithSummary("mem0 compatibility: check the key (Authorization: Token <key>)");
        g.MapPost("/v3/memories/add", AddV3).WithName("Mem0AddV3").Requires(Role.Write)
            .WithSummary("mem0 compatibility: add messages (infer: extraction by the model when one is configured)");
        g.MapPost("/v3/memories/search", SearchV3).WithName("Mem0SearchV3").Requires(Role.Read)
            .WithSummary("mem0 compatibility: search with mem0 filters (AND/OR/NOT, operators, *)");
        g.MapPost("/v3/memories", ListV3).WithName("Mem0ListV3").Requires(Role.Read)
            .WithSummary("mem0 compatibility: list memories matching filters, paginated (page, page_size)");
        g.MapPost("/v2/memories", ListV2).WithName("Mem0ListV2").Requires(Role.Read)
            .WithSummary("mem0 compatibility (1.x/2.x clients): list memories matching filters");
        g.MapPost("/v2/memories/search", SearchV2).WithName("Mem0SearchV2").Requires(Role.Read)
            .WithSummary("mem0 compatibility (1.x/2.x clients): search");
        g.MapPost("/v1/memories/search", SearchV1).WithName("Mem0SearchV1").Requires(Role.Read)
            .WithSummary("mem0 compatibility (1.x/2.x clients): search");
        g.MapPut("/v1/memories/{id}", UpdateAsync).WithName("Mem0Update").Requires(Role.Write)
            .WithSummary("mem0 compatibility: replace a memory's text, metadata or expiration date (at least one of them)");
        g.MapGet("/v1/entities", EntitiesAsync).WithName("Mem0Entities").Requires(Role.Read)
            .WithSummary("mem0 compatibility: the users, agents, runs (sessions) and apps (namespaces) that hold memories");
        g.MapDelete("/v1/entities/{type}/{name}", DeleteEntityAsync).WithName("Mem0DeleteEntityV1").Requires(Role.Write)
            .WithSummary("mem0 compatibility: delete every memory of a user, agent, run or app");
        g.MapDelete("/v2/entities/{type}/{name}", DeleteEntityAsync).WithName("Mem0DeleteEntity").Requires(Role.Write)
            .WithSummary("mem0 compatibility: delete every memory of a user, agent, run or app");
        g.MapPut("/v1/batch", BatchUpdateAsync).WithName("Mem0BatchUpdate").Requires(Role.Write)
            .WithSummary("mem0 compatibility: change the text of up to 1,000 memories");
        g.MapDelete("/v1/batch", BatchDeleteAsync).WithName("Mem0BatchDelete").Requires(Role.Write)
            .WithSummary("mem0 compatibility: delete up to 1,000 memories (JSON body)");
        g.MapGet("/v1/event/{id}", EventAsync).WithName("Mem0Event").Requires(Role.Read)
            .WithSummary("mem0 compatibility: the outcome of an add");
        return app;
    }

    /// <summary>
    /// True for a request of a mem0 client on a path Engram's own API also serves (<c>/v1/memories…</c>): such clients
    /// always write the platform's trailing slash; Engram's own clients never do (the key's scheme decides nothing).
    /// </summary>
    public static bool IsMem0Request(HttpContext http)
    {
        return (http.Request.Path.Value ?? "").EndsWith('/');
    }

    /// <summary>Runs a mem0 handler; a failure becomes a body with the platform's <c>detail</c> and its status.</summary>
    public static async Task<object?> Guard(HttpContext http, Func<Task<object?>> handler)
    {
        try
        {
            return await handler();
        }
        catch (Exception ex) when (Status(ex) is { } status && !http.Response.HasStarted)
        {
            var detail = ex is JsonException json ? JsonErrors.Describe(json, out _) : ex.Message;
            // Engram's problem body: mem0's clients read its "detail", Engram's tooling its type, title and status.
            return Problems.For(status, detail);
        }
    }

    private static int? Status(Exception ex) => ex switch
    {
        ValidationException or JsonException => 400,
        NotFoundException => 404,
        ForbiddenException => 403,
        ConflictException => 409,
        PreconditionFailedException => 412,
        BadHttpRequestException b => b.StatusCode,
        Core.Operations.WritesRefusedException => 503,
        LlmNotConfiguredException => 503,
        LlmUnavailableException or LlmOutputException => 502,
        _ => null,
    };

    // ---- ping ----

    private static IResult Ping(HttpContext http)
    {
        var caller = http.GetCaller();
        return Results.Json(new JsonObject
        {
            ["status"] = "ok",
            ["message"] = "Engram (mem0-compatible API)",
            ["org_id"] = caller.Tenant,
            ["project_id"] = caller.Tenant,
            ["user_email"] = null,
        });
    }

    // ---- add ----

    private static Task<IResult> AddV3(HttpContext http, MemoryService memories, CancellationToken ct) => AddAsync(http, memories, ct);

    /// <summary>POST /v1/memories/ and /v3/memories/add/: the messages become memories (one code path: MemoryService).</summary>
    public static async Task<IResult> AddAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var body = await ReadAsync(http, BodySize.Batch, ct);
        var messages = Messages(body["messages"]);
        if (messages.Count == 0)
        {
            throw new ValidationException("messages", "messages must be a non-empty string or list of {role, content}");
        }
        if (messages.Count > ConversationExtractor.MaxMessages)
        {
            // The bound of a conversation (also when each message would be stored as it is: a batch of that size).
            throw new ValidationException("messages", $"at most {ConversationExtractor.MaxMessages} messages per add");
        }
        var scope = Scope(body, http.Request.Query);
        var metadata = ObjectValue(body["metadata"], "metadata") is { } m ? JsonSerializer.SerializeToElement(m) : (JsonElement?)null;
        var infer = Bool(body["infer"], "infer") ?? true;
        var createdAt = Timestamp(body["timestamp"]);
        var expiresAt = ExpirationDate(body["expiration_date"] ?? body["expirationDate"]);
        var caller = http.GetCaller();

        string? notInferred = null;
        if (infer)
        {
            var llm = http.RequestServices.GetService<LlmAccess>();
            var extractor = http.RequestServices.GetService<IConversationExtractor>();
            if (llm is { IsConfigured: true } && extractor is not null)
            {
                var jobId = await extractor.EnqueueAsync(caller, new Conversation(messages)
                {
                    UserId = scope.UserId,
                    AgentId = scope.AgentId,
                    SessionId = scope.SessionId,
                    Namespace = scope.Namespace,
                    Metadata = metadata,
                    Source = "mem0",
                }, ct);
                var queued = Events(http).Record(caller.Tenant, jobId, "PENDING", [], "extraction queued: the memories appear when the job finishes (GET /v1/jobs/" + jobId + ")");
                return Results.Json(queued);
            }
            notInferred = llm is { IsConfigured: true }
                ? "no inference ran: this server has no extraction service"
                : "no inference ran: no language model is configured (LLM_BASE_URL, LLM_MODEL)";
        }

        var items = new List<NewMemory>();
        foreach (var (message, i) in messages.Select((message, i) => (message, i)))
        {
            // infer=false stores every message of the conversation as it is; the fallback of infer=true only the user's.
            if (message.Role == "system" || (infer && message.Role != "user") || string.IsNullOrWhiteSpace(message.Content))
            {
                continue;
            }
            items.Add(new NewMemory
            {
                Content = CheckText(memories, message.Content, body["messages"] is JsonArray ? $"messages[{i}].content" : "messages"),
                UserId = scope.UserId,
                AgentId = scope.AgentId,
                SessionId = scope.SessionId,
                Namespace = scope.Namespace,
                Metadata = metadata,
                Source = "mem0",
                CreatedAt = createdAt,
                ExpiresAt = expiresAt,
            });
        }
        if (items.Count == 0)
        {
            // As Engram's own route: an add that stores nothing is refused, not answered SUCCEEDED with no results.
            throw new ValidationException("messages", infer
                ? $"nothing to store: {notInferred}, so only user messages are stored (verbatim), and this conversation has none with text (send infer=false to store every non-system message as it is)"
                : "nothing to store: messages hold no message with text other than system messages");
        }
        var results = new JsonArray();
        // All or nothing, in one transaction: a message the store refuses (too long, NUL, …) refuses the whole add.
        foreach (var written in await memories.CreateAllAsync(caller, items, ct))
        {
            var item = ToMem0(written.Memory);
            item["event"] = written.Duplicate ? "NONE" : "ADD";
            item["data"] = new JsonObject { ["memory"] = written.Memory.Content };
            results.Add(item);
        }
        var eventId = Guid.NewGuid().ToString();
        var response = Events(http).Record(caller.Tenant, eventId, "SUCCEEDED", results, notInferred is null ? null : notInferred + ", so each user message was stored verbatim");
        response["infer"] = notInferred is null && infer;
        return Results.Json(response);
    }

    private static List<ConversationMessage> Messages(JsonNode? node)
    {
        switch (node)
        {
            case JsonValue v when v.TryGetValue<string>(out var text):
                return [new ConversationMessage("user", text)];
            case JsonObject one:
                return [Message(one, "messages")];
            case JsonArray array:
                return [.. array.Select((n, i) => n switch
                {
                    JsonObject o => Message(o, $"messages[{i}]"),
                    JsonValue s when s.TryGetValue<string>(out var t) => new ConversationMessage("user", t),
                    _ => throw new ValidationException($"messages[{i}]", $"messages[{i}] must be {{\"role\", \"content\"}}"),
                })];
            default:
                return [];
        }
    }

    private static ConversationMessage Message(JsonObject o, string path)
    {
        var role = o["role"] is JsonValue r && r.TryGetValue<string>(out var rs) ? rs : "user";
        var content = o["content"] switch
        {
            JsonValue c when c.TryGetValue<string>(out var cs) => cs,
            JsonObject { } part when part["text"] is JsonValue t && t.TryGetValue<string>(out var ts) => ts,
            JsonArray parts => string.Join("\n", parts.OfType<JsonObject>().Select(p => p["text"] is JsonValue t && t.TryGetValue<string>(out var ts) ? ts : null).OfType<string>()),
            _ => throw new ValidationException(path + ".content", $"{path}.content must be text"),
        };
        return new ConversationMessage(role, content, o["name"] is JsonValue n && n.TryGetValue<string>(out var ns) ? ns : null);
    }

    private static DateTimeOffset? Timestamp(JsonNode? node) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.GetValue<double>() is var seconds && seconds is >= 0 and < 253_402_300_800 =>
            DateTimeOffset.FromUnixTimeMilliseconds((long)(seconds * 1000)),
        JsonValue v when v.TryGetValue<string>(out var s) && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) => t,
        _ => throw new ValidationException("timestamp", "timestamp must be Unix seconds or an ISO 8601 date"),
    };

    private static DateTimeOffset? ExpirationDate(JsonNode? node) => node switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) =>
            s.Length <= 10 && t.Year < 9999 ? t.AddDays(1) : t, // a date: the memory lasts through that day
        _ => throw new ValidationException("expiration_date", "expiration_date must be a date (YYYY-MM-DD)"),
    };

    // ---- search ----

    private static Task<IResult> SearchV3(HttpContext http, SearchService search, CancellationToken ct) => SearchAsync(http, search, false, ct);

    private static Task<IResult> SearchV2(HttpContext http, SearchService search, CancellationToken ct) => SearchAsync(http, search, false, ct);

    private static Task<IResult> SearchV1(HttpContext http, SearchService search, CancellationToken ct) => SearchAsync(http, search, true, ct);

    private static async Task<IResult> SearchAsync(HttpContext http, SearchService search, bool v1, CancellationToken ct)
    {
        var body = await ReadAsync(http, BodySize.Memory, ct);
        var query = body["query"] is JsonValue q && q.TryGetValue<string>(out var qs) ? qs : null;
        if (string.IsNullOrWhiteSpace(query))
        {
            throw new ValidationException("query", "query is required");
        }
        var filter = Mem0Filter.Parse(body["filters"], TopLevelIds(body));
        var topK = Int(body["top_k"] ?? body["topK"] ?? body["limit"], "top_k") ?? 10;
        var max = search.Options.MaxK;
        if (topK < 1 || topK > max)
        {
            throw new ValidationException("top_k", $"top_k must be between 1 and {max} (got {topK})");
        }
        var threshold = Number(body["threshold"], "threshold");
        var (pushed, exact) = filter.Pushdown();
        var result = await search.SearchAsync(http.GetCaller(), new SearchRequest
        {
            Query = query,
            // Filters Engram cannot apply itself (OR, NOT, operators, *) are checked on a wider candidate list.
            K = exact ? topK : max,
            Filters = Mem0Filter.ToSearch(pushed),
            MinScore = threshold,
            Explain = true,
        }, ct);
        var results = new JsonArray();
        foreach (var hit in result.Results.Where(h => filter.Matches(h.Memory)).Take(topK))
        {
            var item = ToMem0(hit.Memory);
            item["score"] = Math.Round(hit.Score, 6);
            if (hit.Explain is { } e)
            {
                item["score_breakdown"] = new JsonObject
                {
                    ["semantic"] = Math.Round(e.SemanticContribution, 6),
                    ["keyword"] = Math.Round(e.LexicalContribution, 6),
                    ["recency"] = Math.Round(e.RecencyContribution, 6),
                    ["importance"] = Math.Round(e.ImportanceContribution, 6),
                    ["entity"] = Math.Round(e.EntityContribution, 6),
                    ["cosine"] = Math.Round(e.Cosine, 6),
                    ["bm25"] = Math.Round(e.Bm25, 6),
                };
            }
            results.Add(item);
        }
        return v1 && OutputFormat(body, http.Request.Query) == "v1.0" ? Results.Json(results) : Results.Json(new JsonObject { ["results"] = results });
    }

    // ---- list ----

    private static Task<IResult> ListV3(HttpContext http, MemoryService memories, CancellationToken ct) => ListFromBodyAsync(http, memories, true, ct);

    private static Task<IResult> ListV2(HttpContext http, MemoryService memories, CancellationToken ct) => ListFromBodyAsync(http, memories, false, ct);

    private static async Task<IResult> ListFromBodyAsync(HttpContext http, MemoryService memories, bool alwaysPaged, CancellationToken ct)
    {
        var body = http.Request.ContentLength is 0 ? new JsonObject() : await ReadAsync(http, BodySize.Memory, ct);
        var filter = Mem0Filter.Parse(body["filters"], TopLevelIds(body));
        return await ListAsync(http, memories, filter, alwaysPaged, OutputFormat(body, http.Request.Query), ct);
    }

    /// <summary>GET /v1/memories/?user_id=…: the 1.x clients' list.</summary>
    public static Task<IResult> ListFromQueryAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var filter = Mem0Filter.Parse(null, TopLevelIds(http.Request.Query));
        return ListAsync(http, memories, filter, false, OutputFormat(null, http.Request.Query), ct);
    }

    private static async Task<IResult> ListAsync(HttpContext http, MemoryService memories, Mem0Filter filter, bool alwaysPaged, string? outputFormat, CancellationToken ct)
    {
        var query = http.Request.Query;
        var page = QueryInt(query, "page");
        var pageSize = QueryInt(query, "page_size");
        var matching = await AllMatchingAsync(http.GetCaller(), memories, filter, ct);
        if (!alwaysPaged && page is null && pageSize is null)
        {
            var all = new JsonArray([.. matching.Select(m => (JsonNode)ToMem0(m))]);
            return outputFormat == "v1.0" ? Results.Json(all) : Results.Json(new JsonObject { ["results"] = all });
        }
        var (number, size) = Page(page, pageSize, 100);
        var slice = matching.Skip((int)Math.Min(int.MaxValue, (long)(number - 1) * size)).Take(size).Select(m => (JsonNode)ToMem0(m));
        return Results.Json(new JsonObject
        {
            ["count"] = matching.Count,
            ["next"] = (long)number * size < matching.Count ? PageUrl(http, number + 1, size) : null,
            ["previous"] = number > 1 ? PageUrl(http, number - 1, size) : null,
            ["results"] = new JsonArray([.. slice]),
        });
    }

    private static string PageUrl(HttpContext http, int page, int size)
    {
        var request = http.Request;
        var query = request.Query.Where(q => q.Key is not ("page" or "page_size"))
            .SelectMany(q => q.Value.Select(v => Uri.EscapeDataString(q.Key) + "=" + Uri.EscapeDataString(v ?? "")))
            .Append($"page={page}").Append($"page_size={size}");
        return $"{request.Scheme}://{request.Host}{request.PathBase}{request.Path}?{string.Join('&', query)}";
    }

    /// <summary>Every memory of the caller matching <paramref name="filter"/>, newest first: Engram's list narrowed by the pushed-down scope.</summary>
    private static async Task<List<Memory>> AllMatchingAsync(Caller caller, MemoryService memories, Mem0Filter filter, CancellationToken ct)
    {
        var (pushed, _) = filter.Pushdown();
        var found = new List<Memory>();
        string? cursor = null;
        do
        {
            var page = await memories.ListAsync(caller, pushed, 100, cursor, ct);
            found.AddRange(page.Items.Where(filter.Matches));
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return found;
    }

    // ---- one memory ----

    public static async Task<IResult> GetAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct) =>
        Results.Json(ToMem0(await AsSentAsync(id, () => memories.GetAsync(http.GetCaller(), id, ct))));

    private static async Task<IResult> UpdateAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var body = await ReadAsync(http, BodySize.Memory, ct);
        var patch = new MemoryPatch();
        if (body.TryGetPropertyValue("text", out var text))
        {
            patch = patch with { Content = text is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new ValidationException("text", "text must be a string (the memory's new content)") };
        }
        if (body.TryGetPropertyValue("metadata", out var metadata))
        {
            patch = patch with
            {
                Metadata = metadata switch
                {
                    JsonObject m => JsonSerializer.SerializeToElement(m),
                    null => null, // clears it
                    _ => throw new ValidationException("metadata", "metadata must be an object (or null to clear it)"),
                },
            };
        }
        if (body.ContainsKey("expiration_date") || body.ContainsKey("expirationDate"))
        {
            patch = patch with { ExpiresAt = ExpirationDate(body["expiration_date"] ?? body["expirationDate"]) };
        }
        if (body.ContainsKey("timestamp"))
        {
            // The platform moves the memory's date; Engram's created_at is when the memory was written and stays.
            throw new ValidationException("timestamp", "timestamp cannot be updated here: a memory keeps the date it was created with (set it when adding)");
        }
        if (!patch.Content.HasValue && !patch.Metadata.HasValue && !patch.ExpiresAt.HasValue)
        {
            // Only these are read: anything else (content, memory, data, ...) would be dropped and the memory left as it was.
            var other = body.Select(p => p.Key).FirstOrDefault();
            throw new ValidationException("text", "text is required: send text (the memory's new content), metadata or expiration_date" +
                (other is null ? "" : $"; '{(other.Length > 40 ? other[..40] + "…" : other)}' is not read by this route"));
        }
        var result = await AsSentAsync(id, () => memories.UpdateAsync(http.GetCaller(), id, patch, null, ct));
        return Results.Json(ToMem0(result.Memory));
    }

    public static async Task<IResult> DeleteAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        await AsSentAsync(id, () => memories.DeleteAsync(http.GetCaller(), id, ct));
        return Results.Json(new JsonObject { ["message"] = "Memory deleted successfully!" });
    }

    public static async Task<IResult> HistoryAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var history = await AsSentAsync(id, () => memories.GetHistoryAsync(http.GetCaller(), id, ct));
        var items = new JsonArray();
        string? previous = null;
        foreach (var entry in history)
        {
            var changes = entry.Changes;
            string? oldMemory = previous, newMemory = previous;
            if (changes.ValueKind == JsonValueKind.Object && changes.TryGetProperty("content", out var content))
            {
                if (content.ValueKind == JsonValueKind.String)
                {
                    newMemory = content.GetString();
                }
                else if (content.ValueKind == JsonValueKind.Object)
                {
                    oldMemory = content.TryGetProperty("from", out var from) && from.ValueKind == JsonValueKind.String ? from.GetString() : previous;
                    newMemory = content.TryGetProperty("to", out var to) && to.ValueKind == JsonValueKind.String ? to.GetString() : null;
                }
            }
            var evt = entry.Event switch
            {
                HistoryEvents.Created => "ADD",
                HistoryEvents.Updated => "UPDATE",
                _ => "DELETE",
            };
            if (evt == "ADD")
            {
                oldMemory = null;
            }
            else if (evt == "DELETE")
            {
                oldMemory = previous;
                newMemory = null;
            }
            items.Add(new JsonObject
            {
                ["id"] = entry.Seq.ToString(CultureInfo.InvariantCulture),
                ["memory_id"] = Ulid.ToUuid(entry.MemoryId),
                ["event"] = evt,
                ["old_memory"] = oldMemory,
                ["new_memory"] = newMemory,
                ["input"] = null,
                ["actor"] = entry.Actor,
                ["version"] = entry.Version,
                ["created_at"] = Stamp(entry.At),
                ["updated_at"] = Stamp(entry.At),
            });
            previous = newMemory ?? previous;
        }
        return Results.Json(items);
    }

    // ---- bulk ----

    /// <summary>DELETE /v1/memories/?user_id=…: refused without a filter; <c>*</c> means every memory with that kind of id.</summary>
    public static async Task<IResult> DeleteAllAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var ids = TopLevelIds(http.Request.Query);
        if (ids.Count == 0)
        {
            throw new ValidationException("user_id", "At least one filter is required to delete memories: user_id, agent_id, app_id or run_id ('*' for all of a kind)");
        }
        var caller = http.GetCaller();
        var filter = Mem0Filter.Parse(null, ids);
        var (pushed, exact) = filter.Pushdown();
        int deleted;
        if (exact)
        {
            deleted = (await memories.DeleteManyAsync(caller, pushed, confirm: true, ct)).Deleted;
        }
        else
        {
            var matching = await AllMatchingAsync(caller, memories, filter, ct);
            foreach (var memory in matching)
            {
                await memories.DeleteAsync(caller, memory.Id, ct);
            }
            deleted = matching.Count;
        }
        http.Audit(AuditActions.MemoriesBulkDelete, http.Request.QueryString.Value, $"{deleted} deleted (mem0 API)");
        return Results.Json(new JsonObject { ["message"] = "Memories deleted successfully!", ["deleted"] = deleted });
    }

    private static async Task<IResult> DeleteEntityAsync(string type, string name, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var filter = type switch
        {
            "user" => new MemoryFilter { UserId = name },
            "agent" => new MemoryFilter { AgentId = name },
            "run" => new MemoryFilter { SessionId = name },
            "app" => new MemoryFilter { Namespace = name },
            _ => throw new ValidationException("entity_type", $"entity type must be user, agent, app or run (got '{type}')"),
        };
        var result = await memories.DeleteManyAsync(http.GetCaller(), filter, confirm: true, ct);
        http.Audit(AuditActions.MemoriesBulkDelete, $"{type}={name}", $"{result.Deleted} deleted (mem0 API)");
        return Results.Json(new JsonObject { ["message"] = "Entity deleted successfully.", ["deleted"] = result.Deleted });
    }

    private static async Task<IResult> EntitiesAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var all = await AllMatchingAsync(http.GetCaller(), memories, Mem0Filter.All, ct);
        var entities = new Dictionary<(string Type, string Name), (int Count, DateTimeOffset First, DateTimeOffset Last)>();
        foreach (var m in all)
        {
            foreach (var key in new[] { ("user", m.UserId), ("agent", m.AgentId), ("run", m.SessionId), ("app", m.Namespace) })
            {
                if (key.Item2 is not { } name)
                {
                    continue;
                }
                entities[(key.Item1, name)] = entities.TryGetValue((key.Item1, name), out var e)
                    ? (e.Count + 1, m.CreatedAt < e.First ? m.CreatedAt : e.First, m.UpdatedAt > e.Last ? m.UpdatedAt : e.Last)
                    : (1, m.CreatedAt, m.UpdatedAt);
            }
        }
        var tenant = http.GetCaller().Tenant;
        var rows = entities.OrderBy(e => e.Key.Type, StringComparer.Ordinal).ThenBy(e => e.Key.Name, StringComparer.Ordinal).Select(e => (JsonNode)new JsonObject
        {
            ["id"] = $"{e.Key.Type}:{e.Key.Name}",
            ["name"] = e.Key.Name,
            ["type"] = e.Key.Type,
            ["total_memories"] = e.Value.Count,
            ["owner"] = tenant,
            ["organization"] = tenant,
            ["metadata"] = new JsonObject(),
            ["created_at"] = Stamp(e.Value.First),
            ["updated_at"] = Stamp(e.Value.Last),
        }).ToList();
        var query = http.Request.Query;
        // Without page_size every entity is one page, as before; a page_size given is bounded as the memory lists'.
        var (page, size) = Page(QueryInt(query, "page"), QueryInt(query, "page_size"), Math.Max(1, rows.Count));
        return Results.Json(new JsonObject
        {
            ["count"] = rows.Count,
            ["next"] = (long)page * size < rows.Count ? PageUrl(http, page + 1, size) : null,
            ["previous"] = page > 1 ? PageUrl(http, page - 1, size) : null,
            ["results"] = new JsonArray([.. rows.Skip((int)Math.Min(int.MaxValue, (long)(page - 1) * size)).Take(size)]),
        });
    }

    private static async Task<IResult> BatchUpdateAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var items = await BatchItemsAsync(http, ct);
        var caller = http.GetCaller();
        var updates = new List<(string Id, string Text)>();
        foreach (var (item, i) in items.Select((item, i) => (item, i)))
        {
            var text = item["text"] is JsonValue t && t.TryGetValue<string>(out var s) ? s : throw new ValidationException($"memories[{i}].text", $"memories[{i}].text must be a string");
            updates.Add((BatchId(item, i), CheckText(memories, text, $"memories[{i}].text")));
        }
        // Every item is checked (its text above, its memory here) before any changes: the store has no update of many
        // memories in one transaction, so a refusal found while writing would leave the batch applied in part.
        foreach (var (id, _) in updates)
        {
            await AsSentAsync(id, () => memories.GetAsync(caller, id, ct));
        }
        foreach (var (id, text) in updates)
        {
            await AsSentAsync(id, () => memories.UpdateAsync(caller, id, new MemoryPatch { Content = text }, null, ct));
        }
        return Results.Json(new JsonObject { ["message"] = $"Successfully updated {updates.Count} memories" });
    }

    private static async Task<IResult> BatchDeleteAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var items = await BatchItemsAsync(http, ct);
        var caller = http.GetCaller();
        // A memory named twice (or in both id forms) is deleted once: the second delete found it gone and answered 404
        // after the first had deleted it.
        var ids = items.Select(BatchId).DistinctBy(Ulid.FromAny, StringComparer.Ordinal).ToList();
        foreach (var id in ids)
        {
            await AsSentAsync(id, () => memories.GetAsync(caller, id, ct));
        }
        foreach (var id in ids)
        {
            await AsSentAsync(id, () => memories.DeleteAsync(caller, id, ct));
        }
        return Results.Json(new JsonObject { ["message"] = $"Successfully deleted {ids.Count} memories" });
    }

    private static async Task<List<JsonObject>> BatchItemsAsync(HttpContext http, CancellationToken ct)
    {
        var body = await ReadAsync(http, BodySize.Batch, ct);
        if (body["memories"] is not JsonArray array || array.Count == 0)
        {
            throw new ValidationException("memories", "memories must be a non-empty list of {memory_id, …}");
        }
        if (array.Count > 1000)
        {
            throw new ValidationException("memories", $"at most 1000 memories per batch (got {array.Count})");
        }
        return [.. array.Select((n, i) => n as JsonObject ?? throw new ValidationException($"memories[{i}]", $"memories[{i}] must be an object"))];
    }

    private static string BatchId(JsonObject item, int i) =>
        (item["memory_id"] ?? item["memoryId"] ?? item["id"]) is JsonValue v && v.TryGetValue<string>(out var id) && id.Length > 0
            ? id
            : throw new ValidationException($"memories[{i}].memory_id", $"memories[{i}].memory_id is required");

    // ---- events ----

    /// <summary>
    /// The outcome of an add. An add with inference is an extraction job: its event follows the job (PENDING while it is
    /// queued or running, then SUCCEEDED with the memories it wrote, or FAILED with the reason), also after a restart.
    /// </summary>
    private static async Task<IResult> EventAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var caller = http.GetCaller();
        var found = Events(http).Find(caller.Tenant, id);
        if ((found is null || found["status"]?.GetValue<string>() == "PENDING")
            && http.RequestServices.GetService<ConversationExtractor>() is { } extractor)
        {
            ExtractionJob? job = null;
            try
            {
                job = await extractor.GetJobAsync(caller, id, ct);
            }
            catch (NotFoundException)
            {
                // not a job of this caller: the recorded event (if any) stands
            }
            if (job is not null)
            {
                var results = new JsonArray();
                foreach (var memoryId in job.Status == ExtractionStatus.Succeeded ? job.MemoryIds : [])
                {
                    try
                    {
                        var memory = ToMem0(await memories.GetAsync(caller, memoryId, ct));
                        memory["event"] = "ADD";
                        results.Add(memory);
                    }
                    catch (NotFoundException)
                    {
                        // deleted since
                    }
                }
                return Results.Json(new JsonObject
                {
                    ["id"] = id,
                    ["event_id"] = id,
                    ["status"] = job.Status switch { ExtractionStatus.Succeeded => "SUCCEEDED", ExtractionStatus.Failed => "FAILED", _ => "PENDING" },
                    ["message"] = job.Status switch
                    {
                        ExtractionStatus.Succeeded => "Memories added",
                        ExtractionStatus.Failed => "extraction failed: " + job.Error,
                        _ => "Memory processing has been queued",
                    },
                    ["results"] = results,
                });
            }
        }
        return found is not null
            ? Results.Json(found)
            : throw new NotFoundException($"no event with id '{id}' (events are kept in memory for the latest adds)");
    }

    private static Mem0Events Events(HttpContext http) => http.RequestServices.GetRequiredService<Mem0Events>();

    // ---- shared ----

    /// <summary>
    /// Metadata goes into the answer as the store holds it, written by <see cref="StoredJsonConverter"/>: metadata nested
    /// nearly as deep as a request may carry would otherwise overflow the writer's depth inside <c>results</c>. (A
    /// <see cref="JsonElement"/> in a <see cref="JsonValue"/> is always written as itself, whatever converter it is given.)
    /// </summary>
    private static readonly JsonTypeInfo<StoredJsonText> StoredMetadata =
        (JsonTypeInfo<StoredJsonText>)new JsonSerializerOptions { TypeInfoResolver = new DefaultJsonTypeInfoResolver() }.GetTypeInfo(typeof(StoredJsonText));

    /// <summary>A memory as the platform shows it.</summary>
    public static JsonObject ToMem0(Memory m) => new()
    {
        ["id"] = Ulid.ToUuid(m.Id),
        ["memory"] = m.Content,
        ["user_id"] = m.UserId,
        ["agent_id"] = m.AgentId,
        ["app_id"] = m.Namespace,
        ["run_id"] = m.SessionId,
        ["hash"] = m.ContentHash,
        ["metadata"] = m.Metadata.ValueKind == JsonValueKind.Object && m.Metadata.EnumerateObject().Any() ? JsonValue.Create(new StoredJsonText(m.Metadata.GetRawText()), StoredMetadata) : null,
        ["categories"] = new JsonArray([.. m.Tags.Select(t => (JsonNode?)t)]),
        ["created_at"] = Stamp(m.CreatedAt),
        ["updated_at"] = Stamp(m.UpdatedAt),
        ["expiration_date"] = Stamp(m.ExpiresAt),
        ["immutable"] = false,
        ["type"] = m.Type,
    };

    /// <summary>
    /// A time as ISO 8601, to the millisecond the store keeps: an add or update answered the clock's ticks
    /// (<c>…32.4528283</c>) that a read of the same memory then showed as <c>…32.4520000</c>.
    /// </summary>
    private static string Stamp(DateTimeOffset time) =>
        new DateTimeOffset(time.Ticks - (time.Ticks % TimeSpan.TicksPerMillisecond), time.Offset).ToString("o", CultureInfo.InvariantCulture);

    private static string? Stamp(DateTimeOffset? time) => time is { } value ? Stamp(value) : null;

    // A field written twice is refused by JsonBody (a 400), as on every route.
    private static async Task<JsonObject> ReadAsync(HttpContext http, BodySize size, CancellationToken ct) =>
        await JsonBody.ReadAsync<JsonObject>(http.Request, size, ct);

    private static readonly string[] IdFields = ["user_id", "agent_id", "app_id", "run_id"];

    /// <summary>
    /// The entity ids written at the top of a body (user_id, agent_id, app_id, run_id, snake_case or camelCase). null
    /// is absent (clients send an unset id as null); anything else must be a non-empty string. A number or "" is
    /// refused, not skipped: skipping it would store an add with no scope and widen a search, list or delete to every one.
    /// </summary>
    private static List<KeyValuePair<string, string>> TopLevelIds(JsonObject body)
    {
        var ids = new List<KeyValuePair<string, string>>();
        foreach (var (key, value) in body)
        {
            var field = Mem0Filter.Canonical(key);
            if (!IdFields.Contains(field) || value is null)
            {
                continue;
            }
            if (value is not JsonValue v || !v.TryGetValue<string>(out var text))
            {
                throw new ValidationException(key, $"{key} must be a non-empty string (got {KindOf(value.GetValueKind())})");
            }
            ids.Add(new(field, RequireId(key, text)));
        }
        return ids;
    }

    /// <summary>The same ids from the query string (GET and DELETE /v1/memories/): a parameter given with no value is refused.</summary>
    private static List<KeyValuePair<string, string>> TopLevelIds(IQueryCollection query)
    {
        var ids = new List<KeyValuePair<string, string>>();
        foreach (var (key, values) in query)
        {
            var field = Mem0Filter.Canonical(key);
            if (IdFields.Contains(field))
            {
                ids.Add(new(field, RequireId(key, values.LastOrDefault())));
            }
        }
        return ids;
    }

    private static string RequireId(string key, string? text) => string.IsNullOrWhiteSpace(text)
        ? throw new ValidationException(key, $"{key} must be a non-empty string (got {(text is null ? "no value" : text.Length == 0 ? "\"\"" : "only white space")})")
        : text;

    private static (string? UserId, string? AgentId, string? SessionId, string? Namespace) Scope(JsonObject body, IQueryCollection query)
    {
        var ids = TopLevelIds(body).Concat(TopLevelIds(query)).GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.First().Value);
        return (ids.GetValueOrDefault("user_id"), ids.GetValueOrDefault("agent_id"), ids.GetValueOrDefault("run_id"), ids.GetValueOrDefault("app_id"));
    }

    private static string? OutputFormat(JsonObject? body, IQueryCollection query) =>
        body?["output_format"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : query["output_format"].LastOrDefault();

    /// <summary>
    /// The store's rule for a memory's text (empty, too long, NUL, …), checked for each item of a request before any
    /// is written, and named by the item's place in the request: the store would only say "content".
    /// </summary>
    private static string CheckText(MemoryService memories, string text, string path)
    {
        try
        {
            return new MemoryValidator(memories.Limits).Content(text);
        }
        catch (ValidationException ex)
        {
            throw new ValidationException(path, $"{path}: {ex.Message}");
        }
    }

    /// <summary>
    /// Runs an action on the memory <paramref name="id"/>; a 404 names the id as the client sent it. The service names
    /// it as Engram keeps it (the ULID), which a mem0 client, that only ever saw the UUID form, would not recognise.
    /// </summary>
    private static async Task<T> AsSentAsync<T>(string id, Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (NotFoundException ex) when (Ulid.FromAny(id) is var kept && kept != id && ex.Message.Contains($"'{kept}'", StringComparison.Ordinal))
        {
            throw new NotFoundException(ex.Message.Replace($"'{kept}'", $"'{id}'", StringComparison.Ordinal));
        }
    }
}

/// <summary>
/// The outcome of the latest adds (GET /v1/event/{id}/), per tenant, in memory: the platform runs adds in the
/// background and lets clients poll them; Engram's adds without inference are done when they return.
/// </summary>
internal sealed class Mem0Events
{
    private const int Capacity = 10_000;
    private readonly ConcurrentDictionary<string, (string Tenant, JsonObject Body)> _events = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _order = new();

    public JsonObject Record(string tenant, string id, string status, JsonArray results, string? message)
    {
        var body = new JsonObject
        {
            ["id"] = id,
            ["event_id"] = id,
            ["status"] = status,
            ["message"] = message ?? (status == "SUCCEEDED" ? "Memories added" : "Memory processing has been queued"),
            ["results"] = results,
        };
        _events[id] = (tenant, (JsonObject)body.DeepClone());
        _order.Enqueue(id);
        while (_order.Count > Capacity && _order.TryDequeue(out var old))
        {
            _events.TryRemove(old, out _);
        }
        return body;
    }

    public JsonObject? Find(string tenant, string id) =>
        _events.TryGetValue(id, out var found) && found.Tenant == tenant ? (JsonObject)found.Body.DeepClone() : null;
}
