namespace Engram.Server.Telegram;

/// <summary>Text for Telegram: messages split under its 4,096-character limit, at a line break or a space where one is near.</summary>
internal static class TelegramText
{
    /// <summary>The longest message text Telegram takes.</summary>
    public const int MaxMessageLength = 4096;

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
