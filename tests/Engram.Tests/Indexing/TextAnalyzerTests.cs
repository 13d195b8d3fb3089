using Engram.Core.Indexing.Text;

namespace Engram.Tests.Indexing;

public sealed class TextAnalyzerTests
{
    [Theory]
    [InlineData("The Quick brown FOX", "quick brown fox")]
    [InlineData("Alice's dogs were running", "alice dog run")] // 'were' and the possessive 's' are stop words
    [InlineData("naïve café Zürich 2023", "naïve café zürich 2023")]
    [InlineData("e-mail: bob@example.com", "e mail bob example com")]
    [InlineData("東京 タワー", "東京 タワ ワー")]
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

    [Theory]
    [InlineData("Engram の設定ファイル", "engram の設 設定 定フ ファ ァイ イル")] // mixed: the Latin word as a word, the Japanese run as bigrams
    [InlineData("我们明天去北京开会", "我们 们明 明天 天去 去北 北京 京开 开会")]
    [InlineData("猫 が好き", "猫 が好 好き")] // a one-character run is kept as it is
    [InlineData("서울에서 만나요", "서울 울에 에서 만나 나요")]
    [InlineData("ภาษาไทย", "ภา าษ ษา าไ ไท ทย")] // Thai: no spaces between words, bigrams of its characters
    [InlineData("deploy v2で東京へ", "deploy v2 で東 東京 京へ")]
    public void ScriptsWithoutSpaces_BecomeOverlappingBigrams(string text, string expected)
    {
        string.Join(' ', TextAnalyzer.Default.Terms(text)).Should().Be(expected);
    }

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
