using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engram.Core.Common;

/// <summary>
/// The one JSON contract of Engram: snake_case names, UTC timestamps with milliseconds and a Z,
/// unknown and duplicate fields rejected. HTTP, the CLI and the store's history all serialize through these options.
/// </summary>
public static class EngramJson
{
    public static JsonSerializerOptions Options { get; } = Configure(new JsonSerializerOptions());

    /// <summary>Applies Engram's settings to <paramref name="options"/> (used for ASP.NET's own options too).</summary>
    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.DictionaryKeyPolicy = null;
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        // A key given twice is refused like an unknown one (last-wins would hide a client's mistake); this
        // covers JsonElement payloads (metadata, key-value values) at any depth too.
        options.AllowDuplicateProperties = false;
        options.NumberHandling = JsonNumberHandling.Strict;
        options.Encoder = JsonTextEncoder.Instance;
        options.Converters.Add(new UtcTimestampConverter());
        options.Converters.Add(new OptionalConverterFactory());
        options.TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver { Modifiers = { SkipAbsentOptionals } };
        return options;
    }

    /// <summary>An absent <see cref="Optional{T}"/> is left out when writing, so a serialized patch means what it meant.</summary>
    private static void SkipAbsentOptionals(System.Text.Json.Serialization.Metadata.JsonTypeInfo type)
    {
        foreach (var property in type.Properties)
        {
            if (property.PropertyType.IsGenericType && property.PropertyType.GetGenericTypeDefinition() == typeof(Optional<>))
            {
                var hasValue = property.PropertyType.GetProperty(nameof(Optional<int>.HasValue))!;
                property.ShouldSerialize = (_, value) => value is not null && (bool)hasValue.GetValue(value)!;
            }
        }
    }

    public static string FormatTimestamp(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public static bool TryParseTimestamp(string? text, out DateTimeOffset value) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value);

    private sealed class UtcTimestampConverter : JsonConverter<DateTimeOffset>
    {
        public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.String || !TryParseTimestamp(reader.GetString(), out var value))
            {
                throw new JsonException("expected an ISO 8601 timestamp such as \"2026-01-31T12:00:00Z\"");
            }
            // Storage keeps milliseconds; drop finer ticks now so what we echo back is what we keep.
            return DateTimeOffset.FromUnixTimeMilliseconds(value.ToUnixTimeMilliseconds());
        }

        public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
            writer.WriteStringValue(FormatTimestamp(value));
    }
}
