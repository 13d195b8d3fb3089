using System.Text.Json;
using Engram.Core.Memories;

namespace Engram.Cli.Output;

/// <summary>One memory in full, as <c>get</c>, <c>add</c> and <c>update</c> show it: labelled fields, then the whole content.</summary>
internal static class MemoryView
{
    public static void Write(TextWriter output, Memory memory)
    {
        void Field(string label, string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                output.WriteLine($"{label + ":",-12} {value}");
            }
        }

        Field("id", memory.Id);
        Field("type", memory.Type);
        Field("tier", memory.Tier.ToWire());
        Field("importance", Text.Number(memory.Importance));
        Field("valence", memory.Valence is { } valence ? Text.Number(valence) : null);
        Field("tags", memory.Tags.Count > 0 ? string.Join(", ", memory.Tags) : null);
        // Names may contain commas, so they are separated by semicolons.
        Field("entities", memory.Entities.Count > 0 ? string.Join("; ", memory.Entities) : null);
        Field("metadata", memory.Metadata.ValueKind == JsonValueKind.Object && memory.Metadata.EnumerateObject().Any() ? memory.Metadata.GetRawText() : null);
        Field("scope", Scope(memory));
        Field("source", memory.Source);
        Field("created", Text.Timestamp(memory.CreatedAt));
        Field("updated", Text.Timestamp(memory.UpdatedAt));
        Field("expires", memory.ExpiresAt is null ? null : Text.Timestamp(memory.ExpiresAt));
        Field("valid", memory.ValidFrom is null && memory.ValidTo is null ? null : $"{Text.Timestamp(memory.ValidFrom)} .. {Text.Timestamp(memory.ValidTo)}");
        Field("version", Text.Number(memory.Version));
        output.WriteLine();
        foreach (var line in memory.Content.Split('\n'))
        {
            output.WriteLine("  " + line.TrimEnd('\r'));
        }
    }

    public static string? Scope(Memory memory)
    {
        var parts = new List<string>(4);
        if (memory.UserId is not null)
        {
            parts.Add("user=" + memory.UserId);
        }
        if (memory.AgentId is not null)
        {
            parts.Add("agent=" + memory.AgentId);
        }
        if (memory.SessionId is not null)
        {
            parts.Add("session=" + memory.SessionId);
        }
        if (memory.Namespace is not null)
        {
            parts.Add("namespace=" + memory.Namespace);
        }
        return parts.Count > 0 ? string.Join(' ', parts) : null;
    }
}
