using System.Text;
using Engram.Core.Common;

namespace Engram.Tests.Hostile;

/// <summary>The Unicode rule every write path applies (<see cref="UnicodeText"/>), on the escapes that make it tricky.</summary>
public sealed class UnicodeTextTests
{
    [Theory]
    [InlineData("""{"a":"plain"}""", true)]
    [InlineData("""{"a":"\ud83d\ude00"}""", true)]            // a pair
    [InlineData("""{"\ud83d\ude00":"\u00e9\n\\ud800"}""", true)] // an escaped backslash, then text that only looks like an escape
    [InlineData("""["\\\ud83d\ude00"]""", true)]
    [InlineData("""[1,true,null,{"a":[]}]""", true)]
    [InlineData("""{"a":"\ud800"}""", false)]                  // high alone
    [InlineData("""{"a":"\udc00"}""", false)]                  // low alone
    [InlineData("""{"a":"\ud800x\udc00"}""", false)]           // split by text
    [InlineData("""{"a":"\ud800\n"}""", false)]                // followed by another escape
    [InlineData("""{"a":"\ud800\ud800"}""", false)]            // two highs
    [InlineData("""{"a":"\\\ud800"}""", false)]                // an escaped backslash, then a lone escape
    [InlineData("""{"k\uDBFF":1}""", false)]                   // in a key, upper-case hex
    [InlineData("""[[[{"a":["\uDFFF"]}]]]""", false)]          // deep
    public void Escapes_are_checked_in_place(string json, bool valid) =>
        UnicodeText.IsValidJson(Encoding.UTF8.GetBytes(json)).Should().Be(valid);

    [Fact]
    public void Raw_bytes_that_are_not_UTF8_are_invalid()
    {
        UnicodeText.IsValidJson([.. "{\"a\":\""u8, 0xC3, .. "\"}"u8]).Should().BeFalse();
        UnicodeText.IsValidJson([.. "{\""u8, 0xFF, .. "\":1}"u8]).Should().BeFalse();
        UnicodeText.IsValidJson([.. "{\"a\":\""u8, 0xC3, 0xA9, .. "\"}"u8]).Should().BeTrue();
    }

    [Fact]
    public void Strings_from_in_process_callers_are_checked()
    {
        // Built here, not in attributes: test discovery would turn a lone surrogate into U+FFFD.
        UnicodeText.IsValid("ok 😀").Should().BeTrue();
        UnicodeText.IsValid("a" + '\ud800').Should().BeFalse();
        UnicodeText.IsValid('\udc00' + "a").Should().BeFalse();
        UnicodeText.IsValid("😀" + '\ud83d').Should().BeFalse();
        var act = () => UnicodeText.Require("x" + '\udfff', "content");
        act.Should().Throw<ValidationException>().Which.Field.Should().Be("content");
    }
}
