using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Engram.Core.Common;
using Engram.Core.Llm;
using Engram.Core.Search;
using Engram.Core.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Server.Http;

/// <summary>
/// <c>POST /v1/chat</c>: chat with memory. The memories recalled for the last user turn (hybrid search in the caller's
/// tenant and the request's scope) go to the model in a system message (<see cref="ChatContext"/>); the answer comes back
/// with the memories used, whole or streamed as server-sent events; <c>remember: true</c> queues an extraction of the
/// exchange (<see cref="IConversationExtractor"/>). The OpenAI-compatible proxy is <see cref="ChatProxyEndpoints"/>.
/// </summary>
internal static class ChatEndpoints
{
    public const int DefaultK = 5;

    /// <summary>The most turns one chat request takes.</summary>
    public const int MaxMessages = 1_000;

    public static IEndpointRouteBuilder MapChatEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/chat", ChatAsync).WithName("Chat").Requires(Role.Read).WithTags("chat")
            .WithSummary("Answers the last user turn with the model, with the memories recalled for it in context; stream: true for server-sent events; remember: true (write keys) queues an extraction of the exchange.")
            .Accepts<ChatRequest>("application/json").Produces<ChatResponse>().Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .ProducesProblem(400).ProducesProblem(502).ProducesProblem(503).DisableRequestTimeout();
        app.MapChatProxyEndpoints();
        return app;
    }

    private static async Task ChatAsync(HttpContext http, SearchService search, LlmAccess llm, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        QueryParser.RefuseAllExcept(http.Request.Query);
        var request = await JsonBody.ReadAsync<ChatRequest>(http.Request, BodySize.Batch, ct);
        var plan = Validate(request, search.Options.MaxK);
        var caller = http.GetCaller();
        var model = llm.Require("chat");
        IConversationExtractor? extractor = null;
        if (request.Remember)
        {
            caller.Require(Role.Write, "remember a conversation (remember: true)");
            extractor = http.RequestServices.GetService<IConversationExtractor>();
            if (extractor is null)
            {
                await Problems.For(StatusCodes.Status503ServiceUnavailable, "remember: true needs the extraction queue, and the extraction queue is not available on this server",
                    "remember", new Dictionary<string, object?> { ["reason"] = "extraction_unavailable" }).ExecuteAsync(http);
                return;
            }
        }

        var (messages, used) = Prompt(await RecallAsync(search, caller, plan, request, ct), plan, request);
        var options = new ChatOptions { Temperature = (float?)request.Temperature };

        if (!request.Stream)
        {
            var complete = await CompleteAsync(model, messages, options, used, started, ct);
            var jobId = extractor is null ? null : await RememberAsync(extractor, caller, request, complete.Answer, ct);
            await http.Response.WriteAsJsonAsync(complete with { RememberJobId = jobId }, EngramJson.Options, ct);
            return;
        }

        // Streamed: the first update is awaited before anything is written, so a model that fails at once is a 502 problem.
        await using var updates = model.StreamAsync(messages, options, ct).GetAsyncEnumerator(ct);
        var streamStarted = Stopwatch.GetTimestamp();
        var more = await updates.MoveNextAsync();
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await ServerSentEvents.WriteAsync(http.Response, "memories", new { memories = used }, ct);
        var answer = new StringBuilder();
        string? modelId = null;
        try
        {
            while (more)
            {
                var update = updates.Current;
                modelId ??= update.ModelId;
                if (update.Text.Length > 0)
                {
                    answer.Append(update.Text);
                    await ServerSentEvents.WriteAsync(http.Response, "delta", new { text = update.Text }, ct);
                }
                more = await updates.MoveNextAsync();
            }
        }
        catch (LlmUnavailableException ex)
        {
            // Headers are gone: the failure is the stream's last event, in the shape of a problem.
            await ServerSentEvents.WriteAsync(http.Response, "error", new { status = 502, reason = "llm_unavailable", detail = ex.Message }, ct);
            return;
        }
        var modelTime = Stopwatch.GetElapsedTime(streamStarted).TotalMilliseconds;
        string? job = null;
        if (extractor is not null)
        {
            try
            {
                job = await RememberAsync(extractor, caller, request, answer.ToString(), ct);
            }
            catch (Exception ex) when (ex is EngramException or Core.Storage.StoreException)
            {
                await ServerSentEvents.WriteAsync(http.Response, "error", new { status = 503, reason = "remember_failed", detail = ex.Message }, ct);
                return;
            }
        }
        await ServerSentEvents.WriteAsync(http.Response, "done",
            new ChatResponse(answer.ToString(), used, modelId ?? model.Options.Model, Ms(started), Math.Round(modelTime, 3)) { RememberJobId = job }, ct);
    }

    /// <summary>
    /// Chat with memory without HTTP: the answer <c>POST /v1/chat</c> gives (not streamed, nothing queued), for the
    /// caller and the request's scope. The Telegram bot answers plain messages with it.
    /// </summary>
    internal static async Task<ChatResponse> AnswerAsync(SearchService search, LanguageModel model, Caller caller, ChatRequest request, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var plan = Validate(request, search.Options.MaxK);
        var (messages, used) = Prompt(await RecallAsync(search, caller, plan, request, ct), plan, request);
        return await CompleteAsync(model, messages, new ChatOptions { Temperature = (float?)request.Temperature }, used, started, ct);
    }

    /// <summary>The model's messages (the recalled memories in a system message, then the conversation) and the memories used.</summary>
    private static (List<ChatMessage> Messages, List<ChatMemory> Used) Prompt(IReadOnlyList<RecalledMemory> recalled, ChatPlan plan, ChatRequest request)
    {
        var messages = new List<ChatMessage>(request.Messages!.Count + 1) { new(ChatRole.System, ChatContext.SystemMessage(recalled, plan.Lens)) };
        messages.AddRange(request.Messages!.Select(m => new ChatMessage(new ChatRole(m.Role!), m.Content)));
        return (messages, recalled.Select(r => new ChatMemory(r.Memory.Id, r.Memory.Content, Math.Round(r.Score, 6), r.Memory.Valence)).ToList());
    }

    private static async Task<ChatResponse> CompleteAsync(LanguageModel model, List<ChatMessage> messages, ChatOptions options, List<ChatMemory> used, long started, CancellationToken ct)
    {
        var modelStarted = Stopwatch.GetTimestamp();
        var response = await model.CompleteAsync(messages, options, ct);
        var modelMs = Stopwatch.GetElapsedTime(modelStarted).TotalMilliseconds;
        return new ChatResponse(response.Text, used, response.ModelId ?? model.Options.Model, Ms(started), Math.Round(modelMs, 3));
    }

    private static async Task<IReadOnlyList<RecalledMemory>> RecallAsync(SearchService search, Caller caller, ChatPlan plan, ChatRequest request, CancellationToken ct)
    {
        var filters = new SearchFilters { UserId = request.UserId, AgentId = request.AgentId, SessionId = request.SessionId, Namespace = request.Namespace };
        SearchResult result;
        try
        {
            result = await search.SearchAsync(caller, new SearchRequest
            {
                Query = plan.Query,
                K = ChatContext.Candidates(plan.K, plan.Lens, search.Options.MaxK),
                Filters = filters,
            }, ct);
        }
        catch (ValidationException ex) when (ex.Field.StartsWith("filters.", StringComparison.Ordinal))
        {
            // The scope fields are at the top level of this body: say so in the field name.
            throw new ValidationException(ex.Field["filters.".Length..], ex.Message);
        }
        return ChatContext.Rank(result.Results, plan.K, plan.Lens);
    }

    private static Task<string> RememberAsync(IConversationExtractor extractor, Caller caller, ChatRequest request, string answer, CancellationToken ct)
    {
        var turns = request.Messages!.Where(m => m.Role == "user").Select(m => new ConversationMessage("user", m.Content!, m.Name)).ToList();
        turns.Add(new ConversationMessage("assistant", answer));
        return extractor.EnqueueAsync(caller, new Conversation(turns)
        {
            UserId = request.UserId,
            AgentId = request.AgentId,
            SessionId = request.SessionId,
            Namespace = request.Namespace,
            Source = "chat",
        }, ct);
    }

    internal sealed record ChatPlan(string Query, int K, string Lens);

    private static ChatPlan Validate(ChatRequest request, int maxK)
    {
        if (request.Messages is not { Count: > 0 } messages)
        {
            throw new ValidationException("messages", "messages must be a non-empty array of {role, content}");
        }
        if (messages.Count > MaxMessages)
        {
            throw new ValidationException("messages", $"messages holds {messages.Count} turns; at most {MaxMessages} are taken (send the recent ones: the memory holds the rest)");
        }
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw new ValidationException($"messages[{i}]", "a message must be an object {role, content}");
            if (message.Role is not ("user" or "assistant" or "system"))
            {
                throw new ValidationException($"messages[{i}].role", "role must be user, assistant or system");
            }
            if (message.Content is null)
            {
                throw new ValidationException($"messages[{i}].content", "content must be a string");
            }
        }
        var last = messages.LastOrDefault(m => m.Role == "user");
        if (last is null || string.IsNullOrWhiteSpace(last.Content))
        {
            throw new ValidationException("messages", "messages must hold a user turn with some text (the memories are recalled for the last one)");
        }
        var k = request.K ?? Math.Min(DefaultK, maxK);
        if (k < 1 || k > maxK)
        {
            throw new ValidationException("k", $"k must be between 1 and {maxK} (got {k})");
        }
        var lens = ChatContext.ParseLens(request.Lens) ?? throw new ValidationException("lens", "lens must be none or valence");
        if (request.Temperature is { } t && (!double.IsFinite(t) || t < 0 || t > 2))
        {
            throw new ValidationException("temperature", "temperature must be between 0 and 2");
        }
        return new ChatPlan(QueryOf(last.Content), k, lens);
    }

    /// <summary>The search query for a user turn: the turn, or its last 8,192 characters (the question usually ends a long paste).</summary>
    internal static string QueryOf(string text)
    {
        var trimmed = text.Trim();
        return trimmed.Length <= 8_192 ? trimmed : trimmed[^8_192..].Trim();
    }

    private static double Ms(long started) => Math.Round(Stopwatch.GetElapsedTime(started).TotalMilliseconds, 3);
}

