using System.Text.Json.Nodes;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// The hostile-looking inputs that are legitimately acceptable, one line each with the reason:
/// everything not listed here must be refused with a 4xx problem body.
/// </summary>
internal static class Exceptions
{
    /// <summary>A body payload on a route: payload class, the field it spoils (a prefix; "" any) and the payload name (null: any).</summary>
    private sealed record Rule(string Label, string Class, string Field, string? Payload, Func<RouteSample, Expectation> Expect);

    /// <summary>The first rule that matches a payload decides.</summary>
    private static readonly Rule[] Rules =
    [
        // U+0000 written as \u0000 is valid JSON and valid Unicode, but PostgreSQL's text cannot hold it: nothing stores it
        // (content, observations, names, keys, scopes refuse it alike on both stores). A query is not stored: it may hold one.
        new("POST /v1/search", "strings", "query", "escaped NUL", s => FreeText(s)),
        // A key-value value is kept as JSON text on both stores (never jsonb), and RESP writes bytes that hold NUL: it may hold one.
        new("PUT /v1/kv/{key}", "strings", "value", "escaped NUL", _ => Expectation.Only("a key-value value may hold U+0000 (JSON text on both stores; RESP values are bytes)", 200)),
        new("POST /v1/kv/mset", "strings", "items[0].value", "escaped NUL", _ => Expectation.Only("a key-value value may hold U+0000 (JSON text on both stores; RESP values are bytes)", 200)),
        new("POST /v1/search", "strings", "filters.", "escaped NUL", s => Expectation.Only("a filter holding U+0000 matches nothing", 200) with { Check = Empty("results") }),
        // A batch validates each item on its own: a bad item is reported in its slot, the batch answers 200 (documented).
        new("POST /v1/memories/batch", "strings", "items[0].", null, _ => ItemErrors()),
        new("POST /v1/memories/batch", "sizes", "items[0].", null, _ => ItemErrors()),
        // Chat (issue 16): the user turn is free text; a scope field is a filter (matching nothing when odd), as on search.
        new("POST /v1/chat", "strings", "messages[0].content", "escaped NUL", s => FreeText(s)),
        new("POST /v1/chat", "strings", "messages[0].content", "40,000 characters", _ => Expectation.RefusedOr("a long user turn is recalled for by its last 8,192 characters", 200)),
        new("POST /v1/chat", "strings", "user_id", "escaped NUL", _ => Expectation.Only("a scope holding U+0000 matches nothing", 200) with { Check = Empty("memories") }),
        new("POST /v1/chat", "strings", "user_id", "40,000 characters", _ => Expectation.RefusedOr("an over-long scope matches nothing", 200) with { Check = Empty("memories") }),
        // The proxy speaks OpenAI's format and passes what it does not read to the model untouched (unknown fields,
        // other types and text the model may take): 200 or a 4xx, never a 5xx.
        new("POST /v1/chat/completions", "fields", "", null, _ => Proxied()),
        new("POST /v1/chat/completions", "strings", "", null, _ => Proxied()),
        new("POST /v1/chat/completions", "wrong type", "", null, _ => Proxied()),
        new("POST /v1/chat/completions", "sizes", "", null, _ => Proxied()),
        new("POST /v1/chat/completions", "whole body", "", "10,000 unknown fields", _ => Proxied()),
        // A filter longer than any stored value is a filter that matches nothing, not an error.
        new("POST /v1/search", "strings", "filters.", "40,000 characters", s => Expectation.RefusedOr("an over-long filter matches nothing", 200) with { Check = Empty("results") }),
    ];

    /// <summary>Numbers each field legitimately takes (its documented range): (route, field, number names).</summary>
    private static readonly (string Label, string Field, string[] Numbers, string Why)[] InRange =
    [
        ("POST /v1/memories", "importance", ["-0", "1e-400"], "importance is 0..1"),
        ("POST /v1/memories", "valence", ["-1", "-0", "1e-400"], "valence is -1..1"),
        ("POST /v1/memories", "ttl_seconds", ["2^31"], "a TTL in seconds is a long"),
        ("PATCH /v1/memories/{id}", "importance", ["-0", "1e-400"], "importance is 0..1"),
        ("PATCH /v1/memories/{id}", "ttl_seconds", ["2^31"], "a TTL in seconds is a long"),
        ("POST /v1/search", "min_score", Finite, "min_score is any finite number (a bound on the score)"),
        ("POST /v1/search", "weights.recency", ["-0", "1e-400", "fraction for an integer"], "a weight is 0 or more"),
        ("POST /v1/graph/relations", "relations[0].weight", Finite, "a relation's weight is any finite number"),
        ("PUT /v1/kv/{key}", "ttl_seconds", ["-0"], "ttl_seconds 0 is no expiry"),
        ("POST /v1/kv/mset", "items[0].ttl_seconds", ["-0"], "ttl_seconds 0 is no expiry"),
        ("POST /v1/kv/{key}", "by", ["-1", "-0", "2^31"], "incr adds any long"),
    ];

    private static string[] Finite => ["2^63", "-2^63-1", "2^64", "100-digit integer", "-1", "-0", "1e-400", "2^31", "fraction for an integer"];

    private static Expectation Proxied() => Expectation.RefusedOr("the OpenAI-format proxy passes fields it does not read to the model as they are", 200);

    private static Expectation ItemErrors() => Expectation.RefusedOr("a bad batch item is reported in its slot", 200) with
    {
        Check = a => JsonNode.Parse(a.Body)!["results"]!.AsArray().All(r => (string?)r!["status"] == "error") ? null : "a bad item was stored",
    };

