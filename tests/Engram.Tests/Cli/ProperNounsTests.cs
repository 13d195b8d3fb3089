using Engram.Cli.Bench;

namespace Engram.Tests.Cli;

/// <summary>The LoCoMo harness's proper-noun rule (entities for unannotated turns).</summary>
public sealed class ProperNounsTests
{
    [Fact]
    public void CapitalisedWordsAndRuns_InsideSentences_AreNames()
    {
        var nouns = new ProperNouns([]);
        nouns.Find("We flew to New York with Priya's sister and visited the Met.").Should().Equal("New York", "Priya", "Met");
        nouns.Find("Thanks, I'm glad. Wow, OK then, see you in May!").Should().BeEmpty("stop list: greetings, the pronoun I, months");
        nouns.Find("Yesterday was fun. Painting helps.").Should().BeEmpty("first words of sentences are capitalised anyway");
        nouns.Find("I met Ana, Ben and \"Big Sur\" folks").Should().Equal("Ana", "Ben", "Big Sur");
    }

    [Fact]
    public void ASentenceInitialWord_CountsWhenTheConversationUsesItAsANameElsewhere()
    {
        var nouns = new ProperNouns(["I called Oscar today.", "Painting is fun."]);
        nouns.Find("Oscar loved it. Painting too.").Should().Equal("Oscar");
    }
}
