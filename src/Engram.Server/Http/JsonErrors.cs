using System.Text.Json;
using Engram.Core.Memories;

namespace Engram.Server.Http;

/// <summary>Turns System.Text.Json's exceptions into messages that name the field and say what is wrong, without .NET type names.</summary>
internal static class JsonErrors
{
    public static string Describe(JsonException exception, out string? field)
    {
        var path = exception.Path;
        field = FieldOf(path);
        var message = exception.Message;
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut >= 0)
        {
            message = message[..cut];
        }

        if (exception is StringTooLongException tooLong)
        {
            return $"{field ?? "a string"} is longer than {tooLong.MaxChars} characters, the most any field takes";
        }
        if (message.StartsWith("Duplicate property '", StringComparison.Ordinal))
        {
            var start = message.IndexOf('\'');
            var end = message.IndexOf('\'', start + 1);
            var name = end > start ? message[(start + 1)..end] : "?";
            field ??= name;
            return field == name || field.EndsWith("." + name, StringComparison.Ordinal) ? $"duplicate key '{field}'" : $"{field}: duplicate key '{name}'";
        }
        if (exception.InnerException is InvalidOperationException { Message: var inner } && inner.Contains("UTF-", StringComparison.Ordinal))
        {
            // Utf8JsonReader refuses a lone surrogate escape (\ud800) or invalid UTF-8 when it reads a string.
            return $"{field ?? "the body"} is not valid Unicode: it holds a lone surrogate (such as \\ud800 without its pair) or invalid UTF-8";
        }
        if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
        {
            var start = message.IndexOf('\'');
            var end = start >= 0 ? message.IndexOf('\'', start + 1) : -1;
            var name = end > start ? message[(start + 1)..end] : field ?? "?";
            field = name;
            return $"unknown field '{name}'";
        }
        if (message.Contains("could not be converted", StringComparison.Ordinal))
        {
            if (field is null)
            {
                field = "body";
                return "the body must be a JSON object";
            }
            // A top-level field of a memory says what it takes; a nested one (filters.type, an array) what its type is.
            return field switch
            {
                "tier" => $"tier must be one of {MemoryTiers.Allowed}",
                "content" or "type" or "user_id" or "agent_id" or "session_id" or "namespace" or "source" => $"{field} must be a string",
                "importance" or "valence" => $"{field} must be a number",
                "ttl_seconds" => "ttl_seconds must be a whole number of seconds",
                "tags" => "tags must be an array of strings",
                "entities" => "entities must be an array of strings",
                "items" => "items must be an array of memory objects",
                _ => Expected(message) is { } expected ? $"{field} must be {expected}" : $"{field} has the wrong type",
            };
        }
        if (exception.InnerException is not null || path is null or "$")
        {
            return $"malformed JSON: {Strip(message)}" + (exception.LineNumber is { } line ? $" (line {line + 1}, byte {exception.BytePositionInLine + 1})" : "");
        }
        // A converter's own message already names its field ("tier must be one of ..."), by its name, not its path.
        var named = field ?? "body";
        var last = named[(named.LastIndexOf('.') + 1)..];
        return message.StartsWith(named + " ", StringComparison.Ordinal) ? message
            : message.StartsWith(last + " ", StringComparison.Ordinal) ? named + message[last.Length..]
            : $"{named}: {Strip(message)}";
    }

    /// <summary>The field's path without the root: <c>filters.type</c>, <c>items[2].content</c>.</summary>
    private static string? FieldOf(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$")
        {
            return null;
        }
        var field = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
        // The reader's path ends at the array it was reading when the error is an item's: "tags[1]" names the array.
        var bracket = field.LastIndexOf('[');
        return bracket > 0 && field.EndsWith(']') && field.IndexOf('.', bracket) < 0 ? field[..bracket] : field;
    }

    /// <summary>What the .NET type named in a conversion error takes, in words; null for a type without a plain description.</summary>
    private static string? Expected(string message)
    {
        var at = message.IndexOf("converted to ", StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }
        var type = message[(at + "converted to ".Length)..].TrimEnd('.');
        return type switch
        {
            _ when type.Contains("[System.String]", StringComparison.Ordinal) || type == "System.String[]" => "an array of strings",
            "System.String" => "a string",
            _ when type.Contains("System.Int64", StringComparison.Ordinal) || type.Contains("System.Int32", StringComparison.Ordinal) => "a whole number",
            _ when type.Contains("System.Double", StringComparison.Ordinal) || type.Contains("System.Single", StringComparison.Ordinal) => "a number",
            _ when type.Contains("System.Boolean", StringComparison.Ordinal) => "true or false",
            _ when type.Contains("System.DateTimeOffset", StringComparison.Ordinal) => "a date and time (ISO 8601)",
            _ => null,
        };
    }

    private static string Strip(string message) => message.Replace("System.", "", StringComparison.Ordinal).TrimEnd('.');
}
