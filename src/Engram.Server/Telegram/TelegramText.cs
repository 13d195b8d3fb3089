using System.Globalization;

namespace Engram.Server.Telegram;

/// <summary>Text for Telegram: messages split under its 4,096-character limit, at a line break or a space where one is near.</summary>
internal static class TelegramText
{
    /// <summary>The longest message text Telegram takes.</summary>
    public const int MaxMessageLength = 4096;

    /// <summary>The most messages one reply is sent as: a model answer of a megabyte would otherwise be hundreds of messages, sent while every other user waits.</summary>
    public const int MaxReplyParts = 4;

    /// <summary>
    /// A reply as the messages to send: <see cref="Split"/>, without parts that hold nothing (Telegram refuses an empty
    /// text, and the reply was then lost whole), and at most <see cref="MaxReplyParts"/>, the last saying what was left out.
    /// </summary>
    public static IReadOnlyList<string> Reply(string text)
    {
        var parts = Split(text).Where(p => !string.IsNullOrWhiteSpace(p)).ToList();
        if (parts.Count > MaxReplyParts)
        {
            var note = string.Create(CultureInfo.InvariantCulture, $"\n\n(cut: the reply is {text.Length:N0} characters; these are the first)");
            parts = [.. parts.Take(MaxReplyParts)];
            var last = parts[^1];
            if (last.Length + note.Length > MaxMessageLength)
            {
                var cut = MaxMessageLength - note.Length;
                last = last[..(char.IsHighSurrogate(last[cut - 1]) ? cut - 1 : cut)];
            }
            parts[^1] = last + note;
        }
        return parts.Count == 0 ? ["(nothing to say)"] : parts;
    }

    public static IReadOnlyList<string> Split(string text, int max = MaxMessageLength)
    {
        var parts = new List<string>();
        var rest = text.AsSpan();
        while (rest.Length > max)
        {
            var window = rest[..max];
            var cut = window.LastIndexOf('\n');
            if (cut < max / 2)
            {
                cut = window.LastIndexOf(' ');
            }
            if (cut < max / 2)
            {
                cut = max;
                if (char.IsHighSurrogate(rest[cut - 1]))
                {
                    cut--; // never split a surrogate pair
                }
            }
            parts.Add(rest[..cut].TrimEnd().ToString());
            rest = rest[cut..].TrimStart();
        }
        if (rest.Length > 0 || parts.Count == 0)
        {
            parts.Add(rest.ToString());
        }
        return parts;
    }

    /// <summary>At most <paramref name="max"/> characters of <paramref name="text"/> on one line, with an ellipsis when cut.</summary>
    public static string Shorten(string text, int max)
    {
        var line = text.ReplaceLineEndings(" ").Trim();
        if (line.Length <= max)
        {
            return line;
        }
        var cut = char.IsHighSurrogate(line[max - 2]) ? max - 2 : max - 1;
        return line[..cut] + "…";
    }
}
