using Engram.Core.Memories;

namespace Engram.Tests.Memories;

public sealed class ContentNormalizerTests
{
    [Theory]
    [InlineData("hello", "hello")]
    [InlineData("  hello  ", "hello")]
    [InlineData("a  b\t\tc\n\nd", "a b c d")]
    [InlineData("a\u00A0b", "a b")] // no-break space is white space too
    [InlineData("Cafe\u0301", "Caf\u00E9")] // NFD → NFC
    [InlineData("line1\r\nline2", "line1 line2")]
    public void Normalize_AppliesNfcTrimAndCollapse(string input, string expected) =>
        ContentNormalizer.Normalize(input).Should().Be(expected);

    [Fact]
    public void Hash_IsSha256HexOfUtf8()
    {
        // sha256("abc") from FIPS 180-2.
        ContentNormalizer.Hash("abc").Should().Be("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    [Fact]
    public void Hash_EqualForTextsThatNormalizeAlike_DifferentOtherwise()
    {
        string H(string s) => ContentNormalizer.Hash(ContentNormalizer.Normalize(s));
        H(" Cafe\u0301  au lait\n").Should().Be(H("Caf\u00E9 au lait"));
        H("Café au lait").Should().NotBe(H("cafe au lait"), "case is meaningful");
    }
}
