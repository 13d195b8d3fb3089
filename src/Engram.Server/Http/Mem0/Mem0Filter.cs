using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;

namespace Engram.Server.Http.Mem0;

/// <summary>
/// mem0's <c>filters</c>: a JSON object whose keys are fields (ANDed), or <c>AND</c>/<c>OR</c>/<c>NOT</c> over
/// nested filters; a field's value is a plain value (equality), <c>"*"</c> (any non-null value) or an object of
/// operators (<c>eq ne gt gte lt lte in nin contains icontains</c>; <c>in</c>/<c>nin</c> take a list or one value). Parsed once into a predicate over Engram's
/// <see cref="Memory"/>; the AND of plain scope equalities also becomes Engram's own filter (<see cref="Pushdown"/>),
/// so the store and the indexes narrow first and the predicate decides the rest.
/// </summary>
internal abstract record Mem0Filter
{
    public abstract bool Matches(Memory memory);

    public static Mem0Filter All { get; } = new AndFilter([]);

    private static readonly HashSet<string> Operators = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains"];

    /// <summary>The filter of a request: <paramref name="filters"/> ANDed with the top-level ids older clients send.</summary>
    public static Mem0Filter Parse(JsonNode? filters, IEnumerable<KeyValuePair<string, string>> topLevel)
    {
        var parts = new List<Mem0Filter>();
        foreach (var (field, value) in topLevel)
        {
            parts.Add(value == "*" ? new Condition(field, "exists", null) : new Condition(field, "eq", JsonValue.Create(value)));
        }
        if (filters is not null)
        {
            parts.Add(ParseNode(filters, "filters"));
        }
        return parts.Count == 1 ? parts[0] : new AndFilter(parts);
    }

    private static Mem0Filter ParseNode(JsonNode node, string path)
    {
        if (node is JsonArray array)
        {
            return new AndFilter([.. array.Select((n, i) => n is null ? All : ParseNode(n, $"{path}[{i}]"))]);
        }
        if (node is not JsonObject obj)
        {
            throw new ValidationException(path, $"{path} must be an object of fields, AND, OR or NOT");
        }
        var parts = new List<Mem0Filter>();
        foreach (var (key, value) in obj)
        {
            switch (key.ToUpperInvariant())
            {
                case "AND":
                    parts.Add(value is null ? All : ParseNode(value, key));
                    continue;
                case "OR":
                    if (value is not JsonArray branches)
                    {
                        throw new ValidationException(key, "OR takes an array of filters");
                    }
                    parts.Add(new OrFilter([.. branches.Select((n, i) => n is null ? All : ParseNode(n, $"OR[{i}]"))]));
                    continue;
                case "NOT":
                    parts.Add(new NotFilter(value is null ? All : ParseNode(value, key)));
                    continue;
            }
            if (Canonical(key) == "metadata" && value is JsonObject metadata)
            {
                foreach (var (name, inner) in metadata)
                {
                    parts.Add(FieldFilter("metadata." + name, inner));
                }
                continue;
            }
            parts.Add(FieldFilter(Canonical(key), value));
        }
        return parts.Count == 1 ? parts[0] : new AndFilter(parts);
    }

    private static Mem0Filter FieldFilter(string field, JsonNode? value)
    {
        if (value is JsonValue v && v.TryGetValue<string>(out var text) && text == "*")
        {
            return new Condition(field, "exists", null);
        }
        if (value is JsonObject ops && ops.Count > 0 && ops.All(o => Operators.Contains(o.Key)))
        {
            var parts = ops.Select(o => (Mem0Filter)new Condition(field, o.Key, o.Value).Checked()).ToList();
            return parts.Count == 1 ? parts[0] : new AndFilter(parts);
        }
        if (value is JsonObject other && field != "metadata" && !field.StartsWith("metadata.", StringComparison.Ordinal))
        {
            var unknown = other.Select(o => o.Key).FirstOrDefault(k => !Operators.Contains(k)) ?? "";
            throw new ValidationException(field, $"unknown operator '{unknown}' on {field}: use eq, ne, gt, gte, lt, lte, in, nin, contains or icontains");
        }
        return new Condition(field, "eq", value).Checked();
    }

