using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Storage;
using Engram.Tests.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Postgres;

/// <summary>
/// Vectors persist in the PostgreSQL store by memory version and model, so an instance that starts on
/// the database (a restart, another instance, a rebuild) embeds nothing again; there is no index
/// snapshot on this backend, so the stored vectors are the whole story.
/// </summary>
public sealed class PostgresVectorTests : IDisposable
{
    private static readonly Caller Me = Caller.Default("test");
    private readonly StoreLocation _data = StoreLocation.Create(Backend.Postgres);

    public void Dispose() => _data.Dispose();

    private static async Task SettleAsync(EngramEngine engine)
    {
        await engine.EnsureIndexedAsync();
        await engine.Follower.CatchUpAsync();
        while (engine.Index.PendingVectors > 0)
        {
            var pass = await engine.Follower.EmbedPendingAsync(256);
            pass.Failed.Should().BeFalse();
            if (pass.Attached == 0)
            {
                break;
            }
        }
        engine.Index.PendingVectors.Should().Be(0);
        engine.Index.VectorCount.Should().Be(engine.Index.Count);
    }

    [Fact]
    public async Task Another_instance_on_the_database_embeds_nothing_again_and_finds_the_same_memories()
    {
        var embedder = new CountingEmbedder();
        await using (var first = EngramEngine.Open(_data.Value, embedder: embedder))
        {
            await first.EnsureIndexedAsync();
            var items = Enumerable.Range(0, 20).Select(i => (NewMemory?)new NewMemory { Content = $"note {i} about {(i % 2 == 0 ? "the garden" : "the budget")}" }).ToList();
            await first.Memories.CreateBatchAsync(Me, items);
            await SettleAsync(first);
            embedder.Documents.Should().Be(20);
            (await first.Store.CountVectorRowsAsync()).Should().Be(20);
        }
        embedder.Reset();

        await using var second = EngramEngine.Open(_data.Value, embedder: embedder);
        await SettleAsync(second);
        embedder.Documents.Should().Be(0, "the vectors come from the database, keyed by memory version and model");
        second.Index.Count.Should().Be(20);

        // A content update re-embeds that memory only; a delete takes its row with it.
        var page = await second.Memories.ListAsync(Me, MemoryFilter.None, 2, null);
        await second.Memories.UpdateAsync(Me, page.Items[0].Id, new MemoryPatch { Content = "rewritten entirely" });
        await second.Memories.DeleteAsync(Me, page.Items[1].Id);
        await SettleAsync(second);
        embedder.Documents.Should().Be(1);
        (await second.Store.CountVectorRowsAsync()).Should().Be(19);
    }

    [Fact]
    public async Task The_store_keeps_vectors_only_for_live_versions_of_the_callers_tenant()
    {
        await using var store = _data.Open();
        var service = new MemoryService(store, new Core.Configuration.MemoryLimits(), TimeProvider.System);
        var id = (await service.CreateAsync(Me, new NewMemory { Content = "the first words" })).Memory.Id;
        await service.UpdateAsync(Me, id, new MemoryPatch { Content = "other words" });

        (await store.PutVectorsAsync([MemoryVectors.Single(new VectorKey(Caller.DefaultTenant, id, 1), "m", [1f, 0f])])).Should().Be(0, "version 1 is gone");
        (await store.PutVectorsAsync([MemoryVectors.Single(new VectorKey("other", id, 2), "m", [1f, 0f])])).Should().Be(0, "no such memory in that tenant");
        var key = new VectorKey(Caller.DefaultTenant, id, 2);
        (await store.PutVectorsAsync([new MemoryVectors(key, "m", 3, [1f, 2f, 3f, -4f, 5.5f, 0f])])).Should().Be(1);
        (await store.PutVectorsAsync([new MemoryVectors(key, "m", 3, [1f, 2f, 3f, -4f, 5.5f, 1f])])).Should().Be(1, "a second put of the same version replaces the row");
        var read = (await store.GetVectorsAsync([key], "m")).Single();
        read.Count.Should().Be(2);
        read.Vector(1).ToArray().Should().Equal(-4f, 5.5f, 1f);
        (await store.GetVectorsAsync([new VectorKey("other", id, 2)], "m")).Should().BeEmpty();
        (await store.GetVectorsAsync([key], "another-model")).Should().BeEmpty();

        (await store.PutVectorsAsync([MemoryVectors.Single(key, "old-model", [1f])])).Should().Be(1);
        (await store.PruneVectorsAsync("m", 100)).Should().Be(1, "rows of other models go");
        (await store.CountVectorRowsAsync()).Should().Be(1);
    }
}
