using System.Text;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// Hostile bodies, built from each route's valid sample: broken syntax, the wrong top-level value,
/// nesting past any parser's depth, bytes that are not UTF-8, NUL bytes, lone surrogates, unknown and
/// duplicate fields, every field given every wrong type, hostile numbers and oversized strings and
/// arrays. A new payload is one line in one of the tables below. On a route that reads no body, the
/// body must be ignored: the answer is the route's normal one.
/// </summary>
internal static class BodyPayloads
{
    /// <summary>Whole bodies that are not a valid request anywhere: (name, body from the sample).</summary>
    private static readonly (string Name, Func<string, byte[]> Body)[] Whole =
    [
        ("not JSON", _ => "hello"u8.ToArray()),
        ("trailing comma", s => U(s[..^1] + ",}")),
        ("single quotes", s => U(s.Replace('"', '\''))),
        ("comment", s => U("/* c */" + s)),
        ("truncated at half", s => U(s[..(s.Length / 2)])),
        ("truncated last byte", s => U(s[..^1])),
        ("open string", s => U(s[..(s.IndexOf(':') + 1)] + "\"abc")),
        ("two values", s => U(s + s)),
        ("trailing garbage", s => U(s + "x")),
        ("top-level null", _ => "null"u8.ToArray()),
        ("top-level array", s => U("[" + s + "]")),
        ("top-level number", _ => "42"u8.ToArray()),
        ("top-level string", _ => "\"x\""u8.ToArray()),
        ("top-level true", _ => "true"u8.ToArray()),
        ("white space only", _ => " \r\n\t "u8.ToArray()),
        ("UTF-8 byte order mark", s => [0xEF, 0xBB, 0xBF, .. U(s)]),
        ("UTF-16 body", s => Encoding.Unicode.GetBytes(s)),
        ("10,000 nested arrays", _ => U(new string('[', 10_000) + new string(']', 10_000))),
        ("10,000 nested objects", _ => U(string.Concat(Enumerable.Repeat("{\"a\":", 10_000)) + "1" + new string('}', 10_000))),
        ("raw NUL after the value", s => [.. U(s), 0]),
        ("raw NUL before the value", s => [0, .. U(s)]),
        ("10,000 unknown fields", s => U(s[..^1] + string.Concat(Enumerable.Range(0, 10_000).Select(i => $",\"f{i}\":{i}")) + "}")),
        ("invalid UTF-8 in a member name", s => [.. U(s[..^1] + ",\""), 0xFF, 0xFE, .. U("\":1}")]),
    ];

    /// <summary>Replacements of one field's whole value, raw JSON text: tokens JSON has not, and oversized values.</summary>
    private static readonly (string Name, string Raw)[] AnyField =
    [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("undefined", "undefined"),
        ("hex number", "0x10"),
        ("leading zero", "01"),
        ("leading plus", "+1"),
        ("bare fraction", ".5"),
        ("trailing dot", "1."),
        ("10,000 nested arrays", new string('[', 10_000) + new string(']', 10_000)),
        ("unterminated array", "[1,2"),
        ("unterminated object", "{\"a\":1"),
    ];

    /// <summary>Values of the wrong JSON kind, per kind of the valid value.</summary>
    private static readonly Dictionary<JsonNodeKind, string[]> WrongTypes = new()
    {
        [JsonNodeKind.String] = ["42", "true", "[]", "[\"x\"]", "{}"],
        [JsonNodeKind.Number] = ["\"1\"", "true", "[]", "[1]", "{}"],
        [JsonNodeKind.Bool] = ["\"true\"", "1", "[]", "{}", "\"yes\""],
        [JsonNodeKind.Array] = ["\"x\"", "1", "{}", "true"],
        [JsonNodeKind.Object] = ["\"x\"", "1", "[]", "true"],
    };

    /// <summary>Numbers that fit no field: overflow, JSON's limits and the integer edges.</summary>
    private static readonly (string Name, string Raw)[] Numbers =
    [
        ("1e309", "1e309"),
        ("-1e309", "-1e309"),
        ("1e400", "1e400"),
        ("2^63", "9223372036854775808"),
        ("-2^63-1", "-9223372036854775809"),
        ("2^64", "18446744073709551616"),
        ("100-digit integer", new string('9', 100)),
        ("-1", "-1"),
        ("-0", "-0"),
        ("1e-400", "1e-400"),
        ("2^31", "2147483648"),
        ("fraction for an integer", "1.5"),
    ];