    /// <summary>A field's canonical name: snake_case and camelCase both accepted.</summary>
    public static string Canonical(string key) => key switch
    {
        "userId" => "user_id",
        "agentId" => "agent_id",
        "runId" => "run_id",
        "appId" => "app_id",
        "memoryId" or "memory_id" or "memoryIds" or "memory_ids" or "ids" => "id",
        "createdAt" => "created_at",
        "updatedAt" => "updated_at",
        _ => key,
    };

    /// <summary>
    /// Engram's own filter for the plain equalities on scope fields this filter ANDs at its top, and whether
    /// that filter alone is exact (nothing else to check afterwards).
    /// </summary>
    public (MemoryFilter Filter, bool Exact) Pushdown()
    {
        var conjuncts = this is AndFilter and ? and.Parts : [this];
        var filter = new MemoryFilter();
        var exact = true;
        foreach (var part in conjuncts)
        {
            if (part is Condition { Op: "eq", Value: JsonValue v } c && v.TryGetValue<string>(out var text))
            {
                MemoryFilter? next = c.Field switch
                {
                    "user_id" when filter.UserId is null => filter with { UserId = text },
                    "agent_id" when filter.AgentId is null => filter with { AgentId = text },
                    "run_id" when filter.SessionId is null => filter with { SessionId = text },
                    "app_id" when filter.Namespace is null => filter with { Namespace = text },
                    _ => null,
                };
                if (next is not null)
                {
                    filter = next;
                    continue;
                }
            }
            if (part is AndFilter { Parts.Count: 0 })
            {
                continue;
            }
            exact = false;
        }
        return (filter, exact);
    }

    public static SearchFilters ToSearch(MemoryFilter f) => new()
    {
        UserId = f.UserId,
        AgentId = f.AgentId,
        SessionId = f.SessionId,
        Namespace = f.Namespace,
    };
}

internal sealed record AndFilter(IReadOnlyList<Mem0Filter> Parts) : Mem0Filter
{
    public override bool Matches(Memory memory) => Parts.All(p => p.Matches(memory));
}

internal sealed record OrFilter(IReadOnlyList<Mem0Filter> Parts) : Mem0Filter
{
    public override bool Matches(Memory memory) => Parts.Any(p => p.Matches(memory));
}

internal sealed record NotFilter(Mem0Filter Inner) : Mem0Filter
{
    public override bool Matches(Memory memory) => !Inner.Matches(memory);
}

/// <summary>One comparison of a field of the memory with a value of the filter.</summary>
internal sealed record Condition(string Field, string Op, JsonNode? Value) : Mem0Filter
{
    public override bool Matches(Memory memory)
    {
        var actual = Read(memory);
        return Op switch
        {
            "exists" => actual.Any(a => a is not null),
            "eq" => actual.Any(a => Equal(a, Value)),
            "ne" => !actual.Any(a => Equal(a, Value)),
            "in" => Values().Any(v => actual.Any(a => Equal(a, v))),
            "nin" => !Values().Any(v => actual.Any(a => Equal(a, v))),
            "gt" => actual.Any(a => Compare(a, Value) > 0),
            "gte" => actual.Any(a => Compare(a, Value) >= 0),
            "lt" => actual.Any(a => Compare(a, Value) is < 0),
            "lte" => actual.Any(a => Compare(a, Value) is <= 0),
            "contains" => actual.Any(a => Text(a) is { } t && Text(Value) is { } s && t.Contains(s, StringComparison.Ordinal)),
            "icontains" => actual.Any(a => Text(a) is { } t && Text(Value) is { } s && t.Contains(s, StringComparison.OrdinalIgnoreCase)),
            _ => false,
        };
    }

    /// <summary>
    /// This condition, refused (400 naming the field) when it compares a date field with something that is not a date:
    /// such a value matched nothing, and a typo answered 200 with no results as if nothing had been found.
    /// </summary>
    public Condition Checked()
    {
        if (Field is not ("created_at" or "updated_at") || Op == "exists")
        {
            return this;
        }
        foreach (var value in Op is "in" or "nin" ? Values() : [Value])
        {
            if (Time(value) is null)
            {
                var given = value?.ToJsonString() ?? "null";
                throw new ValidationException(Field, $"{Field} takes a date: ISO 8601 (2024-05-01 or 2024-05-01T12:00:00Z) or Unix seconds " +
                    $"(got {(given.Length > 40 ? given[..40] + "…" : given)} in {Op})");
            }
        }
        return this;
    }

