using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engram.Core.Common;

/// <summary>
/// Writes a JSON value read from the store (a key-value value, memory metadata). Writing a
/// <see cref="JsonElement"/> normally re-encodes its strings, and the writer throws on a lone surrogate;
/// a row stored before the write paths refused them would then fail every read, and a response whose
/// headers were already sent would be cut off. A value that is not valid Unicode is therefore written
/// verbatim, as stored (its bytes are JSON: they were parsed when it was written). Valid values take the
/// usual path, so output escaping stays the same everywhere.
/// </summary>
public sealed class StoredJsonConverter : JsonConverter<JsonElement>
{
    public override JsonElement Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        JsonSerializer.Deserialize<JsonElement>(ref reader, options);

    public override void Write(Utf8JsonWriter writer, JsonElement value, JsonSerializerOptions options)
    {
        if (value.ValueKind is not (JsonValueKind.String or JsonValueKind.Object or JsonValueKind.Array))
        {
            value.WriteTo(writer); // numbers, true, false, null: nothing to re-encode
            return;
        }
        var raw = UnicodeText.RawUtf8(value);
        if (UnicodeText.IsValidJson(raw))
        {
            value.WriteTo(writer);
        }
        else
        {
            writer.WriteRawValue(raw, skipInputValidation: true);
        }
    }
}
