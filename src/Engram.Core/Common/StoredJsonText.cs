using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engram.Core.Common;

/// <summary>
/// JSON text as the store holds it, written into a response exactly as <see cref="StoredJsonConverter"/> writes the
/// parsed value. It is parsed only for that write, into pooled buffers that go back at once: a long answer of large
/// values (an mget of 1,000 keys of 1 MB) then leaves no per-value copy behind for the collector, where a parsed and
/// cloned <see cref="JsonElement"/> per value left a large-object-heap array each.
/// </summary>
[JsonConverter(typeof(StoredJsonTextConverter))]
public sealed class StoredJsonText(string json)
{
    public string Json { get; } = json;
}

/// <summary>Writes <see cref="StoredJsonText"/> (responses only: nothing reads it).</summary>
public sealed class StoredJsonTextConverter : JsonConverter<StoredJsonText>
{
    private static readonly StoredJsonConverter Stored = new();

    public override StoredJsonText Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        throw new NotSupportedException("stored JSON text is written, never read");

    public override void Write(Utf8JsonWriter writer, StoredJsonText value, JsonSerializerOptions options)
    {
        using var document = JsonDocument.Parse(value.Json);
        Stored.Write(writer, document.RootElement, options);
    }
}