    /// <summary>
    /// The list an <c>in</c>/<c>nin</c> compares with; a single value is taken as a one-item list. The value stays
    /// where it is in the request's tree (a node has one parent: adding it to a new array would throw).
    /// </summary>
    private IEnumerable<JsonNode?> Values() => Value is JsonArray array ? array : Enumerable.Repeat(Value, 1);

    /// <summary>The field's value(s) in the memory: one for a scalar field, each element for a list (categories).</summary>
    private IReadOnlyList<object?> Read(Memory m)
    {
        switch (Field)
        {
            case "user_id": return [m.UserId];
            case "agent_id": return [m.AgentId];
            case "run_id": return [m.SessionId];
            case "app_id": return [m.Namespace];
            case "id": return [m.Id];
            case "memory": return [m.Content];
            case "hash": return [m.ContentHash];
            case "created_at": return [m.CreatedAt];
            case "updated_at": return [m.UpdatedAt];
            case "categories" or "tags": return [.. m.Tags];
            case "source": return [m.Source];
            case "type": return [m.Type];
        }
        if (Field.StartsWith("metadata.", StringComparison.Ordinal))
        {
            var name = Field["metadata.".Length..];
            return m.Metadata.ValueKind == JsonValueKind.Object && m.Metadata.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
                ? [value]
                : [null];
        }
        // A platform-only field (keywords, categories the platform assigns, ...): nothing in Engram to compare, so it does not narrow.
        return Op is "ne" or "nin" ? [] : [Unknown.Value];
    }

    private sealed class Unknown
    {
        public static readonly Unknown Value = new();
    }

    private bool Equal(object? actual, JsonNode? expected)
    {
        if (actual is Unknown)
        {
            return true;
        }
        if (actual is null || expected is null)
        {
            return actual is null && expected is null;
        }
        if (Field == "id")
        {
            return Text(expected) is { } id && Ulid.FromAny(id) == (string)actual;
        }
        if (actual is DateTimeOffset)
        {
            return Compare(actual, expected) == 0;
        }
        if (Number(actual) is { } a && Number(expected) is { } b)
        {
            return a == b;
        }
        if (actual is JsonElement { ValueKind: JsonValueKind.True or JsonValueKind.False } flag && expected is JsonValue ev && ev.TryGetValue<bool>(out var wanted))
        {
            return flag.GetBoolean() == wanted;
        }
        return Text(actual) is { } x && Text(expected) is { } y && x == y;
    }

    private static int? Compare(object? actual, JsonNode? expected)
    {
        if (actual is Unknown)
        {
            return 0;
        }
        if (actual is DateTimeOffset at)
        {
            return Time(expected) is { } t ? at.CompareTo(t) : null;
        }
        if (Number(actual) is { } a && Number(expected) is { } b)
        {
            return a.CompareTo(b);
        }
        return Text(actual) is { } x && Text(expected) is { } y ? string.CompareOrdinal(x, y) : null;
    }

    private static DateTimeOffset? Time(JsonNode? node)
    {
        if (node is not JsonValue v)
        {
            return null;
        }
        if (v.TryGetValue<string>(out var text))
        {
            return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed) ? parsed : null;
        }
        return Number(v) is { } seconds && Math.Abs(seconds) < 1e11 ? DateTimeOffset.FromUnixTimeMilliseconds((long)(seconds * 1000)) : null;
    }

    private static double? Number(object? value) => value switch
    {
        JsonElement { ValueKind: JsonValueKind.Number } e => e.GetDouble(),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.GetValue<double>(),
        _ => null,
    };

    private static string? Text(object? value) => value switch
    {
        string s => s,
        JsonElement { ValueKind: JsonValueKind.String } e => e.GetString(),
        JsonElement e when e.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined) => e.GetRawText(),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonNode n => n.ToJsonString(),
        _ => null,
    };
}
