using Engram.Core.Indexing;
using Engram.Core.Indexing.Text;

namespace Engram.Tests.Indexing;

/// <summary>Bm25Index.Renumbered: a dense copy that answers exactly as the original, under the new numbers.</summary>
public sealed class Bm25RenumberTests
{
    [Fact]
    public void RenumberedCopy_AnswersLikeTheOriginal_UnderTheNewNumbers_AndTakesNewDocuments()
    {
        var random = new Random(5);
        var words = Enumerable.Range(0, 300).Select(i => "w" + i).ToArray();
        string Text() => string.Join(' ', Enumerable.Range(0, random.Next(3, 20)).Select(_ => words[(int)(Math.Pow(random.NextDouble(), 3) * words.Length)]));
        var index = new Bm25Index(new TextAnalyzer(stem: false), 0.6f, 0.3f) { TypoWeight = 0 };
        for (var doc = 0; doc < 3_000; doc++)
        {
            index.Add(doc, Text());
        }
        for (var doc = 0; doc < 3_000; doc += 3)
        {
            index.Remove(doc);
        }
        // Dense numbers for the live documents, in their old order.
        var map = new int[3_000];
        var next = 0;
        for (var doc = 0; doc < map.Length; doc++)
        {
            map[doc] = doc % 3 == 0 ? -1 : next++;
        }

        var copy = index.Renumbered(map, next);

        copy.Count.Should().Be(index.Count);
        for (var q = 0; q < 100; q++)
        {
            var query = string.Join(' ', Enumerable.Range(0, random.Next(1, 5)).Select(_ => words[random.Next(words.Length)]));
            var before = Search(index, query);
            var after = Search(copy, query);
            after.Select(r => r.Score).Should().Equal(before.Select(r => r.Score), query);
            after.Select(r => r.Doc).Should().Equal(before.Select(r => map[r.Doc]), query);
        }

        // The copy takes new documents after the renumbered ones and finds them; the original is unchanged.
        copy.Add(next, "zebra crossing");
        Search(copy, "zebra").Select(r => r.Doc).Should().Equal(next);
        Search(index, "w1").Should().NotBeEmpty();
        FluentActions.Invoking(() => copy.Add(5, "taken")).Should().Throw<InvalidOperationException>("a renumbered number is in use");
    }

    [Fact]
    public void AMapThatReordersDocuments_IsRefused()
    {
        var index = new Bm25Index(new TextAnalyzer(stem: false), 0.6f, 0.3f);
        index.Add(0, "alpha");
        index.Add(1, "beta");
        FluentActions.Invoking(() => index.Renumbered([1, 0], 2)).Should().Throw<ArgumentException>();
    }

    private static ScoredDoc[] Search(Bm25Index index, string query)
    {
        var results = new ScoredDoc[20];
        return results[..index.Search(query, results, new AllDocs())];
    }
}
