using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Cli.Commands;

/// <summary>
/// Turns flag text into the Core's input types. Anything wrong is a <see cref="ValidationException"/>
/// raised before the backend is called, so both backends report it identically.
/// </summary>
internal static class CliInput
{
    /// <summary>The content argument; <c>-</c> reads it from stdin (one trailing line break dropped, as a shell would).</summary>
    public static string Content(string value, TextReader stdin)
    {
        if (value != "-")
        {
            return value;
        }
        var text = stdin.ReadToEnd();
        if (text.EndsWith("\r\n", StringComparison.Ordinal))
        {
            return text[..^2];
        }
        return text.EndsWith('\n') ? text[..^1] : text;
    }

    /// <summary>
    /// A memory id as typed. Ids are ULIDs, which Crockford base32 makes case-insensitive, so lower case
    /// is accepted; so is the UUID form the mem0-compatible API shows (the same 128 bits), turned into the ULID by
    /// <see cref="Ulid.FromAny"/> as the REST routes turn it. Anything else cannot name a memory; refusing it here also
    /// keeps text such as "a/b" or ".." out of REST paths, where the server would see a different id (or route).
    /// </summary>
    public static string MemoryId(string text)
    {
        var id = Ulid.FromAny(text.Trim()).ToUpperInvariant();
        return Ulid.IsValid(id)
            ? id
            : throw new ValidationException("id", $"'{text}' is not a memory id: ids are 26-character ULIDs such as 01ARZ3NDEKTSV4RRFFQ69G5FAV " +
                "(or the same id as a UUID, such as 01a24fc0-9a2f-6646-3996-d876214b1e3f)");
    }

    public static JsonElement Metadata(string json)
    {
        if (json.Trim().Length == 0)
        {
            throw new ValidationException("metadata", "--metadata is empty; give a JSON object such as '{\"project\":\"x\"}'");
        }
        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            var where = ex.LineNumber is > 0 ? $"line {ex.LineNumber + 1}, character {ex.BytePositionInLine + 1}" : $"character {ex.BytePositionInLine + 1}";
            throw new ValidationException("metadata",
                $"--metadata is not valid JSON (at {where}: {JsonProblem(ex.Message)}); give a JSON object such as '{{\"project\":\"x\"}}'");
        }
    }

    /// <summary>
    /// What the JSON reader found, in its words but without its internals: the position suffix
    /// ("LineNumber: 0 | BytePositionInLine: 1", given above in words) and advice about reader
    /// options that are not the user's to change. E.g. "'o' is an invalid start of a property name. Expected a '"'".
    /// </summary>
    private static string JsonProblem(string message)
    {
        if (message.Contains("trailing comma", StringComparison.OrdinalIgnoreCase))
        {
            return "a trailing comma is not allowed";
        }
        if (message.Contains("depth to be zero", StringComparison.Ordinal))
        {
            return "the JSON ends before every object and array is closed";
        }
        var text = message;
        foreach (var marker in new[] { " LineNumber:", " Path:" })
        {
            var at = text.IndexOf(marker, StringComparison.Ordinal);
            if (at >= 0)
            {
                text = text[..at];
            }
        }
        var sentences = text.Split(". ", StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var kept = sentences.Take(1).Concat(sentences.Skip(1).Where(s => s.StartsWith("Expected", StringComparison.Ordinal)));
        text = string.Join(". ", kept).Trim().TrimEnd('.');
        return text.Length > 0 ? char.ToLowerInvariant(text[0]) + text[1..] : "unexpected input";
    }

    public static MemoryTier Tier(string text) =>
        MemoryTiers.TryParse(text, out var tier)
            ? tier
            : throw new ValidationException("tier", $"tier must be one of {MemoryTiers.Allowed} (got '{text}')");

    /// <summary>Repeated flags, each of which may also be a comma-separated list (as in the REST API's query).</summary>
    public static List<string>? List(string[]? values, string flag)
    {
        if (values is null || values.Length == 0)
        {
            return null;
        }
        var items = values.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
        return items.Count > 0 ? items : throw new ValidationException(flag, $"{flag} must not be empty");
    }

    /// <summary>Repeated flags taken whole (entity names may contain commas); validation is the backend's.</summary>
    public static List<string>? Names(string[]? values) => values is null || values.Length == 0 ? null : [.. values];

    /// <summary>A filter value: an empty one would match nothing in process but be refused over HTTP, so refuse it here for both.</summary>
    public static string? FilterValue(string? value, string flag) =>
        value is null || value.Length > 0 ? value : throw new ValidationException(flag, $"{flag} must not be empty");

    /// <summary>An ISO 8601 timestamp (UTC unless it says otherwise), kept to milliseconds as the store keeps it.</summary>
    public static DateTimeOffset? Timestamp(string? text, string flag)
    {
        if (text is null)
        {
            return null;
        }
        return EngramJson.TryParseTimestamp(text, out var value)
            ? DateTimeOffset.FromUnixTimeMilliseconds(value.ToUnixTimeMilliseconds())
            : throw new ValidationException(flag, $"{flag} must be an ISO 8601 timestamp such as 2026-01-31T12:00:00Z (got '{text}')");
    }

    /// <summary><c>key=value</c> metadata filters; dots in the key reach into nested objects.</summary>
    public static Dictionary<string, string>? MetadataFilters(string[]? pairs)
    {
        if (pairs is null || pairs.Length == 0)
        {
            return null;
        }
        var filters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            var equals = pair.IndexOf('=');
            var key = equals > 0 ? pair[..equals] : "";
            if (key.Length == 0 || key.Split('.').Any(string.IsNullOrEmpty) || equals == pair.Length - 1)
            {
                throw new ValidationException("metadata", $"--metadata must be key=value (nested: outer.inner=value), got '{pair}'");
            }
            filters[key] = pair[(equals + 1)..];
        }
        return filters;
    }
}
