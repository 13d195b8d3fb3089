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
            return field == name ? $"duplicate key '{name}'" : $"{field}: duplicate key '{name}'";
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
            return field switch
            {
                "tier" => $"tier must be one of {MemoryTiers.Allowed}",
                "content" or "type" or "user_id" or "agent_id" or "session_id" or "namespace" or "source" => $"{field} must be a string",
                "importance" or "valence" => $"{field} must be a number",
                "ttl_seconds" => "ttl_seconds must be a whole number of seconds",
                "tags" => "tags must be an array of strings",
                "entities" => "entities must be an array of strings",
                "items" => "items must be an array of memory objects",
                _ => $"{field} has the wrong type",
            };
        }
        if (exception.InnerException is not null || path is null or "$")
        {
            return $"malformed JSON: {Strip(message)}" + (exception.LineNumber is { } line ? $" (line {line + 1}, byte {exception.BytePositionInLine + 1})" : "");
        }
        // A converter's own message already names its field ("tier must be one of ...").
        return message.StartsWith(field + " ", StringComparison.Ordinal) ? message : $"{field}: {Strip(message)}";
    }

    private static string? FieldOf(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$")
        {
            return null;
        }
        var last = path.LastIndexOf('.');
        var name = last >= 0 ? path[(last + 1)..] : path;
        var bracket = name.IndexOf('[');
        return bracket > 0 ? name[..bracket] : name;
    }

    private static string Strip(string message) => message.Replace("System.", "", StringComparison.Ordinal).TrimEnd('.');
}
