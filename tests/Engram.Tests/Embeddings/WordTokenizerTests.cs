using Engram.Core.Embeddings;

namespace Engram.Tests.Embeddings;

public sealed class WordTokenizerTests
{
    [Theory]
    [InlineData("Hello, World!", new[] { "Hello", ",", "World", "!" })]
    [InlineData("  spaced\tout\r\nlines  ", new[] { "spaced", "out", "lines" })]
    [InlineData("I don't know.", new[] { "I", "don't", "know", "." })]
    [InlineData("it\u2019s Bob's", new[] { "it\u2019s", "Bob's" })]
    [InlineData("'quoted'", new[] { "'", "quoted", "'" })]
    [InlineData("long-distance -- call", new[] { "long-distance", "-", "-", "call" })]
    [InlineData("U.S. economy", new[] { "U.S", ".", "economy" })]
    [InlineData("1,000 people, 3.5% up", new[] { "1,000", "people", ",", "3.5", "%", "up" })]
    [InlineData("a,b", new[] { "a", ",", "b" })]
    [InlineData("(see: www.example.com)", new[] { "(", "see", ":", "www.example.com", ")" })]
    [InlineData("Zürich café naïve", new[] { "Zürich", "café", "naïve" })]
    [InlineData("cafe\u0301 ok", new[] { "cafe\u0301", "ok" })]
    [InlineData("Москва и 北京", new[] { "Москва", "и", "北京" })]
    [InlineData("I \u2764\uFE0F \U0001F355!", new[] { "I", "\u2764", "\U0001F355", "!" })]
    [InlineData("zero\u200Bwidth", new[] { "zero", "width" })]
    [InlineData("", new string[0])]
    [InlineData(" \t\n ", new string[0])]
    public void Splits_like_the_glove_corpus(string text, string[] expected)
    {
        WordTokenizer.TokenStrings(text).Should().Equal(expected);
    }

    [Fact]
    public void Reports_kinds_and_ranges()
    {
        var tokens = new List<TextToken>();
        foreach (var token in WordTokenizer.Tokenize("Hi, you"))
        {
            tokens.Add(token);
        }
        tokens.Should().Equal(
            new TextToken(0, 2, TokenKind.Word),
            new TextToken(2, 1, TokenKind.Symbol),
            new TextToken(4, 3, TokenKind.Word));
    }

    [Fact]
    public void A_lone_surrogate_is_one_symbol()
    {
        WordTokenizer.TokenStrings("a\uD800b").Should().Equal("a", "\uD800", "b");
    }
}
