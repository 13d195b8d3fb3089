using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Engram.Core.Common;

namespace Engram.Cli.Client;

/// <summary>
/// JSON for request bodies and for reading responses leniently. Engram's own options write an absent
/// <see cref="Optional{T}"/> as <c>null</c>, which in a PATCH body means "clear the field"; requests
/// must leave absent fields out instead, and need not spell out nulls for unset create fields either.
/// </summary>
internal static class RequestJson
{
    public static JsonSerializerOptions Options { get; } = new(EngramJson.Options)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { SkipAbsentOptionals } },
    };

    /// <summary>For reading a response into a base type (a memory out of a write's body, which adds seq and duplicate).</summary>
    public static JsonSerializerOptions Lenient { get; } = new(EngramJson.Options)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
    };

    private static void SkipAbsentOptionals(JsonTypeInfo type)
    {
        foreach (var property in type.Properties)
        {
            if (property.PropertyType.IsGenericType && property.PropertyType.GetGenericTypeDefinition() == typeof(Optional<>))
            {
                var hasValue = property.PropertyType.GetProperty(nameof(Optional<object>.HasValue))!;
                property.ShouldSerialize = (_, value) => value is not null && (bool)hasValue.GetValue(value)!;
            }
        }
    }
}
