using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Engram.Server.Resp;

namespace Engram.Tests.Resp;

/// <summary>
/// RESP bytes ↔ stored JSON without the serializer's round trip: the fast paths must produce exactly the text
/// the relaxed serializer does (history rows and REST read it), and read back exactly the bytes written.
/// </summary>
public sealed class RespValuesTests
{
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    [Fact]
    public void EveryAsciiCharacter_IsEscapedAsTheSerializerDoes_AndReadsBack()
    {
        var buffer = new char[64];
        for (var b = 0; b < 128; b++)
        {
            var text = $"a{(char)b}\\z\"{(char)b}";
            var bytes = Encoding.ASCII.GetBytes(text);
            var json = RespValues.ToJson(bytes);
            json.Should().Be(JsonSerializer.Serialize(text, Relaxed), $"byte {b}");
            RespValues.TryUnescape(json, buffer, out var written).Should().BeTrue();
            new string(buffer, 0, written).Should().Be(text);
        }
    }

    [Fact]
    public void EscapedJsonStrings_Unescape_AndMalformedOnesAreLeftToTheReader()
    {
        var buffer = new char[64];
        RespValues.TryUnescape("\"a\\/b\\u00e9\\u0041\\b\\f\"", buffer, out var written).Should().BeTrue();
        new string(buffer, 0, written).Should().Be("a/béA\b\f");
        RespValues.TryUnescape("\"\\ud83d\\ude00\"", buffer, out _).Should().BeFalse("surrogates go through the JSON reader");
        RespValues.TryUnescape("\"bad\\x\"", buffer, out _).Should().BeFalse();
        RespValues.TryUnescape("\"cut\\\"", buffer, out _).Should().BeFalse();
        RespValues.TryUnescape("42", buffer, out _).Should().BeFalse();
        RespValues.DecodeJsonString("\"\\ud83d\\ude00\"").Should().Be("😀");
    }
}
