using System.Globalization;
using Engram.Core.Common;

namespace Engram.Cli.Output;

/// <summary>Small formatting helpers shared by the human-readable views.</summary>
internal static class Text
{
    public static string Timestamp(DateTimeOffset? value) => value is { } at ? EngramJson.FormatTimestamp(at) : "-";

    public static string Number(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    public static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>One line of at most <paramref name="width"/> characters: line breaks become spaces, overflow ends in an ellipsis.</summary>
    public static string OneLine(string text, int width)
    {
        var flat = string.Join(' ', text.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return flat.Length <= width ? flat : string.Concat(flat.AsSpan(0, Math.Max(0, width - 1)), "…");
    }

    public static string Bytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.#} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.#} MiB"),
    };
}
