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
    public void BytesThatAreNotUtf8_AreStoredAsBase64_AndReadBack()
    {
        byte[] bytes = [0x00, 0xFF, 0x80, (byte)'a'];
        var json = RespValues.ToJson(bytes);
        json.Should().Be("{\"$bytes\":\"AP+AYQ==\"}");
        JsonDocument.Parse(json).RootElement.GetProperty("$bytes").GetBytesFromBase64().Should().Equal(bytes);
        RespValues.TryBytes(json).Should().Equal(bytes);
        RespValues.TryBytes("{ \"$bytes\" : \"AP8=\" }").Should().Equal(0x00, 0xFF);
        RespValues.TryBytes("{\"$bytes\":\"\"}").Should().BeEmpty();
        RespValues.TryBytes("{\"$bytes\":\"AP8\"}").Should().BeNull("not base64");
        RespValues.TryBytes("{\"$bytes\":\"AP8=\",\"x\":1}").Should().BeNull("another property: plain JSON");
        RespValues.TryBytes("{\"$bytes\":1}").Should().BeNull();
        RespValues.TryBytes("{\"other\":\"AP8=\"}").Should().BeNull();
        RespValues.TryBytes("\"AP8=\"").Should().BeNull();
        RespValues.TryBytes("{\"$bytes\":\"AP8=\"").Should().BeNull("malformed JSON");
        RespValues.ToJson("héllo"u8).Should().Be("\"héllo\"", "UTF-8 text stays a JSON string");
        RespValues.ToJson("a\u0001b\tc\n"u8).Should().Be("\"a\\u0001b\\tc\\n\"", "a few control characters: still text");
        RespValues.ToJson(new byte[30]).Should().Be("{\"$bytes\":\"" + Convert.ToBase64String(new byte[30]) + "\"}",
            "thirty zero bytes are 182 characters as a JSON string, 54 as base64");
        RespValues.ToJson("\t\t\t\t\t\t\t\t\n\n\n\n"u8).Should().StartWith("\"", "short escapes only: text");
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
