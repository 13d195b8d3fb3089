using System.Text;
using System.Text.Json;
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

/// <summary>The rules of a stored JSON value (<see cref="StoredJsonRules"/>): the same on both stores.</summary>
public sealed class StoredJsonRulesTests
{
    [Theory]
    [InlineData("""{"a":"plain","n":[1,-0,0.0,1e308,-1.7976931348623157e308,4.9e-324,0e-999,12345678901234567890]}""")]
    [InlineData("""{"a":"\\u0000 is an escaped backslash and text, not a NUL"}""")]
    [InlineData("\"text\"")]
    [InlineData("42")]
    public void Values_within_the_rules_pass(string json) =>
        StoredJsonRules.Require(JsonDocument.Parse(json).RootElement, "value");

    [Theory]
    [InlineData("""{"a":"x\u0000y"}""", "holds a NUL character")]
    [InlineData("""{"k\u0000":1}""", "holds a NUL character")]
    [InlineData("""["\u0000"]""", "holds a NUL character")]
    [InlineData("""{"n":1e400}""", "holds the number 1e400, beyond what a double holds")]
    [InlineData("""{"n":-1e309}""", "holds the number -1e309")]
    [InlineData("""{"n":1e-400}""", "holds the number 1e-400")]
    [InlineData("""[1e131073]""", "holds the number 1e131073")]
    [InlineData("""{"a":"\ud800"}""", "is not valid Unicode")]
    public void Values_beyond_the_rules_are_refused_naming_the_field(string json, string message)
    {
        var act = () => StoredJsonRules.Require(JsonDocument.Parse(json).RootElement, "metadata");
        act.Should().Throw<ValidationException>().Where(e => e.Field == "metadata" && e.Message.Contains(message));
    }

    [Fact]
    public void Nesting_is_counted_to_the_limit()
    {
        static string Nested(int depth) => string.Concat(Enumerable.Repeat("[", depth)) + string.Concat(Enumerable.Repeat("]", depth));
        StoredJsonRules.Require(JsonDocument.Parse(Nested(StoredJsonRules.MaxDepth)).RootElement, "value");
        var act = () => StoredJsonRules.Require(JsonDocument.Parse(Nested(StoredJsonRules.MaxDepth + 1)).RootElement, "value");
        act.Should().Throw<ValidationException>().WithMessage($"value nests {StoredJsonRules.MaxDepth + 1} levels*");
    }

    [Fact]
    public void Text_with_a_NUL_is_refused_on_every_write_path()
    {
        var act = () => UnicodeText.Require("a\0b", "content");
        act.Should().Throw<ValidationException>().Where(e => e.Field == "content" && e.Message.Contains("NUL character (U+0000)"));
    }
}
