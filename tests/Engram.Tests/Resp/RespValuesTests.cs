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
    public void LongAsciiValues_WithEscapesAnywhere_AreEscapedAsTheSerializerDoes()
    {
        // The escaper copies the runs between escapes in vector-sized blocks: runs longer and shorter than a vector,
        // escapes first, last and back to back.
        var random = new Random(20);
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 \"\\\t\n\u0001\u001f~";
        for (var round = 0; round < 500; round++)
        {
            var chars = new char[random.Next(1, 300)];
            var escapeShare = random.NextDouble();
            for (var i = 0; i < chars.Length; i++)
            {
                chars[i] = random.NextDouble() < escapeShare ? alphabet[random.Next(alphabet.Length)] : (char)random.Next('a', 'z' + 1);
            }
            var text = new string(chars);
            var json = RespValues.ToJson(Encoding.ASCII.GetBytes(text));
            if (!json.StartsWith("{\"$bytes\"", StringComparison.Ordinal))
            {
                json.Should().Be(JsonSerializer.Serialize(text, Relaxed), $"round {round}");
            }
            else
            {
                RespValues.TryBytes(json).Should().Equal(Encoding.ASCII.GetBytes(text), $"round {round}");
            }
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

    [Theory]
    [InlineData("\"plain text\"")]
    [InlineData("\"with \\\"escapes\\\" and \\\\ \\u00e9\"")]
    [InlineData("\"\\ud83d\\ude00 a surrogate pair\"")]
    [InlineData("\"\"")]
    [InlineData("{\"$bytes\":\"AP+AYQ==\"}")]
    [InlineData("{\"a\":[1,2,{\"b\":null}]}")]
    [InlineData("12345")]
    [InlineData("\"héllo wörld\"")]
    public void AnEntrysKeptReply_IsExactlyWhatTheValueWrites(string valueJson)
    {
        var pipe = new System.IO.Pipelines.Pipe();
        new RespWriter(pipe.Writer).Value(valueJson);
        pipe.Writer.Complete();
        pipe.Reader.TryRead(out var read).Should().BeTrue();
        var written = System.Buffers.BuffersExtensions.ToArray(read.Buffer);

        RespWriter.BulkReply(valueJson).Should().Equal(written);

        var entry = new Engram.Core.KeyValue.KvEntry("k", valueJson, null, 1, 0, 0);
        var pipe2 = new System.IO.Pipelines.Pipe();
        var writer = new RespWriter(pipe2.Writer);
        writer.Value(entry);
        writer.Value(entry); // the second from the kept bytes
        pipe2.Writer.Complete();
        pipe2.Reader.TryRead(out var twice).Should().BeTrue();
        System.Buffers.BuffersExtensions.ToArray(twice.Buffer).Should().Equal([.. written, .. written]);
    }

    [Fact]
    public void AKeptReply_BelongsToItsValue_AndIsNotPartOfTheEntrysEquality()
    {
        var entry = new Engram.Core.KeyValue.KvEntry("k", "\"one\"", null, 1, 0, 0);
        var first = entry.GetDerived(RespWriter.BulkReply);
        entry.GetDerived<byte[]>(_ => throw new InvalidOperationException("computed twice")).Should().BeSameAs(first);

        var sameValue = entry with { Version = 2 };
        sameValue.GetDerived<byte[]>(_ => throw new InvalidOperationException("the value did not change")).Should().BeSameAs(first);
        var otherValue = entry with { ValueJson = "\"two\"" };
        Encoding.UTF8.GetString(otherValue.GetDerived(RespWriter.BulkReply)).Should().Be("$3\r\ntwo\r\n");

        var fresh = new Engram.Core.KeyValue.KvEntry("k", "\"one\"", null, 1, 0, 0);
        fresh.Should().Be(entry, "a kept reply is a cache, not part of the value");
        fresh.GetHashCode().Should().Be(entry.GetHashCode());
        fresh.Should().NotBe(sameValue);
    }

    [Fact]
    public void TheCheapClock_SaysAheadOnlyWhenSurely_AndAlwaysReadsATestClock()
    {
        var clock = new Engram.Core.Common.CheapClock(TimeProvider.System);
        var now = clock.NowMs();
        clock.SurelyAhead(now + 60_000).Should().BeTrue("a minute ahead, measured a moment ago");
        clock.SurelyAhead(now + Engram.Core.Common.CheapClock.Slack / 2).Should().BeFalse("within the slack: the caller reads the clock");
        clock.SurelyAhead(now - 1).Should().BeFalse();
        clock.IsLive(null).Should().BeTrue();
        clock.IsLive(now + 60_000).Should().BeTrue();
        clock.IsLive(now - 1).Should().BeFalse();

        var manual = new Engram.Tests.Support.ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(1_000_000));
        var test = new Engram.Core.Common.CheapClock(manual);
        test.NowMs().Should().Be(1_000_000);
        test.SurelyAhead(2_000_000).Should().BeFalse("a test clock can jump: never estimated");
        test.IsLive(1_500_000).Should().BeTrue();
        manual.Advance(TimeSpan.FromSeconds(600));
        test.IsLive(1_500_000).Should().BeFalse("the jump is seen at once");
    }
}
