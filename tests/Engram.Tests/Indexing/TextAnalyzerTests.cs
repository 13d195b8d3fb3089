using Engram.Core.Indexing.Text;

namespace Engram.Tests.Indexing;

public sealed class TextAnalyzerTests
{
    [Theory]
    [InlineData("The Quick brown FOX", "quick brown fox")]
    [InlineData("Alice's dogs were running", "alice dog run")] // 'were' and the possessive 's' are stop words
    [InlineData("naïve café Zürich 2023", "naïve café zürich 2023")]
    [InlineData("e-mail: bob@example.com", "e mail bob example com")]
    [InlineData("東京 タワー", "東京 タワー")]
    [InlineData("", "")]
    [InlineData("   ...  !!! ", "")]
    public void Terms_SplitLowercaseDropStopWordsAndStem(string text, string expected)
    {
        string.Join(' ', TextAnalyzer.Default.Terms(text)).Should().Be(expected);
    }

    [Theory]
    [InlineData("dogs", "dog")]
    [InlineData("parties", "party")]
    [InlineData("classes", "class")]
    [InlineData("painting", "paint")]
    [InlineData("painted", "paint")]
    [InlineData("running", "run")]
    [InlineData("falling", "fall")]
    [InlineData("quickly", "quick")]
    [InlineData("sing", "sing")]
    [InlineData("bus", "bus")]
    [InlineData("news", "new")]
    public void Stemmer(string word, string stem) =>
        TextAnalyzer.Default.Terms(word).Should().Equal(stem);

    [Fact]
    public void Options_CanKeepStopWordsAndSkipStemming()
    {
        new TextAnalyzer(removeStopWords: false, stem: false).Terms("The dogs").Should().Equal("the", "dogs");
    }

    [Fact]
    public void VeryLongRuns_AreCut()
    {
        TextAnalyzer.Default.Terms(new string('x', 500)).Single().Length.Should().Be(TextAnalyzer.MaxTermLength);
    }
}
