using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Storage;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

/// <summary>Vectors persist in the store by memory version and model: nothing is embedded twice.</summary>
public sealed class PersistedVectorTests : IDisposable
{
    private const int Count = 20;
    private static readonly Caller Me = Caller.Default("test");
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string SnapshotFile => Path.Combine(_dir.Path, IndexSnapshot.FileName);

    private EngramEngine Open(CountingEmbedder embedder) => EngramEngine.OpenSqlite(_dir.Path, embedder: embedder, snapshots: true);

    /// <summary>Catches up and embeds whatever is pending, as the server's worker would.</summary>
    internal static async Task SettleAsync(EngramEngine engine)
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

    private static async Task<List<string>> FillAsync(EngramEngine engine, int count = Count)
    {
        var items = Enumerable.Range(0, count).Select(i => (NewMemory?)new NewMemory { Content = $"note {i} about {(i % 2 == 0 ? "the garden" : "the budget")} on day {i}", UserId = "u" }).ToList();
        var results = await engine.Memories.CreateBatchAsync(Me, items);
        return [.. results.Select(r => r.Id!)];
    }

    /// <summary>A store with <see cref="Count"/> memories, all embedded and stored, and a snapshot; the embedder's counts reset.</summary>
    private async Task<CountingEmbedder> SeededAsync(string model = "counting-v1")
    {
        var embedder = new CountingEmbedder(model);
        await using (var engine = Open(embedder))
        {
            await engine.EnsureIndexedAsync();
            await FillAsync(engine);
            await SettleAsync(engine);
            embedder.Documents.Should().Be(Count, "each memory is embedded once");
            (await engine.Store.CountVectorRowsAsync()).Should().Be(Count);
            (await engine.SaveSnapshotAsync(force: true)).Should().BeTrue();
        }
        embedder.Reset();
        return embedder;
    }

    [Fact]
    public async Task Restart_ReembedsNothing()
    {
        var embedder = await SeededAsync();
        await using var engine = Open(embedder);
        (await engine.EnsureIndexedAsync()).Source.Should().Be("snapshot");
        await SettleAsync(engine);
        embedder.Documents.Should().Be(0);
    }

    [Fact]
    public async Task DeletedSnapshot_RebuildsFromStoredVectors_ReembedsNothing()
    {
        var embedder = await SeededAsync();
        File.Delete(SnapshotFile);
        await using var engine = Open(embedder);
        (await engine.EnsureIndexedAsync()).Source.Should().Be("rebuilt");
        await SettleAsync(engine);
        embedder.Documents.Should().Be(0);
        engine.Index.VectorCount.Should().Be(Count);
    }

    [Fact]
    public async Task DamagedSnapshot_RebuildsFromStoredVectors_ReembedsNothing()
    {
        var embedder = await SeededAsync();
        var bytes = await File.ReadAllBytesAsync(SnapshotFile);
        bytes[bytes.Length / 2] ^= 0xFF;
        await File.WriteAllBytesAsync(SnapshotFile, bytes);
        await using var engine = Open(embedder);
        (await engine.EnsureIndexedAsync()).Source.Should().Be("rebuilt");
        await SettleAsync(engine);
        embedder.Documents.Should().Be(0);
        engine.Index.VectorCount.Should().Be(Count);
    }

    [Fact]
    public async Task Reindex_ReembedsNothing()
    {
        var embedder = await SeededAsync();
        await using var engine = Open(embedder);
        await engine.RebuildAsync();
        await SettleAsync(engine);
        embedder.Documents.Should().Be(0);
        engine.Index.VectorCount.Should().Be(Count);
    }

    [Fact]
    public async Task Update_ReembedsExactlyThatMemory_AndAMetadataOnlyUpdateNothing()
    {
        var embedder = new CountingEmbedder();
        await using var engine = Open(embedder);
        await engine.EnsureIndexedAsync();
        var ids = await FillAsync(engine);
        await SettleAsync(engine);
        embedder.Reset();

        await engine.Memories.UpdateAsync(Me, ids[3], new MemoryPatch { Content = "note 3 rewritten: the garden shed roof leaks" });
        await SettleAsync(engine);
        embedder.Documents.Should().Be(1);

        await engine.Memories.UpdateAsync(Me, ids[4], new MemoryPatch { Importance = 0.9 });
        await SettleAsync(engine);
        embedder.Documents.Should().Be(1, "the content did not change, so the stored vector follows the new version");
        (await engine.Store.CountVectorRowsAsync()).Should().Be(Count, "one row per live memory, never one per version");

        // And a rebuild after both updates still finds every vector in the store.
        await engine.RebuildAsync();
        await SettleAsync(engine);
        embedder.Documents.Should().Be(1);
    }

