using Engram.Core.Indexing;
using Engram.Core.Indexing.Text;

namespace Engram.Tests.Indexing;

/// <summary>Bm25Index's typo tolerance: query words absent from the vocabulary match their nearest vocabulary words, weighted down.</summary>
public sealed class TypoToleranceTests
{
    private static Bm25Index IndexOf(params string[] texts)
    {
        var index = new Bm25Index(new TextAnalyzer(), 0.6f, 0.3f);
        for (var i = 0; i < texts.Length; i++)
        {
            index.Add(i, texts[i]);
        }
        return index;
    }

    private static ScoredDoc[] Search(Bm25Index index, string query)
    {
        var results = new ScoredDoc[16];
        var count = index.Search(query, results, new AllDocs());
        return results[..count];
    }

    [Fact]
    public void MisspeltWords_FindTheirNearestVocabularyWords()
    {
        var index = IndexOf("rotate the deploy key", "lunch with the design team", "budget review on friday");
        Search(index, "deploi kee").Select(r => r.Doc).Should().Equal([0], "deploi → deploy and kee → key are one edit away");
        Search(index, "bugdet").Select(r => r.Doc).Should().Equal([2], "a transposition is one edit");
        Search(index, "lnuch tema").Select(r => r.Doc).Should().Equal([1]);
        Search(index, "desgin").Select(r => r.Doc).Should().Equal([1]);
        Search(index, "reveiw fridya").Select(r => r.Doc).Should().Equal([2]);
    }

    [Fact]
    public void ACorrectedWord_CountsLessThanAnExactOne()
    {
        // Same statistics for both words (each in one document of the same length): only the correction's weight differs.
        var index = IndexOf("deploy", "key");
        var results = Search(index, "deploy kee");
        results.Select(r => r.Doc).Should().Equal(0, 1);
        results[1].Score.Should().BeApproximately(results[0].Score * index.TypoWeight, 1e-5f);

        index.TypoWeight = 0;
        Search(index, "deploy kee").Select(r => r.Doc).Should().Equal([0], "weight 0 turns corrections off");
    }

    [Fact]
    public void TwoEdits_ReachOnlyLongWords_AndWeighLessThanOne()
    {
        var index = IndexOf("configuration", "cat");
        var two = Search(index, "confgiuratoin"); // two transpositions
        two.Select(r => r.Doc).Should().Equal([0]);
        var exact = Search(index, "configuration")[0].Score;
        two[0].Score.Should().BeApproximately(exact * index.TypoWeight * index.TypoWeight, 1e-5f);
        Search(index, "cta").Select(r => r.Doc).Should().Equal([1], "one edit for a three-letter word");
        Search(index, "dgo").Should().BeEmpty("two edits are too many for a three-letter word");
        Search(index, "ct").Should().BeEmpty("words of two letters are not corrected");
    }

    [Fact]
    public void WordsInTheVocabulary_StopWordsAndNumbers_AreNotCorrected()
    {
        var index = IndexOf("deploy the service", "deploi script", "release 2024 notes");
        Search(index, "deploi").Select(r => r.Doc).Should().Equal([1], "a known word matches only itself");
        Search(index, "2023").Should().BeEmpty("numbers are not typo-corrected");

        var keepStopWords = new Bm25Index(new TextAnalyzer(removeStopWords: false), 0.6f, 0.3f);
        keepStopWords.Add(0, "the cat");
        var results = new ScoredDoc[4];
        keepStopWords.Search("thw", results, new AllDocs()).Should().Be(0, "stop words are never a correction");
    }

    [Fact]
    public void RemovedDocuments_NoLongerLendTheirWords()
    {
        var index = IndexOf("rotate the deploy key", "something else");
        index.Remove(0);
        Search(index, "deploi").Should().BeEmpty();
        index.Add(2, "deploy again");
        Search(index, "deploi").Select(r => r.Doc).Should().Equal([2]);
    }

    [Fact]
    public void TheTypoTable_SurvivesASnapshot()
    {
        var index = IndexOf("rotate the deploy key", "lunch with the design team");
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            index.Write(writer);
        }
        stream.Position = 0;
        using var reader = new BinaryReader(stream);
        var copy = Bm25Index.Read(reader, new TextAnalyzer(), 0.6f, 0.3f);
        stream.Position.Should().Be(stream.Length);
        Search(copy, "deploi kee").Should().Equal(Search(index, "deploi kee"));
        copy.Add(5, "quarterly planning");
        Search(copy, "planing").Select(r => r.Doc).Should().Equal([5], "terms added after a load join the table");
    }

    [Fact]
    public void ManyTerms_EachFoundByItsTypos()
    {
        // Enough distinct words to grow the table several times; every word's one-edit variants find it.
        var random = new Random(7);
        var words = Enumerable.Range(0, 3_000).Select(_ => new string(Enumerable.Range(0, random.Next(6, 12)).Select(_ => (char)('a' + random.Next(26))).ToArray()))
            .Where(w => !w.EndsWith('s') && !w.EndsWith("ing", StringComparison.Ordinal) && !w.EndsWith("ed", StringComparison.Ordinal) && !w.EndsWith("ly", StringComparison.Ordinal))
            .Distinct().ToArray();
        var index = IndexOf(words);
        for (var i = 0; i < words.Length; i += 37)
        {
            var w = words[i];
            var typo = string.Concat(w.AsSpan(0, 2), "q", w.AsSpan(3)); // one substitution (or none if it was a q)
            var hits = Search(index, typo).Select(r => r.Doc).ToArray();
            hits.Should().Contain(i, $"{typo} is within one edit of {w}");
        }
    }
}