    private static Expectation FreeText(RouteSample sample) =>
        Expectation.Only("a query may hold U+0000 (escaped): it is not stored", sample.Statuses) with { MayWrite = sample.Writes };

    public static Expectation Body(RouteSample sample, string payloadClass, string field, string? payload = null) =>
        Rules.FirstOrDefault(r => r.Label == sample.Label && r.Class == payloadClass && field.StartsWith(r.Field, StringComparison.Ordinal)
            && (r.Payload is null || r.Payload == payload))?.Expect(sample) ?? Expectation.Refused;

    public static Expectation Number(RouteSample sample, string field, string number) =>
        InRange.FirstOrDefault(r => r.Label == sample.Label && r.Field == field && r.Numbers.Contains(number)) is { Why: not null } rule
            ? Expectation.Only(rule.Why, sample.Statuses) with { MayWrite = sample.Writes }
            : Expectation.Refused;

    /// <summary>A body announced as empty: refused where a body is required; incr takes none and adds 1 (documented).</summary>
    public static Expectation EmptyBody(RouteSample sample) => sample.Target.EndsWith("/incr", StringComparison.Ordinal)
        ? Expectation.Only("incr without a body adds 1 (documented)", 200) with { MayWrite = true }
        : Expectation.Refused;

    /// <summary>
    /// An If-Match header where a route reads one (a PATCH; a memory's DELETE since session 46): a malformed one is a 400,
    /// a version that is not the memory's a 412 (404 for a memory that is not there); an empty one is no condition.
    /// </summary>
    public static Expectation IfMatch(RouteSample sample, string value) =>
        value.Length == 0 ? Expectation.Only("an empty If-Match sets no condition", sample.Statuses) with { MayWrite = true } : Expectation.Refused;

    /// <summary>Hostile query values, refused unless listed.</summary>
    public static Expectation Query(RouteSample sample, string parameter, string value) => Expectation.Refused;

    /// <summary>A request to <c>/mcp</c>, the MCP Streamable HTTP endpoint, which answers in JSON-RPC.</summary>
    public static bool SpeaksJsonRpc(string target) => target == "/mcp" || target.StartsWith("/mcp?", StringComparison.Ordinal);

    /// <summary>
    /// /mcp speaks JSON-RPC, not REST: a message the SDK cannot take (malformed, wrong types, unknown method or tool,
    /// nesting past its depth, a wrong Accept) is a JSON-RPC error, with 200 or a 4xx whose body is a JSON-RPC error
    /// object instead of a problem (<see cref="IsJsonRpcError"/>), and a bad tool argument is a tool error (200,
    /// isError). Engram's own refusals in front of the SDK (401, 403 Origin, 413, 414, 431) stay problem bodies.
    /// Still never a 5xx, a hang or a write (the sample calls the read-only memory_get).
    /// </summary>
    public static Expectation Mcp(Expectation probe) => probe with
    {
        Why = probe.Why + "; /mcp answers in JSON-RPC (200 or 4xx)",
        Statuses = [200, .. Enumerable.Range(400, 100)],
        AnyBelow500 = false,
        MayWrite = false,
        Check = null,
    };

    /// <summary>A request to the mem0-compatible API (issue 17): its own routes, and /v1/memories… with mem0's trailing slash.</summary>
    public static bool SpeaksMem0(string target)
    {
        var path = target.Split('?')[0];
        return path.StartsWith("/v3/", StringComparison.Ordinal) || path.StartsWith("/v2/", StringComparison.Ordinal)
            || path.StartsWith("/v1/ping", StringComparison.Ordinal) || path.StartsWith("/v1/entities", StringComparison.Ordinal)
            || path.StartsWith("/v1/batch", StringComparison.Ordinal) || path.StartsWith("/v1/event", StringComparison.Ordinal)
            || (path.StartsWith("/v1/memories", StringComparison.Ordinal) && path.EndsWith('/'));
    }

    /// <summary>
    /// The mem0-compatible API follows the platform, which accepts and ignores parameters it does not know (unknown
    /// query parameters and body fields, repeated ones, platform-only ones) and takes any entity name a user gives:
    /// such a request may succeed (2xx; an add writes in the sample's hostile scope, a delete of an entity nobody has
    /// deletes nothing), else it is a 4xx problem body. Still never a 5xx, a stack trace or a write outside the ledger.
    /// </summary>
    public static Expectation Mem0(Expectation probe) => probe with
    {
        Why = probe.Why + "; the mem0-compatible API ignores what the platform ignores (2xx or 4xx)",
        Statuses = [200, 201, .. Enumerable.Range(400, 100)],
        AnyBelow500 = false,
        MayWrite = true,
        Check = null,
    };

    /// <summary>A JSON-RPC 2.0 error object (plain JSON, or one server-sent event).</summary>
    public static bool IsJsonRpcError(HostileAnswer answer)
    {
        var text = answer.Text;
        if (answer.Header("Content-Type").StartsWith("text/event-stream", StringComparison.OrdinalIgnoreCase))
        {
            text = string.Concat(text.Split('\n').Where(l => l.StartsWith("data:", StringComparison.Ordinal)).Select(l => l[5..]));
        }
        try
        {
            var root = JsonNode.Parse(text);
            return (string?)root?["jsonrpc"] == "2.0" && root["error"]?["message"] is not null;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    private static Func<HostileAnswer, string?> Empty(string member) => answer =>
        JsonNode.Parse(answer.Body)![member]!.AsArray().Count is var n and > 0 ? $"matched {n} {member}" : null;
}