    [Fact]
    public async Task ModelSwitch_ReembedsEverythingOnce_AndPrunesTheOldModelsRows()
    {
        await SeededAsync("counting-v1");
        await using (var builtin = EngramEngine.OpenSqlite(_dir.Path))
        {
            (await builtin.PruneStoredVectorsAsync()).Should().Be(0, "the built-in model stores nothing and keeps the others' vectors");
        }
        var next = new CountingEmbedder("counting-v2");
        await using (var engine = Open(next))
        {
            await SettleAsync(engine);
            next.Documents.Should().Be(Count);
            (await engine.Store.CountVectorRowsAsync()).Should().Be(2 * Count, "both models' rows until the maintenance prunes");
            (await engine.PruneStoredVectorsAsync()).Should().Be(Count);
            (await engine.Store.CountVectorRowsAsync()).Should().Be(Count);
            await engine.SaveSnapshotAsync(force: true);
        }
        next.Reset();
        File.Delete(SnapshotFile);
        await using var again = Open(next);
        await SettleAsync(again);
        next.Documents.Should().Be(0, "the new model's vectors were stored the first time");
    }

    [Fact]
    public async Task DeletesAndUpdates_LeaveNoRowBehind()
    {
        var embedder = new CountingEmbedder();
        await using var engine = Open(embedder);
        await engine.EnsureIndexedAsync();
        var ids = await FillAsync(engine);
        await SettleAsync(engine);

        await engine.Memories.DeleteAsync(Me, ids[0]);
        await engine.Memories.DeleteAsync(Me, ids[1]);
        (await engine.Store.CountVectorRowsAsync()).Should().Be(Count - 2, "a delete removes its vectors in its own transaction");

        for (var round = 0; round < 5; round++)
        {
            foreach (var id in ids.Skip(2).Take(5))
            {
                await engine.Memories.UpdateAsync(Me, id, new MemoryPatch { Content = $"rewritten {round} {id}" });
            }
            await SettleAsync(engine);
        }
        (await engine.Store.CountVectorRowsAsync()).Should().Be(Count - 2, "updates replace rows, they never add one per version");

        await engine.Memories.DeleteManyAsync(Me, new MemoryFilter { UserId = "u" }, confirm: true);
        (await engine.Store.CountVectorRowsAsync()).Should().Be(0);
    }

    [Fact]
    public async Task Store_DropsAVectorOfAVersionNoLongerLive_AndFiltersByTenant()
    {
        await using var engine = Open(new CountingEmbedder());
        var created = await engine.Memories.CreateAsync(Me, new NewMemory { Content = "the first words" });
        var id = created.Memory.Id;
        await engine.Memories.UpdateAsync(Me, id, new MemoryPatch { Content = "other words" });
        var store = engine.Store;

        var stale = MemoryVectors.Single(new VectorKey(Caller.DefaultTenant, id, 1), "m", [1f, 0f]);
        (await store.PutVectorsAsync([stale])).Should().Be(0, "version 1 is gone: a late vector of it must not be stored");
        var otherTenant = MemoryVectors.Single(new VectorKey("other", id, 2), "m", [1f, 0f]);
        (await store.PutVectorsAsync([otherTenant])).Should().Be(0, "no memory of that id in that tenant");

        var current = MemoryVectors.Single(new VectorKey(Caller.DefaultTenant, id, 2), "m", [0.6f, -0.8f]);
        (await store.PutVectorsAsync([current])).Should().Be(1);
        var read = await store.GetVectorsAsync([new VectorKey(Caller.DefaultTenant, id, 2)], "m");
        read.Single().Values.Should().Equal(0.6f, -0.8f);
        (await store.GetVectorsAsync([new VectorKey("other", id, 2)], "m")).Should().BeEmpty();
        (await store.GetVectorsAsync([new VectorKey(Caller.DefaultTenant, id, 1)], "m")).Should().BeEmpty();
        (await store.GetVectorsAsync([new VectorKey(Caller.DefaultTenant, id, 2)], "another-model")).Should().BeEmpty();
    }

    [Fact]
    public async Task Store_KeepsSeveralVectorsPerVersion_AsLittleEndianFloat32()
    {
        await using var engine = Open(new CountingEmbedder());
        var id = (await engine.Memories.CreateAsync(Me, new NewMemory { Content = "a long memory in chunks" })).Memory.Id;
        var key = new VectorKey(Caller.DefaultTenant, id, 1);
        (await engine.Store.PutVectorsAsync([new MemoryVectors(key, "m", 3, [1f, 2f, 3f, -4f, 5.5f, 0f])])).Should().Be(1);
        var read = (await engine.Store.GetVectorsAsync([key], "m")).Single();
        read.Count.Should().Be(2);
        read.Vector(1).ToArray().Should().Equal(-4f, 5.5f, 0f);
        Engram.Core.Storage.Sqlite.SqliteMemoryStore.Encode([1f]).Should().Equal(0x00, 0x00, 0x80, 0x3F);
    }
}
