using System.Text.Json;

namespace Engram.Core.Llm;

/// <summary>
/// Finds the JSON in a model's answer, whatever the model wrapped it in: reasoning in <c>&lt;think&gt;…&lt;/think&gt;</c>
/// (or an unclosed one), Markdown code fences, prose before or after, a trailing comma. Returns the first complete
/// JSON object or array that parses, else null with the reason.
/// </summary>
public static class LenientJson
{
    private static readonly JsonDocumentOptions Tolerant = new() { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip, MaxDepth = 64 };

    /// <summary>
    /// Brackets tried as the start of the JSON, per candidate text. Each try scans to its closing bracket, so trying
    /// every one was quadratic: an answer of 30,000 nested brackets took seconds, one of a few hundred thousand, minutes
    /// of a core. The JSON asked for comes first or after a little prose.
    /// </summary>
    internal const int MaxStarts = 64;

    public static JsonElement? Extract(string? answer, out string? problem)
    {
        problem = null;
        if (string.IsNullOrWhiteSpace(answer))
        {
            problem = "the answer was empty";
            return null;
        }
        var text = StripThinking(answer);
        var fenced = FencedBlock(text);
        foreach (var candidate in fenced is null ? [text] : new[] { fenced, text })
        {
            var tried = 0;
            for (var start = NextOpening(candidate, 0); start >= 0; start = NextOpening(candidate, start + 1))
            {
                if (++tried > MaxStarts)
                {
                    problem = $"no JSON object parses among the first {MaxStarts} brackets of the answer";
                    break;
                }
                var end = MatchingClose(candidate, start);
                if (end < 0)
                {
                    problem = "the JSON in the answer is cut off (no closing bracket)";
                    break;
                }
                try
                {
                    using var document = JsonDocument.Parse(candidate.AsMemory(start, end - start + 1), Tolerant);
                    problem = null;
                    // Written out again: the raw text may hold what only this tolerant parse accepts (trailing commas, comments).
                    return JsonSerializer.SerializeToElement(document.RootElement);
                }
                catch (JsonException ex)
                {
                    problem = "the answer's JSON does not parse: " + ex.Message;
                }
            }
        }
        problem ??= "the answer holds no JSON object";
        return null;
    }

    /// <summary>Drops reasoning blocks; an unclosed <c>&lt;think&gt;</c> (the model ran out of tokens) drops everything after it.</summary>
    internal static string StripThinking(string text)
    {
        while (true)
        {
            var open = text.IndexOf("<think>", StringComparison.OrdinalIgnoreCase);
            if (open < 0)
            {
                return text;
            }
            var close = text.IndexOf("</think>", open, StringComparison.OrdinalIgnoreCase);
            text = close < 0 ? text[..open] : string.Concat(text.AsSpan(0, open), text.AsSpan(close + "</think>".Length));
        }
    }

    /// <summary>The body of the first Markdown code fence (``` or ```json), if there is one.</summary>
    internal static string? FencedBlock(string text)
    {
        var open = text.IndexOf("```", StringComparison.Ordinal);
        if (open < 0)
        {
            return null;
        }
        var bodyStart = text.IndexOf('\n', open);
        if (bodyStart < 0)
        {
            return null;
        }
        var close = text.IndexOf("```", bodyStart, StringComparison.Ordinal);
        return close < 0 ? text[(bodyStart + 1)..] : text[(bodyStart + 1)..close];
    }

    private static int NextOpening(string text, int from)
    {
        var index = text.AsSpan(from).IndexOfAny('{', '[');
        return index < 0 ? -1 : from + index;
    }

    /// <summary>The index of the bracket that closes the one at <paramref name="start"/>, skipping strings; -1 when none does.</summary>
    private static int MatchingClose(string text, int start)
    {
        var depth = 0;
        var inString = false;
        for (var i = start; i < text.Length; i++)
        {
            var c = text[i];
            if (inString)
            {
                if (c == '\\')
                {
                    i++;
                }
                else if (c == '"')
                {
                    inString = false;
                }
                continue;
            }
            switch (c)
            {
                case '"':
                    inString = true;
                    break;
                case '{' or '[':
                    depth++;
                    break;
                case '}' or ']':
                    if (--depth == 0)
                    {
                        return i;
                    }
                    break;
            }
        }
        return -1;
    }
}
