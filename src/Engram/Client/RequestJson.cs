using System.Text.Json;
using System.Text.Json.Serialization;
using Engram.Core.Common;

namespace Engram.Cli.Client;

/// <summary>
/// JSON for request bodies (no nulls spelled out for unset create fields; absent patch fields are
/// already left out by <see cref="EngramJson"/>) and for reading responses leniently.
/// </summary>
internal static class RequestJson
{
    public static JsonSerializerOptions Options { get; } = new(EngramJson.Options)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>For reading a response into a base type (a memory out of a write's body, which adds seq and duplicate).</summary>
    public static JsonSerializerOptions Lenient { get; } = new(EngramJson.Options)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
    };
}
