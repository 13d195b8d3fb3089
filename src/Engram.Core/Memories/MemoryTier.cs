using System.Text.Json.Serialization;

namespace Engram.Core.Memories;

/// <summary>How long a memory is meant to live: scratch for one task, one session, or for good.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<MemoryTier>))]
public enum MemoryTier
{
    [JsonStringEnumMemberName("working")]
    Working,

    [JsonStringEnumMemberName("short_term")]
    ShortTerm,

    [JsonStringEnumMemberName("long_term")]
    LongTerm,
}

public static class MemoryTiers
{
    public static string ToWire(this MemoryTier tier) => tier switch
    {
        MemoryTier.Working => "working",
        MemoryTier.ShortTerm => "short_term",
        _ => "long_term",
    };

    public static bool TryParse(string? text, out MemoryTier tier)
    {
        switch (text)
        {
            case "working":
                tier = MemoryTier.Working;
                return true;
            case "short_term":
                tier = MemoryTier.ShortTerm;
                return true;
            case "long_term":
                tier = MemoryTier.LongTerm;
                return true;
            default:
                tier = default;
                return false;
        }
    }

    public const string Allowed = "working, short_term, long_term";
}
