using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// FTS5, SQL and glob/LIKE meta-characters where text is legitimately free: a search for <c>NEAR(</c>
/// is a search, a memory may say <c>'; DROP TABLE</c>. These are accepted, and the corpus checks what
/// matters instead: a filter or pattern of meta-characters matches nothing it should not (no LIKE
/// semantics leaking into a GLOB, no SQL or FTS syntax reaching the engine), a bulk delete deletes
/// nothing, and text written comes back exactly as sent (accounted for in the ledger).
/// </summary>
internal static class MetaPayloads
{
    public static readonly string[] Values =
    [
        "\"", "\"\"", "*", "NEAR(", "NEAR(dark mode, 2)", "dark AND OR NOT mode", "^dark", "content:alice", "user_id:seed-alice", "dark*",
        "\"dark mode\"", "+dark -mode", "dark~2", "'; DROP TABLE memories; --", "' OR '1'='1", "\" OR 1=1 --", "--", "/* x */", "1=1",
        "%", "_", "seed%", "seed_1", "seed-_", "%seed%", "[", "[a-z]*", "?", "\\", "\\*", "a)", "(", "{}", "$1", "*:*", "MATCH", "é\u0301", "💥",
    ];

    /// <summary>Meta-characters of GLOB itself: a pattern holding one may legitimately match (it is a pattern).</summary>
    private static bool IsGlob(string value) => value.IndexOfAny(['*', '?', '[', '\\']) >= 0;

    public static IEnumerable<Probe> All()
    {
        foreach (var meta in Values)
        {
            foreach (var probe in For(meta))
            {
                yield return probe;
            }
        }
    }

    private static IEnumerable<Probe> For(string meta)
    {
        var q = Uri.EscapeDataString(meta);
        var js = JsonSerializer.Serialize(meta);
        Probe Make(string method, string pattern, string target, string? body, Expectation expect) =>
            new($"{method} {pattern}", "meta-characters", meta, new HostileRequest(method, target, body is null ? null : Encoding.UTF8.GetBytes(body)), expect);
        var read = Expectation.Only("a search or filter of meta-characters is a search", 200);
        var readOrRefused = Expectation.RefusedOr("meta-characters in a filter: refused, or a filter that matches nothing", 200);

        yield return Make("POST", "/v1/search", "/v1/search", $$"""{"query":{{js}},"k":5}""", read);
        yield return Make("POST", "/v1/search", "/v1/search", "{\"query\":\"dark mode\",\"filters\":{\"user_id\":" + js + "}}", readOrRefused with { Check = Empty("results") });
        yield return Make("POST", "/v1/search", "/v1/search", "{\"query\":\"dark mode\",\"filters\":{\"tags\":[" + js + "],\"metadata\":{\"app\":" + js + "}}}", readOrRefused with { Check = Empty("results") });
        foreach (var filter in new[] { "user_id", "tags", "entity", "metadata.app", "source" })
        {
            yield return Make("GET", "/v1/memories", $"/v1/memories?{filter}={q}", null, readOrRefused with { Check = Empty("items") });
        }
        yield return Make("DELETE", "/v1/memories", $"/v1/memories?user_id={q}&confirm=true", null, readOrRefused with { Check = AtMost("deleted", 0) });
        yield return Make("DELETE", "/v1/memories", $"/v1/memories?namespace={q}&tags={q}&confirm=true", null, readOrRefused with { Check = AtMost("deleted", 0) });
        // Without GLOB's own specials a pattern is a literal key: it matches that key (which the barrage may have written) and nothing else.
        yield return Make("GET", "/v1/kv", $"/v1/kv?pattern={q}", null,
            IsGlob(meta) ? Expectation.RefusedOr("a glob pattern may match keys", 200) : readOrRefused with { Check = OnlyKey(meta) });
        yield return Make("POST", "/v1/kv/cleanup", "/v1/kv/cleanup", $$"""{"pattern":{{JsonSerializer.Serialize("hostile:none:" + meta)}}}""",
            readOrRefused with { Check = AtMost("deleted", 0) });
        if (!IsGlob(meta))
        {
            // LIKE's % and _ (and SQL) must be literal in a GLOB: "seed%" or "seed_1" delete nothing of seed-1, seedX1, seed:a.
            yield return Make("POST", "/v1/kv/cleanup", "/v1/kv/cleanup", $$"""{"pattern":{{js}}}""", readOrRefused with { Check = AtMost("deleted", 1) });
        }
        yield return Make("POST", "/v1/kv/mget", "/v1/kv/mget", $$"""{"keys":[{{js}}]}""", readOrRefused);
        yield return Make("GET", "/v1/graph/search", $"/v1/graph/search?query={q}", null, Expectation.RefusedOr("a graph search of meta-characters is a search", 200));
        yield return Make("GET", "/v1/graph/nodes", $"/v1/graph/nodes?names={q}", null, readOrRefused with { Check = Empty("entities") });

        var written = Expectation.Only("text with meta-characters is text: stored as sent", 200, 201) with { MayWrite = true };
        yield return Make("POST", "/v1/memories", "/v1/memories", "{\"content\":" + JsonSerializer.Serialize("meta " + meta) + ",\"user_id\":\"hostile\",\"metadata\":{\"m\":" + js + "}}",
            written with { Check = Echo("content", "meta " + meta) });
        yield return Make("PUT", "/v1/kv/{key}", "/v1/kv/hostile:meta:" + q, $$"""{"value":{{js}},"ttl_seconds":3600}""", written with { Check = Echo("key", "hostile:meta:" + meta) });
        yield return Make("POST", "/v1/graph/entities", "/v1/graph/entities", $$"""{"entities":[{"name":{{JsonSerializer.Serialize("Hostile " + meta)}},"entity_type":"probe","observations":[{{js}}]}]}""",
            Expectation.RefusedOr("an entity name is any text without control characters", 200) with { MayWrite = true });
    }

    private static Func<HostileAnswer, string?> Empty(string member) => answer =>
        JsonNode.Parse(answer.Body)![member]!.AsArray() is { Count: > 0 } found ? $"matched {found.Count} {member}: {found.ToJsonString()[..Math.Min(200, found.ToJsonString().Length)]}" : null;

    private static Func<HostileAnswer, string?> AtMost(string member, int most) => answer =>
        JsonNode.Parse(answer.Body)![member]!.GetValue<int>() is var n && n > most ? $"{member} {n}" : null;

    private static Func<HostileAnswer, string?> OnlyKey(string key) => answer =>
        JsonNode.Parse(answer.Body)!["items"]!.AsArray().Select(i => (string?)i!["key"]).FirstOrDefault(k => k != key) is { } other ? $"matched the key {other}" : null;

    private static Func<HostileAnswer, string?> Echo(string member, string expected) => answer =>
        (string?)JsonNode.Parse(answer.Body)![member] is var got && got == expected ? null : $"{member} came back as {JsonSerializer.Serialize(got)}, not {JsonSerializer.Serialize(expected)}";
}