/// <summary>Writes server-sent events, flushed one by one.</summary>
internal static class ServerSentEvents
{
    public static async Task WriteAsync(HttpResponse response, string name, object payload, CancellationToken ct)
    {
        var data = JsonSerializer.Serialize(payload, payload.GetType(), EngramJson.Options);
        await response.WriteAsync("event: " + name + "\ndata: " + data + "\n\n", ct);
        await response.Body.FlushAsync(ct);
    }
}

/// <summary>The body of <c>POST /v1/chat</c>: the conversation, its scope at the top level (as on <c>POST /v1/memories</c>) and the options.</summary>
public sealed record ChatRequest
{
    /// <summary>The conversation so far, oldest first; the memories are recalled for the last user turn.</summary>
    public IReadOnlyList<ChatTurn>? Messages { get; init; }

    public string? UserId { get; init; }

    public string? AgentId { get; init; }

    public string? SessionId { get; init; }

    public string? Namespace { get; init; }

    /// <summary>Memories to recall (default 5; 1..Engram:Search:MaxK).</summary>
    public int? K { get; init; }

    /// <summary>Answer as server-sent events: <c>memories</c>, then <c>delta</c> events, then <c>done</c> (or <c>error</c>).</summary>
    public bool Stream { get; init; }

    /// <summary>Queue an extraction of the exchange (the user turns and the answer) afterwards; needs a write key.</summary>
    public bool Remember { get; init; }

    /// <summary><c>none</c> (default) or <c>valence</c> (<see cref="ChatContext.Valence"/>).</summary>
    public string? Lens { get; init; }

    /// <summary>Sampling temperature (0..2); the model's default when absent.</summary>
    public double? Temperature { get; init; }
}

/// <summary>One message: role <c>user</c>, <c>assistant</c> or <c>system</c>, and its text.</summary>
public sealed record ChatTurn
{
    public string? Role { get; init; }

    public string? Content { get; init; }

    public string? Name { get; init; }
}

/// <summary>The answer, the memories the model was given (with the score they were ranked by), the model, and times.</summary>
public sealed record ChatResponse(string Answer, IReadOnlyList<ChatMemory> Memories, string Model, double TookMs, double ModelMs)
{
    /// <summary>The extraction job of the exchange (GET /v1/jobs/{id}), with <c>remember: true</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RememberJobId { get; init; }
}

/// <summary>A memory the model was given.</summary>
public sealed record ChatMemory(string Id, string Content, double Score,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Valence);
