using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engram.Core.Common;

/// <summary>
/// Writes a JSON value read from the store (a key-value value, memory metadata). Writing a
/// <see cref="JsonElement"/> normally re-encodes its strings, and the writer throws on a lone surrogate;
/// a row stored before the write paths refused them would then fail every read, and a response whose
/// headers were already sent would be cut off. A value that is not valid Unicode is therefore written
/// verbatim, as stored (its bytes are JSON: they were parsed when it was written). Valid values take the
/// usual path, so output escaping stays the same everywhere; a value nested too deeply for the writer where it stands is
/// written verbatim as well.
/// </summary>
public sealed class StoredJsonConverter : JsonConverter<JsonElement>
{
    /// <summary>What a <see cref="Utf8JsonWriter"/> allows when its options leave the depth at 0.</summary>
    private const int DefaultWriterMaxDepth = 1000;

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
        // Deeper than the writer takes where it stands (metadata 62 levels deep inside a list's item), the writer would
        // throw half-way through a response whose status was sent: such a value is written verbatim too.
        var maxDepth = writer.Options.MaxDepth == 0 ? DefaultWriterMaxDepth : writer.Options.MaxDepth;
        if (UnicodeText.IsValidJson(raw, out var depth) && writer.CurrentDepth + depth < maxDepth)
        {
            value.WriteTo(writer);
        }
        else
        {
            writer.WriteRawValue(raw, skipInputValidation: true);
        }
    }
}
