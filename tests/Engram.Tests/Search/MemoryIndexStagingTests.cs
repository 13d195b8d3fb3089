using System.Text.Json;
using Engram.Core.Embeddings;
using Engram.Core.Indexing;
using Engram.Core.Indexing.Vector;
using Engram.Core.Memories;
using Engram.Core.Search;

namespace Engram.Tests.Search;

/// <summary>Vectors are staged by the follower and drained into the graph later; searches see both alike.</summary>
public sealed class MemoryIndexStagingTests
{
    private static readonly HashEmbeddingProvider Embedder = new(32);

    private static Memory MemoryOf(int i) => new()
    {
        Id = $"01J00000000000000000{i:D6}",
        Content = $"memory {i} about topic {i % 7}",
        ContentHash = "h",
        Type = "fact",
        Tier = MemoryTier.LongTerm,
        Importance = 0.5,
        Tags = [],
        Entities = [],
        Metadata = JsonDocument.Parse("{}").RootElement,
        CreatedAt = DateTimeOffset.UnixEpoch,
        UpdatedAt = DateTimeOffset.UnixEpoch,
        Version = 1,
    };

    private static List<ScoredDoc> Search(MemoryIndex index, float[] query, int k) =>
        index.Read(i =>
        {
            var buffer = new ScoredDoc[k];
            var count = i.SearchVectors(query, buffer, new AllDocs());
            return buffer.Take(count).ToList();
        });

    [Fact]
    public async Task TheDrainSleepsUntilAVectorIsStaged()
    {
        var index = new MemoryIndex(d => new HnswIndex(d, HnswOptions.Default), Embedder.ModelId);
        var idle = index.WaitForStagedAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        await Task.Delay(50);
        idle.IsCompleted.Should().BeFalse("nothing was staged: the drain sleeps");

        index.Upsert("default", MemoryOf(1), null); // no vector yet: nothing to drain
        await Task.Delay(50);
        idle.IsCompleted.Should().BeFalse();
        index.Upsert("default", MemoryOf(2), Embedder.Embed("two"));
        (await idle.WaitAsync(TimeSpan.FromSeconds(10))).Should().BeTrue("staging a vector wakes the drain");

        // A vector attached later (computed after the write) wakes it too.
        var pending = index.PendingSnapshot(10, out var epoch);
        pending.Should().ContainSingle();
        var next = index.WaitForStagedAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        index.DrainStaged(10).Should().Be(1);
        index.AttachVector(pending[0].Doc, Embedder.Embed("one"), epoch).Should().BeTrue();
        (await next.WaitAsync(TimeSpan.FromSeconds(10))).Should().BeTrue();
        (await index.WaitForStagedAsync(TimeSpan.FromMilliseconds(20), CancellationToken.None)).Should().BeFalse("one wake per staging, not a level that stays set");
    }

    [Fact]
    public void StagedAndDrainedVectors_AnswerTheSame_AndRetiredOnesNeverComeBack()
    {
        var index = new MemoryIndex(d => new HnswIndex(d, HnswOptions.Default with { ExactSearchThreshold = 0 }), Embedder.ModelId);
        for (var i = 0; i < 300; i++)
        {
            var memory = MemoryOf(i);
            index.Upsert("default", memory, Embedder.Embed(memory.Content));
        }
        index.StagedVectors.Should().Be(300);
        index.VectorCount.Should().Be(300);
        var query = Embedder.Embed("memory about topic 3");
        var staged = Search(index, query, 10);
        staged.Should().HaveCount(10);
        var similarity = index.Read(i => i.Similarity(staged[0].Doc, query));
        similarity.Should().BeApproximately(staged[0].Score, 1e-5f);

        index.DrainStaged(150).Should().Be(150);
        index.StagedVectors.Should().Be(150);
        // Many memories tie (same words), so compare the scores of the top 10, not which tied doc came first.
        Search(index, query, 10).Select(r => MathF.Round(r.Score, 4)).Should().Equal(staged.Select(r => MathF.Round(r.Score, 4)), "half in the graph, half staged: same answer");
        while (index.DrainStaged(64) > 0)
        {
        }
        index.StagedVectors.Should().Be(0);
        index.VectorCount.Should().Be(300);
        Search(index, query, 10).Select(r => MathF.Round(r.Score, 4)).Should().Equal(staged.Select(r => MathF.Round(r.Score, 4)), "all in the graph (exact mode here): same answer");
        index.Read(i => i.Similarity(staged[0].Doc, query)).Should().BeApproximately(similarity, 1e-5f);

        // Retire one memory that is in the graph and stage a new version of it.
        var best = index.Docs[staged[0].Doc].Id;
        index.Upsert("default", MemoryOf(int.Parse(best[^6..], System.Globalization.CultureInfo.InvariantCulture)) with { Content = "changed" }, Embedder.Embed("something else entirely"));
        Search(index, query, 300).Should().NotContain(r => r.Doc == staged[0].Doc, "the old version left the graph");
        index.Remove(best);
        Search(index, query, 300).Should().HaveCount(299);
        index.VectorCount.Should().Be(299);
    }

    [Fact]
    public void AVectorOfTheWrongLength_IsKeptLexicalAndMarkedPending()
    {
        var index = new MemoryIndex(d => new HnswIndex(d), Embedder.ModelId);
        index.Upsert("default", MemoryOf(1), Embedder.Embed("first"));
        index.Upsert("default", MemoryOf(2), new float[7]);
        index.DrainStaged(10).Should().Be(1);
        index.PendingVectors.Should().Be(1);
        index.Count.Should().Be(2);
    }
}
