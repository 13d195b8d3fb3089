using System.Text;
using Engram.Tests.Hostile;
using Engram.Tests.Support;
using Microsoft.Extensions.Logging;

namespace Engram.Tests.Mcp;

/// <summary>
/// Hostile bodies on <c>/mcp</c>: malformed JSON-RPC, unknown tools and methods, wrong argument types,
/// huge arguments, deep nesting, oversized bodies. The answer is a JSON-RPC error or a tool error
/// (200 or 4xx), never a 5xx, and the server keeps serving.
/// </summary>
public sealed class McpHostileBodyTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public static TheoryData<string, string> ProtocolErrors => new()
    {
        { "not JSON", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":" },
        { "a JSON string", "\"tools/list\"" },
        { "an empty object", "{}" },
        { "no jsonrpc version", """{"id":1,"method":"tools/list"}""" },
        { "a wrong jsonrpc version", """{"jsonrpc":"1.0","id":1,"method":"tools/list"}""" },
        { "a method that is a number", """{"jsonrpc":"2.0","id":1,"method":42}""" },
        { "an unknown method", """{"jsonrpc":"2.0","id":1,"method":"memory/steal","params":{}}""" },
        { "an id that is an object", """{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}""" },
        { "params that are a string", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"memory_get"}""" },
        { "a tool name that is a number", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7,"arguments":{}}}""" },
        { "an unknown tool", McpHttpRaw.ToolCall("memory_steal", "{}") },
        { "deeply nested arguments", McpHttpRaw.ToolCall("memory_store", new string('[', 5000) + new string(']', 5000)) },
        { "deeply nested JSON", new string('[', 100_000) + new string(']', 100_000) },
        { "a batch of junk", "[1,2,3]" },
        { "metadata nested past the parser's depth", McpHttpRaw.ToolCall("memory_store", $$$"""{"content":"x","metadata":{{{string.Concat(Enumerable.Repeat("{\"a\":", 200))}}}1{{{new string('}', 200)}}}}""") },
    };

    [Theory]
    [MemberData(nameof(ProtocolErrors))]
    public async Task Malformed_messages_are_json_rpc_errors_never_500(string name, string body)
    {
        var answer = await McpHttpRaw.PostAsync(_server.Client, body);
        answer.Status.Should().BeInRange(200, 499, $"{name}: {answer}");
        if (answer.Status == 200 && answer.Body.Length > 0)
        {
            var message = answer.Message;
            (message.TryGetProperty("error", out _) || message.GetProperty("result").GetProperty("isError").GetBoolean()).Should().BeTrue($"{name}: {answer}");
        }
        await StillServesAsync();
    }

    /// <summary>
    /// The envelope is checked before the SDK's transport reads it: text that is not JSON is -32700 (the transport said
    /// -32600), and the transport's words for an envelope it could not map named .NET types (session 46's probe).
    /// </summary>
    [Theory]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":", -32700, "Parse error: the body is not JSON")]
    [InlineData("", -32700, "Parse error: the body is not JSON")]
    [InlineData("\"tools/list\"", -32600, "Invalid Request: a message is one JSON object, not a string")]
    [InlineData("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", -32600, "Invalid Request: a message is one JSON object, not an array (batches are not part of MCP)")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":42}", -32600, "Invalid Request: method must be a string, not a number")]
    [InlineData("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", -32600, "Invalid Request: jsonrpc must be the string 2.0")]
    [InlineData("{\"id\":1,\"method\":\"ping\"}", -32600, "Invalid Request: jsonrpc must be the string 2.0")]
    [InlineData("{\"jsonrpc\":\"\\ud800\",\"id\":1,\"method\":\"ping\"}", -32600, "Invalid Request: jsonrpc must be the string 2.0")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"ping\"}", -32600, "Invalid Request: id must be a string, an integer or null, not an object")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1e300,\"method\":\"ping\"}", -32600, "Invalid Request: id must be a string, an integer or null, not a fraction or a number past 64 bits")]
    public async Task A_body_that_is_not_a_JSON_RPC_message_is_answered_by_its_fault_with_id_null(string body, int code, string message)
    {
        var answer = await McpHttpRaw.PostAsync(_server.Client, body);
        answer.Status.Should().Be(400, answer.ToString());
        answer.Message.GetProperty("id").ValueKind.Should().Be(System.Text.Json.JsonValueKind.Null);
        answer.Message.GetProperty("error").GetProperty("code").GetInt32().Should().Be(code);
        answer.Message.GetProperty("error").GetProperty("message").GetString().Should().StartWith(message).And.NotContain("ModelContextProtocol").And.NotContain("LineNumber");
        await StillServesAsync();
    }

    public static TheoryData<string, string> ToolErrors => new()
    {
        { "a required argument missing", """{}""" },
        { "content that is a number", """{"content":42}""" },
        { "content that is an object", """{"content":{"a":1}}""" },
        { "tags that are a string", """{"content":"x","tags":"a,b"}""" },
        { "importance that is text", """{"content":"x","importance":"high"}""" },
        { "importance out of range", """{"content":"x","importance":7}""" },
        { "ttl_seconds huge", """{"content":"x","ttl_seconds":1e400}""" },
        { "a content of 200,000 characters", $$"""{"content":"{{new string('a', 200_000)}}"}""" },
        { "20,000 tags", $$"""{"content":"x","tags":[{{string.Join(',', Enumerable.Repeat("\"t\"", 20_000))}}]}""" },
    };

    [Theory]
    [MemberData(nameof(ToolErrors))]
    public async Task Bad_arguments_are_tool_errors_with_a_message(string name, string arguments)
    {
        var answer = await McpHttpRaw.PostAsync(_server.Client, McpHttpRaw.ToolCall("memory_store", arguments));
        answer.Status.Should().Be(200, $"{name}: {answer}");
        var message = answer.Message;
        if (message.TryGetProperty("error", out var error))
        {
            // The SDK itself refuses arguments it cannot bind: a JSON-RPC invalid-params error is acceptable.
            error.GetProperty("message").GetString().Should().NotBeNullOrEmpty();
        }
        else
        {
            var result = message.GetProperty("result");
            (result.TryGetProperty("isError", out var isError) && isError.GetBoolean()).Should().BeTrue($"{name}: {answer}");
            var text = result.GetProperty("content")[0].GetProperty("text").GetString();
            text.Should().NotBeNullOrEmpty().And.NotContain("unexpected error", name);
        }
        await StillServesAsync();
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("text/plain")]
    [InlineData("application/json; charset=utf-16")]
    [InlineData("application/json, text/plain")]
    public async Task A_body_that_is_not_utf8_json_is_415_with_a_problem_body_not_500(string? contentType)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(McpHttpRaw.ToolsList)) };
        request.Content.Headers.ContentType = null;
        if (contentType is not null)
        {
            request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }
        request.Headers.TryAddWithoutValidation("Accept", "application/json, text/event-stream");
        using var response = await _server.Client.SendAsync(request);
        ((int)response.StatusCode).Should().Be(415, await response.Content.ReadAsStringAsync());
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        await StillServesAsync();
    }

    [Fact]
    public async Task A_body_past_the_mcp_bound_is_413_announced_or_chunked_and_a_big_kv_value_fits()
    {
        var announced = await RawHttp.HeadersOnlyAsync(_server.BaseAddress, "POST", "/mcp", 4L * 1024 * 1024, TimeSpan.FromSeconds(20));
        announced.Status.Should().Be(413, announced.Body);
        announced.ContentType.Should().StartWith("application/problem+json");
        announced.Body.Should().Contain("Engram:KeyValue:MaxValueBytes");

        var chunked = await ChunkedPastTheBoundAsync();
        chunked.Status.Should().Be(413, chunked.Body);

        // 100 KB of content: more than Kestrel's default bound for bodiless routes (64 KiB), well under the MCP bound.
        var big = await McpHttpRaw.PostAsync(_server.Client, McpHttpRaw.ToolCall("memory_store", $$$"""{"content":"{{{new string('b', 30_000)}}}","metadata":{"pad":"{{{new string('p', 70_000)}}}"}}"""));
        big.Status.Should().Be(200, big.ToString());
        await StillServesAsync();
    }

    public static TheoryData<string, string> NotUnicode => new()
    {
        { """{"content":"\ud800"}""", "arguments.content" },
        { """{"content":"a\udc00b"}""", "arguments.content" },
        { """{"content":"\ud83d\ude00 then \ud83d"}""", "arguments.content" },
        { """{"content":"x","tags":["ok","\udbff"]}""", "arguments.tags[1]" },
        { """{"content":"x","metadata":{"a":{"b":"\ud800"}}}""", "arguments.metadata.a.b" },
        { """{"content":"x","metadata":{"\ud800":1}}""", "a key of arguments.metadata" },
    };

    [Theory]
    [MemberData(nameof(NotUnicode))]
    public async Task Text_that_is_not_valid_unicode_is_invalid_params_naming_where_with_nothing_in_the_log(string arguments, string path)
    {
        var log = LogCapture.AttachTo(_server);
        var answer = await McpHttpRaw.PostAsync(_server.Client, McpHttpRaw.ToolCall("memory_store", arguments));
        answer.Status.Should().Be(200, answer.ToString());
        var error = answer.Message.GetProperty("error");
        error.GetProperty("code").GetInt32().Should().Be(-32602, answer.ToString());
        error.GetProperty("message").GetString().Should().Be($"{path} is not valid Unicode: it holds a lone surrogate (such as \\ud800 without its pair) or invalid UTF-8");
        log.Entries.Where(e => e.Level >= LogLevel.Warning).Should().BeEmpty(log.AllText);
        log.AllText.Should().NotContain("UTF-16");

        // A valid pair passes, and REST refuses the same text with the same words.
        var pair = await McpHttpRaw.PostAsync(_server.Client, McpHttpRaw.ToolCall("memory_store", """{"content":"a pair \ud83d\ude00 is fine"}"""));
        var stored = pair.Message.GetProperty("result");
        (stored.TryGetProperty("isError", out var isError) && isError.GetBoolean()).Should().BeFalse(pair.ToString());
        using var rest = await _server.PostJsonAsync("/v1/memories", """{"content":"\ud800"}""");
        (await rest.ShouldBeProblemAsync(System.Net.HttpStatusCode.BadRequest, "content")).GetProperty("detail").GetString().Should().Contain("is not valid Unicode");
        await StillServesAsync();
    }

    public static TheoryData<string, string, int, string> WrongParams => new()
    {
        { "tools/call", "[]", -32602, "params of tools/call must be an object" },
        { "tools/call", """{"name":"memory_stats","arguments":"x"}""", -32602, "params.arguments must be an object" },
        { "tools/call", """{"name":"memory_stats","arguments":[]}""", -32602, "params.arguments must be an object" },
        { "resources/read", "{}", -32602, "params.uri is required and must be a string" },
        { "resources/read", """{"uri":"memory://nope"}""", -32002, "Unknown resource URI: 'memory://nope'" },
        { "prompts/get", """{"name":"recall"}""", -32602, "prompt 'recall' needs the argument 'topic'" },
        { "prompts/get", """{"name":"recall","arguments":{"topic":1}}""", -32602, "arguments.topic must be a string (prompt arguments are text)" },
        { "prompts/get", """{"name":"recall","arguments":[]}""", -32602, "params.arguments must be an object" },
        { "prompts/get", """{"name":"nope"}""", -32602, "Unknown prompt: 'nope'" },
        { "logging/setLevel", """{"level":"nope"}""", -32602, "level must be one of debug, info, notice, warning, error, critical, alert, emergency (got 'nope')" },
        // Session 46's probe: the SDK answered these right but logged each at warning or error with a stack, or answered -32603.
        { "tools/list", "[]", -32602, "params of tools/list must be an object" },
        { "tools/list", "\"x\"", -32602, "params of tools/list must be an object" },
        { "nosuch", "{}", -32601, "Method 'nosuch' is not available." },
        { "resources/read", """{"uri":"memory://recent?limit=abc"}""", -32602, "invalid limit: limit must be a whole number (got 'abc')" },
        { "resources/read", """{"uri":"memory://recent?limit=-1"}""", -32602, "invalid limit: limit is out of range (got '-1')" },
        { "resources/read", """{"uri":"memory://recent?limit=5000"}""", -32602, "invalid limit: limit must be between 1 and 1000 (got 5000)" },
        { "resources/read", """{"uri":"memory://recent?limit=99999999999"}""", -32602, "invalid limit: limit is out of range (got '99999999999')" },
        { "resources/read", """{"uri":"memory://recent?user_id=%20&limit=2"}""", -32602, "invalid user_id: user_id must not be empty; leave it out to match every value" },
        // Session 48: an escape that is not UTF-8 was kept as text, reading the memories of the user literally called "%ff".
        { "resources/read", """{"uri":"memory://recent?user_id=%ff"}""", -32602, "invalid user_id: the user_id's percent-encoded bytes are not UTF-8" },
        { "resources/read", """{"uri":"memory://recent?user_id=50%"}""", -32602, "invalid user_id: a '%' in the user_id must start a percent-encoded byte such as %2F (%25 for a literal '%')" },
    };

    /// <summary>The SDK's handlers answered most of these with an internal error (-32603) and logged each with a stack.</summary>
    [Theory]
    [MemberData(nameof(WrongParams))]
    public async Task Params_of_the_wrong_shape_are_invalid_params_saying_what_with_nothing_in_the_log(string method, string parameters, int code, string message)
    {
        var log = LogCapture.AttachTo(_server);
        var answer = await McpHttpRaw.PostAsync(_server.Client, $$$"""{"jsonrpc":"2.0","id":7,"method":"{{{method}}}","params":{{{parameters}}}}""");
        answer.Status.Should().Be(200, answer.ToString());
        var error = answer.Message.GetProperty("error");
        error.GetProperty("code").GetInt32().Should().Be(code, answer.ToString());
        error.GetProperty("message").GetString().Should().Be(message);
        answer.Message.GetProperty("id").GetInt32().Should().Be(7);
        log.Entries.Where(e => e.Level >= LogLevel.Warning).Should().BeEmpty(log.AllText);

        // The same methods with proper params still work.
        var prompt = await McpHttpRaw.PostAsync(_server.Client, """{"jsonrpc":"2.0","id":8,"method":"prompts/get","params":{"name":"recall","arguments":{"topic":"tea"}}}""");
        prompt.Message.TryGetProperty("result", out _).Should().BeTrue(prompt.ToString());
        var recent = await McpHttpRaw.PostAsync(_server.Client, """{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"memory://recent?limit=5"}}""");
        recent.Message.TryGetProperty("result", out _).Should().BeTrue(recent.ToString());
    }

    [Fact]
    public async Task An_initialize_without_its_params_is_a_json_rpc_error_naming_the_fields()
    {
        var answer = await McpHttpRaw.PostAsync(_server.Client, """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}""");
        answer.Status.Should().Be(400, answer.ToString());
        var error = answer.Message.GetProperty("error");
        error.GetProperty("code").GetInt32().Should().Be(-32602);
        error.GetProperty("message").GetString().Should().Be("params lack required fields: 'protocolVersion', 'capabilities', 'clientInfo'");
        answer.Message.GetProperty("jsonrpc").GetString().Should().Be("2.0");
        await StillServesAsync();
    }

    [Fact]
    public async Task A_huge_method_tool_or_prompt_name_is_answered_and_logged_with_its_first_200_characters()
    {
        var log = LogCapture.AttachTo(_server);
        var method = await McpHttpRaw.PostAsync(_server.Client, $$$"""{"jsonrpc":"2.0","id":1,"method":"{{{new string('m', 10_000)}}}","params":{}}""");
        var error = method.Message.GetProperty("error");
        error.GetProperty("code").GetInt32().Should().Be(-32601, method.ToString());
        error.GetProperty("message").GetString().Should().StartWith("Method 'mmm").And.Contain("(10000 characters)").And.NotContain(new string('m', 201));

        var tool = await McpHttpRaw.PostAsync(_server.Client, McpHttpRaw.ToolCall(new string('t', 10_000), "{}"));
        tool.Status.Should().Be(200, tool.ToString());
        tool.Body.Should().Contain("ttt").And.Contain("(10000 characters)").And.NotContain(new string('t', 201));
        var prompt = await McpHttpRaw.PostAsync(_server.Client, $$$"""{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"{{{new string('p', 10_000)}}}"}}""");
        prompt.Message.GetProperty("error").GetProperty("message").GetString().Should().Contain("(10000 characters)").And.NotContain(new string('p', 201));

        log.AllText.Should().Contain("ttt", "the SDK still logs the unknown tool, with its name cut")
            .And.NotContain(new string('m', 201)).And.NotContain(new string('t', 201)).And.NotContain(new string('p', 201));
        // A short unknown method is answered as before.
        var unknown = await McpHttpRaw.PostAsync(_server.Client, """{"jsonrpc":"2.0","id":1,"method":"memory/steal","params":{}}""");
        unknown.Message.GetProperty("error").GetProperty("message").GetString().Should().Be("Method 'memory/steal' is not available.");
        await StillServesAsync();
    }

    /// <summary>
    /// A 4 MB chunked POST. The server may answer 413 and close while the client is still writing (a broken pipe
    /// on the client's side, a race of the test, not of the server), so a write that fails is tried again.
    /// </summary>
    private async Task<RawHttp.Answer> ChunkedPastTheBoundAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await RawHttp.ChunkedAsync(_server.BaseAddress, "POST", "/mcp", 4 * 1024 * 1024, TimeSpan.FromSeconds(20),
                    "Accept: application/json, text/event-stream\r\n");
            }
            catch (IOException) when (attempt < 5)
            {
            }
        }
    }

    private async Task StillServesAsync()
    {
        var list = await McpHttpRaw.PostAsync(_server.Client, McpHttpRaw.ToolsList);
        list.Status.Should().Be(200, list.ToString());
        list.Message.GetProperty("result").GetProperty("tools").GetArrayLength().Should().BeGreaterThan(0);
    }
}
