using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engram.Server.Http;

/// <summary>
/// Reads request strings, refusing one whose JSON text is longer than any field accepts before it is
/// turned into a .NET string: an over-long content is refused while parsing, without the copy (and the
/// unescaping buffer, rented from the shared pool) that checking it afterwards would cost.
/// </summary>
internal sealed class BoundedStringConverter(long maxChars) : JsonConverter<string>
{
    /// <summary>
    /// A character may arrive as a 6-byte \uXXXX escape, or two of them for one outside the Basic Multilingual Plane
    /// (limits count characters as code points, <see cref="Core.Common.UnicodeText.CountCharacters"/>).
    /// </summary>
    private const int MaxBytesPerChar = 12;

    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException(); // the serializer words it: "could not be converted", with the path
        }
        var rawLength = reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length;
        if (rawLength > maxChars * MaxBytesPerChar)
        {
            throw new StringTooLongException(maxChars);
        }
        return reader.GetString();
    }

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
}

/// <summary>A request string longer than any field accepts; <see cref="JsonErrors"/> names the field.</summary>
internal sealed class StringTooLongException(long maxChars) : JsonException($"longer than {maxChars} characters")
{
    public long MaxChars { get; } = maxChars;
}
