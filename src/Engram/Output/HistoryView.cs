using System.Text.Json;
using Engram.Core.Memories;

namespace Engram.Cli.Output;

/// <summary>A memory's history, oldest first: one line per event, then what an update changed.</summary>
internal static class HistoryView
{
    private const int ValueWidth = 50;

    public static void Write(TextWriter output, IReadOnlyList<HistoryEntry> entries)
    {
        foreach (var entry in entries)
        {
            output.WriteLine($"{Text.Timestamp(entry.At)}  {entry.Event,-8}  v{entry.Version}  by {entry.Actor}  (seq {entry.Seq})");
            if (entry.Event == HistoryEvents.Updated && entry.Changes.ValueKind == JsonValueKind.Object)
            {
                foreach (var change in entry.Changes.EnumerateObject())
                {
                    output.WriteLine($"    {change.Name}: {Value(change.Value, "from")} -> {Value(change.Value, "to")}");
                }
            }
            else if (entry.Event == HistoryEvents.Created && entry.Changes.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
            {
                output.WriteLine("    " + Text.OneLine(content.GetString()!, ValueWidth + 20));
            }
        }
    }

    private static string Value(JsonElement change, string side)
    {
        if (!change.TryGetProperty(side, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return "(none)";
        }
        var text = value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText();
        return Text.OneLine(text, ValueWidth);
    }
}
