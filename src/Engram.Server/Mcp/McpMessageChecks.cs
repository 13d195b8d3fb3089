using System.Collections.Frozen;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Common;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// Checks every request before the SDK reads it, for what the SDK would fail on or write to the log in full:
/// <list type="bullet">
/// <item>params holding text that is not valid Unicode (a lone surrogate escape such as <c>"\ud800"</c>, or invalid
/// UTF-8): System.Text.Json refuses to unescape it when the SDK binds the params, which the SDK answers with an
/// internal error and logs with a stack. Here it is an invalid-params error (-32602) naming where, as REST answers 400;</item>
/// <item>a method name longer than <see cref="MaxName"/> (no MCP method comes near): method-not-found quoting its
/// start, since the SDK logs the method of an unknown one in full three times;</item>
/// <item>a tool or prompt name longer than <see cref="MaxName"/> (no registered one comes near) is cut to that length, so
/// the SDK's own "unknown tool/prompt" answer and its log lines quote the cut name.</item>
/// </list>
/// One filter for every transport: <see cref="EngramMcp.AddEngramMcp"/> registers it, and the stdio proxy too.
/// </summary>
public static class McpMessageChecks
{
    /// <summary>The longest method, tool or prompt name passed on as it is (Engram's are under 40 characters).</summary>
    public const int MaxName = 200;

    /// <summary>The incoming-message filter.</summary>
    public static McpMessageFilter Filter => next => (context, ct) =>
    {
        if (context.JsonRpcMessage is JsonRpcRequest request)
        {
            Check(request);
            CheckShape(request, context.Server.ServerOptions, context.Services);
        }
        return next(context, ct);
    };

    /// <summary>Every request method the SDK knows (<see cref="RequestMethods"/>), and the deprecated <c>logging/setLevel</c>.</summary>
    private static readonly FrozenSet<string> KnownMethods = typeof(RequestMethods)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(f => f is { IsLiteral: true } && f.FieldType == typeof(string)).Select(f => (string)f.GetRawConstantValue()!)
        .Append("logging/setLevel").ToFrozenSet(StringComparer.Ordinal);

    /// <summary>The levels <c>logging/setLevel</c> takes (RFC 5424's, as MCP names them).</summary>
    private static readonly string[] LoggingLevels = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

    /// <summary>
    /// The params of the methods whose handlers take a client's input apart: a wrong shape (params that are not an object,
    /// <c>arguments</c> that are not one, a prompt's missing or non-text argument, an unknown resource or prompt, a level
    /// that is none) is the client's mistake, answered -32602 (-32002 for an unknown resource) here. The SDK's handlers
    /// answered an internal error (-32603) for most, and logged each client mistake at warning or error with a stack.
    /// </summary>
    private static void CheckShape(JsonRpcRequest request, McpServerOptions options, IServiceProvider? services)
    {
        if (request.Params is not null and not JsonObject)
        {
            // JSON-RPC's params by position: no MCP method takes them (the SDK failed binding them, -32603 with a stack).
            throw new McpProtocolException($"params of {request.Method} must be an object", McpErrorCode.InvalidParams);
        }
        switch (request.Method)
        {
            case RequestMethods.ToolsCall:
                {
                    var parameters = ParamsObject(request);
                    RequireString(parameters, "name");
                    OptionalObject(parameters, "arguments");
                    break;
                }
            case RequestMethods.ResourcesRead:
                {
                    var uri = RequireString(ParamsObject(request), "uri");
                    if (options.ResourceCollection is { } resources && !resources.Any(r => r.IsMatch(uri)))
                    {
                        throw new McpProtocolException($"Unknown resource URI: '{Cut(uri)}'", McpErrorCode.ResourceNotFound);
                    }
                    if (uri.StartsWith(MemoryResources.RecentUri, StringComparison.Ordinal))
                    {
                        try
                        {
                            MemoryResources.CheckRecentArguments(uri, (services?.GetService(typeof(Core.Memories.MemoryService)) as Core.Memories.MemoryService)?.Limits);
                        }
                        catch (ValidationException invalid)
                        {
                            throw new McpProtocolException(McpToolFailures.Describe(invalid)!, McpErrorCode.InvalidParams);
                        }
                    }
                    break;
                }
            case RequestMethods.PromptsGet:
                {
                    var parameters = ParamsObject(request);
                    var name = RequireString(parameters, "name");
                    var arguments = OptionalObject(parameters, "arguments");
                    if (options.PromptCollection is not { } prompts || !prompts.TryGetPrimitive(name, out var prompt))
                    {
                        throw new McpProtocolException($"Unknown prompt: '{name}'", McpErrorCode.InvalidParams); // Check has cut a long name already
                    }
                    foreach (var (key, value) in arguments ?? [])
                    {
                        if (value is not JsonValue text || text.GetValueKind() != JsonValueKind.String)
                        {
                            throw new McpProtocolException($"arguments.{Cut(key)} must be a string (prompt arguments are text)", McpErrorCode.InvalidParams);
                        }
                    }
                    foreach (var argument in prompt.ProtocolPrompt.Arguments ?? [])
                    {
                        if (argument.Required == true && arguments?[argument.Name] is null)
                        {
                            throw new McpProtocolException($"prompt '{name}' needs the argument '{argument.Name}'", McpErrorCode.InvalidParams);
                        }
                    }
                    break;
                }
            case "logging/setLevel": // deprecated by the 2026-07-28 spec, still answered for older clients
                {
                    var level = RequireString(ParamsObject(request), "level");
                    if (!LoggingLevels.Contains(level, StringComparer.Ordinal))
                    {
                        throw new McpProtocolException($"level must be one of {string.Join(", ", LoggingLevels)} (got '{Cut(level)}')", McpErrorCode.InvalidParams);
                    }
                    break;
                }
        }
    }

