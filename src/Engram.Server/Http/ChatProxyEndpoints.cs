using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Common;
using Engram.Core.Llm;
using Engram.Core.Search;
using Engram.Core.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary>
/// The memory proxy: <c>POST /v1/chat/completions</c> in the OpenAI format, so any OpenAI client pointed at Engram gets
/// memory. The memories recalled for the last user message are injected as a system message (after the request's own
/// leading system messages); the scope is the scoped key's, else the request's standard <c>user</c> field as user_id,
/// else the caller's whole tenant. Every other field goes to the configured model untouched, except <c>model</c>, which
/// is always the configured one (clients send their own defaults, which the endpoint may not know). The upstream answer
/// is returned unchanged: its status, content type and body, a streamed one relayed as it arrives and flushed per read;
/// except a refusal of Engram's own credentials (401, 403, 407), which is a 502 problem naming the model's key.
/// <c>GET /v1/models</c> lists the configured model (none without one).
/// </summary>
internal static class ChatProxyEndpoints
{
    public static IEndpointRouteBuilder MapChatProxyEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/chat/completions", CompleteAsync).WithName("ChatCompletionsProxy").Requires(Role.Read).WithTags("chat")
            .WithSummary("OpenAI-compatible chat completions with memory: the memories recalled for the last user message are injected, the request forwarded to the configured model, its answer (or stream) returned unchanged.")
            .Accepts<JsonObject>("application/json").Produces(StatusCodes.Status200OK).ProducesProblem(400).ProducesProblem(502).ProducesProblem(503)
            .DisableRequestTimeout();
        app.MapGet("/v1/models", Models).WithName("ChatModels").Requires(Role.Read).WithTags("chat")
            .WithSummary("The configured model in the OpenAI list format (an empty list without one).").Produces(StatusCodes.Status200OK);
        return app;
    }

    private static IResult Models(HttpContext http, LlmAccess llm)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var data = llm.Model is { } model
            ? new[] { new { id = model.Options.Model, @object = "model", created = 0, owned_by = "engram" } }
            : [];
        return TypedResults.Json(new { @object = "list", data }, EngramJson.Options);
    }

    private static async Task CompleteAsync(HttpContext http, SearchService search, LlmAccess llm, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        JsonObject body;
        try
        {
            body = await JsonBody.ReadAsync<JsonObject>(http.Request, BodySize.Batch, ct);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            // JsonObject refuses a member given twice; a name that is not valid UTF-16 (an escaped lone surrogate) cannot be read.
            throw new ValidationException("body", "the body is not a well-formed request: " + ex.Message);
        }
        RequireText(body, "");
        var (messages, lastUser, user) = Validate(body);
        var caller = http.GetCaller();
        var model = llm.Require("the chat completions proxy");

        if (lastUser is { Length: > 0 })
        {
            // A scoped key decides the scope (the guard confines the search); otherwise the standard `user` field.
            var filters = caller.IsScoped || user is null ? null : new SearchFilters { UserId = user };
            SearchResult result;
            try
            {
                result = await search.SearchAsync(caller, new SearchRequest { Query = ChatEndpoints.QueryOf(lastUser), K = ChatEndpoints.DefaultK, Filters = filters }, ct);
            }
            catch (ValidationException ex) when (ex.Field == "filters.user_id")
            {
                throw new ValidationException("user", ex.Message.Replace("filters.user_id", "user", StringComparison.Ordinal));
            }
            var recalled = ChatContext.Rank(result.Results, ChatEndpoints.DefaultK, ChatContext.NoLens);
            if (recalled.Count > 0)
            {
                var at = 0;
                while (at < messages.Count && messages[at] is JsonObject m && m["role"]?.GetValue<string>() is "system" or "developer")
                {
                    at++;
                }
                messages.Insert(at, new JsonObject { ["role"] = "system", ["content"] = ChatContext.SystemMessage(recalled, ChatContext.NoLens) });
            }
        }
        body["model"] = model.Options.Model;

        var content = new StringContent(body.ToJsonString(), Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var (response, lease) = await model.SendRawAsync("chat/completions", content, ct);
        using (lease)
        using (response)
        {
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.ProxyAuthenticationRequired)
            {
                // The model refused Engram's own credentials (Engram:Llm:ApiKey), which the client cannot fix: relayed as
                // they are, an OpenAI client reports its Engram key as wrong (AuthenticationError) and the operator looks
                // in the wrong place.
                var refused = $"the language model refused Engram's credentials ({(int)response.StatusCode}); check the configured API key of the model";
                model.RecordRelayFailure(refused);
                await Problems.For(StatusCodes.Status502BadGateway, refused, extra: new Dictionary<string, object?> { ["reason"] = "llm_unavailable" }).ExecuteAsync(http);
                return;
            }
            http.Response.StatusCode = (int)response.StatusCode;
            if (response.Content.Headers.ContentType is { } type)
            {
                http.Response.ContentType = type.ToString();
            }
            if (response.Headers.RetryAfter is { } retryAfter)
            {
                http.Response.Headers.RetryAfter = retryAfter.ToString();
            }
            http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            await using var upstream = await response.Content.ReadAsStreamAsync(ct);
            var buffer = new byte[16 * 1024];
            // The time-out of the call ends with the headers: each read of the body gets the same time again, so a model
            // that stops sending mid-answer frees the client and its concurrency slot instead of holding both for ever.
            var idle = TimeSpan.FromSeconds(model.Options.TimeoutSeconds);
            using var quiet = CancellationTokenSource.CreateLinkedTokenSource(ct);
            try
            {
                int read;
                quiet.CancelAfter(idle);
                while ((read = await upstream.ReadAsync(buffer, quiet.Token)) > 0)
                {
                    await http.Response.Body.WriteAsync(buffer.AsMemory(0, read), ct);
                    await http.Response.Body.FlushAsync(ct);
                    quiet.CancelAfter(idle);
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                var failure = ex is OperationCanceledException
                    ? $"the model sent nothing for {model.Options.TimeoutSeconds} s in the middle of an answer"
                    : "the model's answer broke off: " + ex.Message;
                model.RecordRelayFailure(failure);
                if (!http.Response.HasStarted)
                {
                    // Nothing of the body was relayed yet: the client still gets a clear 502 instead of a cut answer.
                    http.Response.Clear();
                    await Problems.For(StatusCodes.Status502BadGateway, failure, extra: new Dictionary<string, object?> { ["reason"] = "llm_unavailable" }).ExecuteAsync(http);
                    return;
                }
                // The status is sent: the client sees a cut body, as from the model itself.
                http.Abort();
            }
        }
    }

    /// <summary>The request's messages (to insert into), the last user message's text, and the <c>user</c> field; 400 when the shape is wrong.</summary>
    private static (JsonArray Messages, string? LastUser, string? User) Validate(JsonObject body)
    {
        if (body["messages"] is not JsonArray { Count: > 0 } messages)
        {
            throw new ValidationException("messages", "messages must be a non-empty array of {role, content}");
        }
        string? lastUser = null;
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not JsonObject message)
            {
                throw new ValidationException($"messages[{i}]", "a message must be an object {role, content}");
            }
            if (message["role"] is not JsonValue role || role.GetValueKind() != JsonValueKind.String || string.IsNullOrEmpty(role.GetValue<string>()))
            {
                throw new ValidationException($"messages[{i}].role", "role must be a string (system, developer, user, assistant, tool)");
            }
            var text = message["content"] switch
            {
                null => "",
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                JsonArray parts => TextOf(parts, i),
                _ => throw new ValidationException($"messages[{i}].content", "content must be a string, an array of content parts, or null"),
            };
            if (role.GetValue<string>() == "user")
            {
                lastUser = text;
            }
        }
        string? user = null;
        if (body["user"] is { } u)
        {
            if (u is not JsonValue value || value.GetValueKind() != JsonValueKind.String)
            {
                throw new ValidationException("user", "user must be a string");
            }
            user = value.GetValue<string>();
            user = user.Length == 0 ? null : user;
        }
        if (body["stream"] is { } stream && stream.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
        {
            throw new ValidationException("stream", "stream must be true or false");
        }
        return (messages, lastUser, user);
    }

    /// <summary>
    /// Every string of the body must be Unicode text (no escaped lone surrogate): the body goes to the model as it is,
    /// and an endpoint that cannot read it fails with a 5xx that would look like the model's.
    /// </summary>
    private static void RequireText(JsonNode? node, string path)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (name, value) in o)
                {
                    RequireText(value, path.Length == 0 ? name : path + "." + name);
                }
                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    RequireText(a[i], $"{path}[{i}]");
                }
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                try
                {
                    var text = v.GetValue<string>();
                    if (!IsWellFormed(text))
                    {
                        throw new ValidationException(path, path + " is not valid Unicode text (a lone surrogate)");
                    }
                }
                catch (InvalidOperationException)
                {
                    throw new ValidationException(path, path + " is not valid Unicode text (a lone surrogate)");
                }
                break;
        }
    }

    private static bool IsWellFormed(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return false;
            }
        }
        return true;
    }

    private static string TextOf(JsonArray parts, int index)
    {
        var text = new StringBuilder();
        foreach (var part in parts)
        {
            if (part is not JsonObject p)
            {
                throw new ValidationException($"messages[{index}].content", "a content part must be an object {type, ...}");
            }
            if (p["text"] is JsonValue t && t.GetValueKind() == JsonValueKind.String)
            {
                text.Append(t.GetValue<string>()).Append(' ');
            }
        }
        return text.ToString().Trim();
    }
}
