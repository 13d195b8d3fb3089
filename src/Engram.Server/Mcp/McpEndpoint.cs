using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Server.Mcp;

/// <summary>
/// <c>/mcp</c>: the Streamable HTTP transport, stateless (every POST carries its own caller and no
/// session lives in this process, so many instances can serve one store). Reading needs the read role;
/// tools that write check the write role per call (<see cref="McpToolFailures"/>). A request from a
/// browser page of a foreign origin is refused with 403 before the gate, as the MCP spec requires
/// against DNS rebinding (<see cref="OriginPolicy.AcceptsRequest"/>); bodies are bounded (<see cref="BodyBound"/>).
/// </summary>
internal static class McpEndpoint
{
    public const string Path = "/mcp";

    public static IEndpointConventionBuilder MapEngramMcp(this IEndpointRouteBuilder app) =>
        app.MapMcp(Path).Requires(Role.Read).WithMetadata(OriginChecked.Instance).WithTags("mcp");

    /// <summary>
    /// The checks of requests to endpoints marked <see cref="OriginChecked"/>, after routing and before the gate:
    /// a foreign <c>Origin</c> is refused, a body that is not UTF-8 JSON is 415, and the body is bounded
    /// (<see cref="BodyBound"/>), since the SDK reads it itself and Kestrel's default bound is the smallest route's.
    /// </summary>
    public static IApplicationBuilder UseMcpRequestChecks(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (context.GetEndpoint()?.Metadata.GetMetadata<OriginChecked>() is null)
        {
            await next(context);
            return;
        }
        if (!context.RequestServices.GetRequiredService<OriginPolicy>().AcceptsRequest(context))
        {
            await Problems.For(403, "the MCP endpoint refuses requests from browser pages of other origins (the Origin header); " +
                "allow the origin with Engram:Cors:AllowedOrigins").ExecuteAsync(context);
            return;
        }
        if (HttpMethods.IsPost(context.Request.Method) && MediaTypeFault(context.Request.ContentType) is { } fault)
        {
            await Problems.For(415, fault).ExecuteAsync(context); // the SDK would fail on it with a 500
            return;
        }
        var bound = BodyBound(context.RequestServices.GetRequiredService<RequestBodyLimits>());
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = bound; // Kestrel stops a chunked body once it passes the bound
        }
        if (context.Request.ContentLength > bound)
        {
            await TooLarge(bound).ExecuteAsync(context);
            return;
        }
        try
        {
            if (HttpMethods.IsPost(context.Request.Method) && await EnvelopeRefusalAsync(context.Request, bound) is { } refusal)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(JsonRpcEnvelope.Error(refusal.Code, refusal.Message));
                return;
            }
            await next(context);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge && !context.Response.HasStarted)
        {
            RefusedBodyMemory.Refused(bound);
            await TooLarge(bound).ExecuteAsync(context);
        }
        catch (IOException ex) when (ex is not BadHttpRequestException && !context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            await Problems.For(400, JsonBody.Unreadable(ex).Message).ExecuteAsync(context);
        }
        catch (System.Text.Json.JsonException ex) when (!context.Response.HasStarted)
        {
            // The transport reads an initialize request's params itself, before any message filter: a JSON-RPC error
            // (without an id, which it did not get to) rather than a REST problem body.
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsJsonAsync(new InvalidMessage(new InvalidMessageError(
                (int)ModelContextProtocol.McpErrorCode.InvalidParams, InvalidParams(ex))));
        }
    });

    /// <summary>
    /// Reads the body (buffered, so the transport reads it again; it is at most <paramref name="bound"/> bytes) and checks
    /// its envelope (<see cref="JsonRpcEnvelope"/>).
    /// </summary>
    private static async Task<(int Code, string Message)?> EnvelopeRefusalAsync(HttpRequest request, long bound)
    {
        request.EnableBuffering(bufferThreshold: 64 * 1024, bufferLimit: bound);
        var refusal = await JsonRpcEnvelope.RefusalAsync(request.Body, "the body", request.HttpContext.RequestAborted);
        request.Body.Position = 0;
        return refusal;
    }

    /// <summary>What is wrong with the params the transport read, without .NET type names.</summary>
    private static string InvalidParams(System.Text.Json.JsonException exception)
    {
        const string Missing = "missing required properties including: ";
        var at = exception.Message.IndexOf(Missing, StringComparison.Ordinal);
        return at >= 0
            ? "params lack required fields: " + exception.Message[(at + Missing.Length)..].Split(" Path:")[0].TrimEnd('.')
            : "invalid params: " + JsonErrors.Describe(exception, out _);
    }

    private sealed record InvalidMessage(InvalidMessageError Error)
    {
        public string Jsonrpc => "2.0";

        public object? Id => null;
    }

    private sealed record InvalidMessageError(int Code, string Message);

    /// <summary>
    /// An MCP message carries one tool call, so the bound is that of the largest single-item REST route: a
    /// key-value SET (<c>Engram:KeyValue:MaxValueBytes</c> plus room for the envelope) or one memory,
    /// whichever is larger (1 MiB + 16 KiB by default). The multi-item bound (16 MiB) is not needed: no tool
    /// takes a batch of memories.
    /// </summary>
    internal static long BodyBound(RequestBodyLimits limits) => Math.Max(limits.KeyValue, limits.Memory);

    /// <summary>Why a POST's Content-Type is not UTF-8 JSON, or null; MCP messages always carry one (unlike REST, none is not taken as JSON).</summary>
    private static string? MediaTypeFault(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
        {
            return "MCP messages are sent with Content-Type: application/json";
        }
        try
        {
            JsonMediaType.Require(contentType);
            return null;
        }
        catch (BadHttpRequestException ex)
        {
            return ex.Message;
        }
    }

    private static IResult TooLarge(long bound) => Problems.For(413,
        $"the request body is larger than {bound} bytes, the bound of the MCP endpoint (raise it with {RequestBodyLimits.SettingFor(BodySize.KeyValue)})");

    private sealed class OriginChecked
    {
        public static readonly OriginChecked Instance = new();
    }
}
