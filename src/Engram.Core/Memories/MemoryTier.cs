using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engram.Core.Memories;

/// <summary>How long a memory is meant to live: scratch for one task, one session, or for good.</summary>
[JsonConverter(typeof(MemoryTierJsonConverter))]
public enum MemoryTier
{
    Working,

    ShortTerm,

    LongTerm,
}

/// <summary>
/// A tier is one of its three names, exactly. <see cref="JsonStringEnumConverter"/> also took numbers
/// (99 was echoed back while long_term was stored), the C# names and comma lists
/// ("short_term, long_term" became the undefined value 3), so a response could differ from what was stored.
/// </summary>
public sealed class MemoryTierJsonConverter : JsonConverter<MemoryTier>
{
    public override MemoryTier Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String && MemoryTiers.TryParse(reader.GetString(), out var tier))
        {
            return tier;
        }
        throw new JsonException($"tier must be one of {MemoryTiers.Allowed}");
    }

    public override void Write(Utf8JsonWriter writer, MemoryTier value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToWire());
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