    private static JsonObject ParamsObject(JsonRpcRequest request) => request.Params as JsonObject
        ?? throw new McpProtocolException($"params of {request.Method} must be an object", McpErrorCode.InvalidParams);

    private static string RequireString(JsonObject parameters, string field) =>
        parameters[field] is JsonValue value && value.GetValueKind() == JsonValueKind.String && value.TryGetValue<string>(out var text)
            ? text
            : throw new McpProtocolException($"params.{field} is required and must be a string", McpErrorCode.InvalidParams);

    private static JsonObject? OptionalObject(JsonObject parameters, string field) => parameters[field] switch
    {
        null => null,
        JsonObject obj => obj,
        _ => throw new McpProtocolException($"params.{field} must be an object", McpErrorCode.InvalidParams),
    };

    private static void Check(JsonRpcRequest request)
    {
        if (request.Method.Length > MaxName || !KnownMethods.Contains(request.Method))
        {
            // The SDK answers the same, after logging it with a stack.
            throw new McpProtocolException($"Method '{Cut(request.Method)}' is not available.", McpErrorCode.MethodNotFound);
        }
        if (InvalidUnicodeAt(request.Params, "") is { } path)
        {
            throw new McpProtocolException(
                $"{(path.Length == 0 ? "params" : Cut(path))} is not valid Unicode: it holds a lone surrogate (such as \\ud800 without its pair) or invalid UTF-8",
                McpErrorCode.InvalidParams);
        }
        if (request.Method is RequestMethods.ToolsCall or RequestMethods.PromptsGet
            && request.Params is JsonObject parameters && parameters["name"] is JsonValue value
            && value.TryGetValue<string>(out var name) && name.Length > MaxName)
        {
            parameters["name"] = Cut(name);
        }
    }

    private static string Cut(string name) => name.Length > MaxName ? $"{name[..MaxName]}… ({name.Length} characters)" : name;

    /// <summary>
    /// The path (<c>arguments.content</c>, <c>arguments.tags[2]</c>) of the first string in <paramref name="node"/> that
    /// is not valid Unicode, or of the object holding such a key; null when there is none. Strings the parser kept as
    /// raw JSON are checked in place, without unescaping (which is what throws).
    /// </summary>
    internal static string? InvalidUnicodeAt(JsonNode? node, string path)
    {
        switch (node)
        {
            case JsonObject obj:
                List<KeyValuePair<string, JsonNode?>> members;
                try
                {
                    members = [.. obj]; // reads the keys, unescaping them
                }
                catch (InvalidOperationException)
                {
                    return path.Length == 0 ? "a key of params" : $"a key of {path}";
                }
                foreach (var (key, value) in members)
                {
                    var inner = path.Length == 0 ? key : $"{path}.{key}";
                    if (!UnicodeText.IsValid(key))
                    {
                        return path.Length == 0 ? "a key of params" : $"a key of {path}";
                    }
                    if (InvalidUnicodeAt(value, inner) is { } found)
                    {
                        return found;
                    }
                }
                return null;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    if (InvalidUnicodeAt(array[i], $"{path}[{i}]") is { } found)
                    {
                        return found;
                    }
                }
                return null;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                if (value.TryGetValue<JsonElement>(out var element))
                {
                    return UnicodeText.IsValidJson(JsonMarshal.GetRawUtf8Value(element)) ? null : path;
                }
                return value.TryGetValue<string>(out var text) && !UnicodeText.IsValid(text) ? path : null;
            default:
                return null;
        }
    }
}