    /// <summary>The text between a string field's quotes, raw bytes: escapes and bytes that are not Unicode text.</summary>
    private static readonly (string Name, byte[] Raw)[] Strings =
    [
        ("lone high surrogate", U("\\ud800")),
        ("lone low surrogate", U("x\\udfffy")),
        ("two high surrogates", U("\\ud800\\ud800")),
        ("reversed pair", U("\\udc00\\ud800")),
        ("raw NUL byte", [(byte)'a', 0, (byte)'b']),
        ("escaped NUL", U("a\\u0000b")),
        ("raw control byte", [(byte)'a', 0x07, (byte)'b']),
        ("raw line feed", U("a\nb")),
        ("invalid UTF-8 C3 28", [0xC3, 0x28]),
        ("invalid UTF-8 FF", [0xFF]),
        ("overlong UTF-8 slash", [0xC0, 0xAF]),
        ("CESU-8 surrogate", [0xED, 0xA0, 0x80]),
        ("UTF-8 above U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
        ("lone continuation byte", [0x80]),
        ("truncated UTF-8", [(byte)'a', 0xE2, 0x82]),
        ("bad escape", U("\\x41")),
        ("short unicode escape", U("\\u12")),
        ("40,000 characters", U(new string('a', 40_000))),
    ];

    public static IEnumerable<Probe> For(RouteSample sample, string target)
    {
        if (sample.Body is null)
        {
            // A route that reads no body: a few of the worst bodies, which it must ignore.
            var ignored = Expectation.AsSample(sample, "a route that reads no body ignores one");
            foreach (var (name, body) in Whole.Take(3).Concat(Whole.Where(w => w.Name.StartsWith("10,000", StringComparison.Ordinal))))
            {
                yield return Make(sample, target, "ignored body", name, body("{\"a\":1}"), ignored);
            }
            yield break;
        }
        var json = sample.Body;
        foreach (var (name, body) in Whole)
        {
            yield return Make(sample, target, "whole body", name, body(json), Exceptions.Body(sample, "whole body", "", name));
        }
        yield return Make(sample, target, "whole body", "empty", [], Exceptions.EmptyBody(sample));
        yield return Make(sample, target, "fields", "unknown field", SampleJson.AddMember(json, [], "\"zz_unknown\":1"), Exceptions.Body(sample, "fields", "", "unknown field"));
        yield return Make(sample, target, "fields", "member name in another case", CaseVariant(json), Expectation.Refused);

        var fields = SampleJson.Fields(json);
        foreach (var field in fields)
        {
            var anyJson = sample.AnyJsonFields.Any(f => field.Path == f || field.Path.EndsWith("." + f, StringComparison.Ordinal));
            var last = field.Segments[^1];
            if (last is string member)
            {
                yield return Make(sample, target, "fields", $"duplicate {field.Path}", Duplicate(json, field, member), Expectation.Refused);
                if (field.Kind == JsonNodeKind.Object && !SampleJson.IsOpaque(member))
                {
                    yield return Make(sample, target, "fields", $"unknown field in {field.Path}", SampleJson.AddMember(json, field.Segments, "\"zz_unknown\":1"),
                        Exceptions.Body(sample, "fields", field.Path, "unknown field"));
                }
            }
            foreach (var (name, raw) in AnyField)
            {
                yield return Make(sample, target, "field syntax", $"{field.Path} = {name}", SampleJson.Replace(json, field.Segments, raw), Exceptions.Body(sample, "field syntax", field.Path, name));
            }
            if (!anyJson)
            {
                foreach (var wrong in WrongTypes[field.Kind])
                {
                    yield return Make(sample, target, "wrong type", $"{field.Path} = {wrong}", SampleJson.Replace(json, field.Segments, wrong),
                        Exceptions.Body(sample, "wrong type", field.Path));
                }
            }
            if (field.Kind == JsonNodeKind.Number)
            {
                foreach (var (name, raw) in Numbers)
                {
                    yield return Make(sample, target, "numbers", $"{field.Path} = {name}", SampleJson.Replace(json, field.Segments, raw),
                        Exceptions.Number(sample, field.Path, name));
                }
            }
            if (field.Kind == JsonNodeKind.String)
            {
                foreach (var (name, raw) in Strings)
                {
                    yield return Make(sample, target, "strings", $"{field.Path}: {name}", SampleJson.ReplaceText(json, field.Segments, raw),
                        Exceptions.Body(sample, "strings", field.Path, name));
                }
            }
            if (field.Kind == JsonNodeKind.Array)
            {
                var element = field.Value.AsArray()[0]!.ToJsonString();
                var many = "[" + string.Join(",", Enumerable.Repeat(element, 10_001)) + "]";
                yield return Make(sample, target, "sizes", $"{field.Path} with 10,001 elements", SampleJson.Replace(json, field.Segments, many), Exceptions.Body(sample, "sizes", field.Path));
            }
        }
    }

    private static Probe Make(RouteSample sample, string target, string payloadClass, string name, byte[] body, Expectation expect) =>
        new(sample.Label, payloadClass, name, new HostileRequest(sample.Method, target, body), expect);

    private static byte[] Duplicate(string json, SampleField field, string member)
    {
        var parent = field.Segments.Take(field.Segments.Count - 1).ToList();
        return SampleJson.AddMember(json, parent, $"\"{member}\":{field.Value.ToJsonString()}");
    }

    /// <summary>The first member name with its first letter upper-cased ("Content"): the contract is snake_case, exactly.</summary>
    private static byte[] CaseVariant(string json)
    {
        var start = json.IndexOf('"') + 1;
        return U(json[..start] + char.ToUpperInvariant(json[start]) + json[(start + 1)..]);
    }

    private static byte[] U(string text) => Encoding.UTF8.GetBytes(text);
}
