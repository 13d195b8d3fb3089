using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Embeddings;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

public sealed class QueryVectorCacheTests
{
    [Fact]
    public async Task RepeatedQuery_DoesNotCallTheEmbedderAgain()
    {
        var inner = new CountingEmbedder();
        var cached = new CachedQueryEmbedder(inner, new QueryVectorCache(16));
        var first = await cached.EmbedQueryAsync("where is the deploy key");
        var second = await cached.EmbedQueryAsync("where is the deploy key");
        inner.Queries.Should().Be(1);
        second.Should().BeSameAs(first);
        await cached.EmbedQueryAsync("another question");
        inner.Queries.Should().Be(2);
    }

    [Fact]
    public async Task DifferentModelIds_DoNotShareEntries()
    {
        var cache = new QueryVectorCache(16);
        var a = new CountingEmbedder("model-a");
        var b = new CountingEmbedder("model-b", dimensions: 8);
        var fromA = await new CachedQueryEmbedder(a, cache).EmbedQueryAsync("same text");
        var fromB = await new CachedQueryEmbedder(b, cache).EmbedQueryAsync("same text");
        a.Queries.Should().Be(1);
        b.Queries.Should().Be(1, "model-a's vector must not answer model-b's query");
        fromB.Should().HaveCount(8);
        fromA.Should().HaveCount(16);
        cache.Count.Should().Be(2);
    }

    [Fact]
    public async Task DocumentEmbeddings_PassThrough()
    {
        var inner = new CountingEmbedder();
        var cached = new CachedQueryEmbedder(inner, new QueryVectorCache(16));
        await cached.EmbedAsync("doc");
        await cached.EmbedAsync("doc");
        inner.Documents.Should().Be(2);
    }

    [Fact]
    public void EvictsTheLeastRecentlyUsed()
    {
        var cache = new QueryVectorCache(2);
        cache.Add("m", "a", [1f]);
        cache.Add("m", "b", [2f]);
        cache.TryGet("m", "a", out _).Should().BeTrue(); // a is now the most recent
        cache.Add("m", "c", [3f]);
        cache.TryGet("m", "b", out _).Should().BeFalse("b was the least recently used");
        cache.TryGet("m", "a", out var a).Should().BeTrue();
        a.Should().Equal(1f);
        cache.TryGet("m", "c", out _).Should().BeTrue();
        cache.Count.Should().Be(2);
    }

    [Fact]
    public async Task ManyThreads_KeepTheCacheConsistent()
    {
        var inner = new CountingEmbedder();
        var cache = new QueryVectorCache(32);
        var cached = new CachedQueryEmbedder(inner, cache);
        await Parallel.ForAsync(0, 4_000, async (i, ct) =>
        {
            var text = $"query {i % 64}";
            var vector = await cached.EmbedQueryAsync(text, ct);
            vector.Should().Equal(new HashEmbeddingProvider(16).Embed(text));
        });
        cache.Count.Should().Be(32);
        (cache.Hits + cache.Misses).Should().Be(4_000);
    }

    [Fact]
    public async Task Search_EmbedsARepeatedQueryOnce_AndTheSizeSettingTurnsItOff()
    {
        using var dir = new TempDirectory();
        var inner = new CountingEmbedder();
        await using (var engine = EngramEngine.OpenSqlite(dir.Path, embedder: inner))
        {
            await engine.Memories.CreateAsync(Caller.Default("t"), new NewMemory { Content = "the deploy key lives in the vault" });
            for (var i = 0; i < 3; i++)
            {
                await engine.Search.SearchAsync(Caller.Default("t"), new SearchRequest { Query = "deploy key", K = 3 });
            }
            inner.Queries.Should().Be(1);
        }

        using var other = new TempDirectory();
        var uncached = new CountingEmbedder();
        await using var off = EngramEngine.OpenSqlite(other.Path, search: new SearchOptions { QueryCacheSize = 0 }, embedder: uncached);
        off.QueryCache.Should().BeNull();
        for (var i = 0; i < 3; i++)
        {
            await off.Search.SearchAsync(Caller.Default("t"), new SearchRequest { Query = "deploy key", K = 3 });
        }
        uncached.Queries.Should().Be(3);
    }
}
