using System.Text;
using System.Text.Json.Nodes;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>A field of a sample body: its path (<c>items[0].content</c>) and the JSON kind of its valid value.</summary>
internal sealed record SampleField(string Path, IReadOnlyList<object> Segments, JsonNodeKind Kind, JsonNode Value);

internal enum JsonNodeKind
{
    String,
    Number,
    Bool,
    Array,
    Object,
}

/// <summary>
/// The field names of a valid sample body, and the sample with one field replaced by raw bytes (which
/// may be anything: a token JSON does not have, bytes that are not UTF-8).
/// </summary>
internal static class SampleJson
{
    private const string Marker = "@@HOSTILE@@";

    /// <summary>Fields whose content is free-form JSON: replaced as a whole, never walked into.</summary>
    private static readonly HashSet<string> Opaque = ["metadata", "value"];

    public static bool IsOpaque(string member) => Opaque.Contains(member);

    public static IReadOnlyList<SampleField> Fields(string json)
    {
        var fields = new List<SampleField>();
        Walk(JsonNode.Parse(json)!, "", [], fields);
        return fields;
    }

    private static void Walk(JsonNode node, string path, List<object> segments, List<SampleField> fields)
    {
        if (node is JsonObject obj)
        {
            foreach (var (name, child) in obj)
            {
                var childPath = path.Length == 0 ? name : path + "." + name;
                List<object> childSegments = [.. segments, name];
                fields.Add(new SampleField(childPath, childSegments, KindOf(child!), child!));
                if (!Opaque.Contains(name))
                {
                    Walk(child!, childPath, childSegments, fields);
                }
            }
        }
        else if (node is JsonArray { Count: > 0 } array)
        {
            List<object> childSegments = [.. segments, 0];
            fields.Add(new SampleField(path + "[0]", childSegments, KindOf(array[0]!), array[0]!));
            Walk(array[0]!, path + "[0]", childSegments, fields);
        }
    }

    public static JsonNodeKind KindOf(JsonNode node) => node switch
    {
        JsonObject => JsonNodeKind.Object,
        JsonArray => JsonNodeKind.Array,
        JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.String => JsonNodeKind.String,
        JsonValue v when v.GetValueKind() is System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False => JsonNodeKind.Bool,
        _ => JsonNodeKind.Number,
    };

    /// <summary>The sample with the field at <paramref name="segments"/> replaced by <paramref name="raw"/>, byte for byte.</summary>
    public static byte[] Replace(string json, IReadOnlyList<object> segments, byte[] raw)
    {
        var root = JsonNode.Parse(json)!;
        Set(root, segments, JsonValue.Create(Marker));
        return Splice(root.ToJsonString(), "\"" + Marker + "\"", raw);
    }

    public static byte[] Replace(string json, IReadOnlyList<object> segments, string raw) => Replace(json, segments, Encoding.UTF8.GetBytes(raw));

    /// <summary>The sample with a string field's text replaced by raw bytes between its quotes.</summary>
    public static byte[] ReplaceText(string json, IReadOnlyList<object> segments, byte[] rawInsideQuotes)
    {
        var root = JsonNode.Parse(json)!;
        Set(root, segments, JsonValue.Create(Marker));
        return Splice(root.ToJsonString(), Marker, rawInsideQuotes);
    }

    /// <summary>The sample with the object at <paramref name="segments"/> (empty: the root) given one more member, written raw.</summary>
    public static byte[] AddMember(string json, IReadOnlyList<object> segments, string rawMember)
    {
        var root = JsonNode.Parse(json)!;
        var target = segments.Count == 0 ? root : Get(root, segments);
        ((JsonObject)target).Add(Marker, 0);
        return Splice(root.ToJsonString(), "\"" + Marker + "\":0", Encoding.UTF8.GetBytes(rawMember));
    }

    private static JsonNode Get(JsonNode root, IReadOnlyList<object> segments) =>
        segments.Aggregate(root, (node, segment) => segment is int index ? node[index]! : node[(string)segment]!);

    private static void Set(JsonNode root, IReadOnlyList<object> segments, JsonNode value)
    {
        var parent = Get(root, [.. segments.Take(segments.Count - 1)]);
        if (segments[^1] is int index)
        {
            ((JsonArray)parent)[index] = value;
        }
        else
        {
            ((JsonObject)parent)[(string)segments[^1]] = value;
        }
    }

    private static byte[] Splice(string text, string marker, byte[] raw)
    {
        var at = text.IndexOf(marker, StringComparison.Ordinal);
        var before = Encoding.UTF8.GetBytes(text[..at]);
        var after = Encoding.UTF8.GetBytes(text[(at + marker.Length)..]);
        return [.. before, .. raw, .. after];
    }
}
