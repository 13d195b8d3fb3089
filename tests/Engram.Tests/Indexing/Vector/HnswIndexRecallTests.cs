using Engram.Core.Indexing;
using Engram.Core.Indexing.Vector;

namespace Engram.Tests.Indexing.Vector;

public sealed class HnswIndexRecallTests(HnswIndexFixture fixture) : IClassFixture<HnswIndexFixture>
{
    private const int K = 10;
    private const double MinFloatRecall = 0.95;
    private const double MinInt8Recall = 0.95;

    /// <summary>
    /// With the smallest candidate list (ef is raised to k = 10) recall must be measurably below 1, or the graph walk
    /// is secretly exhaustive and the recall tests prove nothing.
    /// </summary>
    private const double MaxNarrowRecall = 0.99;

    [Fact]
    public void FloatRecallAt10_MeetsTheBar()
    {
        var recall = Recall(fixture.Float, HnswIndexFixture.Options.EfSearch, out var scoreError);
        recall.Should().BeGreaterThanOrEqualTo(MinFloatRecall);
        scoreError.Should().BeLessThan(1e-5f, "float mode scores are exact dot products");
    }

    [Fact]
    public void Int8RecallAt10_MeetsTheBar()
    {
        var recall = Recall(fixture.Int8, HnswIndexFixture.Options.EfSearch, out var scoreError);
        recall.Should().BeGreaterThanOrEqualTo(MinInt8Recall);
        scoreError.Should().BeLessThan(0.02f, "int8 scores approximate the cosine");
    }

    [Fact]
    public void Int8RerankRecallAt10_MeetsTheBar_WithExactScores()
    {
        var recall = Recall(fixture.Int8Rerank, HnswIndexFixture.Options.EfSearch, out var scoreError);
        recall.Should().BeGreaterThanOrEqualTo(MinFloatRecall);
        scoreError.Should().BeLessThan(1e-5f, "the candidates are re-scored with the float rows");
    }

    [Fact]
    public void RecallGrowsWithEf()
    {
        var narrow = Recall(fixture.Float, 1, out _);
        var wide = Recall(fixture.Float, 256, out _);
        narrow.Should().BeLessThan(MaxNarrowRecall);
        wide.Should().BeGreaterThan(narrow).And.BeGreaterThanOrEqualTo(0.99);
    }

    [Fact]
    public void ResultsAreSortedAndDistinct()
    {
        var results = new ScoredDoc[K];
        foreach (var query in fixture.Queries.Take(50))
        {
            fixture.Float.Search(query, results, new AllDocs()).Should().Be(K);
            results.Select(r => r.Doc).Should().OnlyHaveUniqueItems();
            results.Select(r => r.Score).Should().BeInDescendingOrder();
        }
    }

    private double Recall(HnswIndex index, int ef, out float maxScoreError)
    {
        var expected = new ScoredDoc[K];
        var actual = new ScoredDoc[K];
        var hits = 0;
        maxScoreError = 0f;
        foreach (var query in fixture.Queries)
        {
            fixture.Flat.Search(query, expected, new AllDocs()).Should().Be(K);
            index.Search(query, actual, new AllDocs(), ef).Should().Be(K);
            var truth = expected.Select(e => e.Doc).ToHashSet();
            hits += actual.Count(a => truth.Contains(a.Doc));
            foreach (var result in actual)
            {
                var exact = fixture.Flat.Similarity(result.Doc, query);
                maxScoreError = Math.Max(maxScoreError, Math.Abs(exact - result.Score));
            }
        }
        return hits / (double)(K * fixture.Queries.Length);
    }
}
