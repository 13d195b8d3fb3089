using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Embeddings;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

public sealed class IndexSnapshotTests : IDisposable
{
    private static readonly Caller Me = Caller.Default("test");
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string SnapshotFile => Path.Combine(_dir.Path, IndexSnapshot.FileName);

    private EngramEngine Open(IEmbeddingProvider? embedder = null, string? folder = null) =>
        EngramEngine.OpenSqlite(folder ?? _dir.Path, embedder: embedder, snapshots: true);

    private static async Task<List<string>> Ids(EngramEngine engine, string query, object? filters = null) =>
        (await engine.Search.SearchAsync(Me, new SearchRequest { Query = query, K = 20, Filters = filters as SearchFilters }))
            .Results.Select(r => r.Memory.Id).ToList();

    private static async Task Fill(EngramEngine engine, int count, string prefix)
    {
        var items = Enumerable.Range(0, count).Select(i => (NewMemory?)new NewMemory
        {
            Content = $"{prefix} {i}: the team discussed {(i % 3 == 0 ? "budget planning" : i % 3 == 1 ? "hiking trips" : "database backups")} on day {i}",
            UserId = i % 2 == 0 ? "even" : "odd",
            Tags = [i % 5 == 0 ? "five" : "other"],
        }).ToList();
        await engine.Memories.CreateBatchAsync(Me, items);
    }

    [Fact]
    public async Task A_snapshot_is_written_again_when_vectors_move_into_the_graph_without_a_new_write()
    {
        await using var engine = Open();
        await engine.EnsureIndexedAsync();
        await Fill(engine, 50, "note");
        await engine.Follower.CatchUpAsync();
        engine.Index.StagedVectors.Should().Be(50, "the follower stages vectors; the drain moves them into the graph");
        (await engine.SaveSnapshotAsync()).Should().BeTrue();
        (await engine.SaveSnapshotAsync()).Should().BeFalse("nothing moved since");

        engine.Index.DrainStaged(1_000).Should().Be(50);

        // No write moved the sequence number, but the snapshot still holds the vectors as staged: a restart
        // would insert every one of them into the graph again.
        (await engine.SaveSnapshotAsync()).Should().BeTrue();
    }

    [Fact]
    public async Task Restart_LoadsTheSnapshot_CatchesUpLaterWrites_AndAnswersLikeARebuild()
    {
        List<string> before, beforeFiltered;
        await using (var engine = Open())
        {
            (await engine.EnsureIndexedAsync()).Source.Should().Be("rebuilt");
            await Fill(engine, 300, "note");
            var gone = (await engine.Memories.ListAsync(Me, MemoryFilter.None, 1)).Items[0].Id;
            await engine.Memories.DeleteAsync(Me, gone);
            before = await Ids(engine, "budget planning");
            beforeFiltered = await Ids(engine, "hiking", new SearchFilters { UserId = "odd", Tags = ["five"] });
            (await engine.SaveSnapshotAsync()).Should().BeTrue();
            // Written after the snapshot: must come from the change log on the next start.
            await engine.Memories.CreateAsync(Me, new NewMemory { Content = "late addition about budget planning for the offsite" });
        }
        File.Exists(SnapshotFile).Should().BeTrue();

        await using var reopened = Open();
        var report = await reopened.EnsureIndexedAsync();
        report.Source.Should().Be("snapshot", report.Reason);
        report.Memories.Should().Be(300, "300 created, 1 deleted, 1 added after the snapshot");
        var after = await Ids(reopened, "budget planning");
        after.Should().HaveCount(before.Count);
        (await reopened.Search.SearchAsync(Me, new SearchRequest { Query = "late addition offsite", K = 1 })).Results.Single().Memory.Content.Should().Contain("late addition");
        (await Ids(reopened, "hiking", new SearchFilters { UserId = "odd", Tags = ["five"] })).Should().Equal(beforeFiltered);

        // The same answers as an index rebuilt from scratch.
        var rebuilt = await reopened.RebuildAsync();
        rebuilt.Memories.Should().Be(300);
        (await Ids(reopened, "budget planning")).Should().Equal(after);
    }

    [Fact]
    public async Task Snapshot_KeepsEachMemorysEntities_ForTheEntityFilter()
    {
        List<string> dana, erin;
        await using (var engine = Open())
        {
            await engine.EnsureIndexedAsync();
            var items = Enumerable.Range(0, 40).Select(i => (NewMemory?)new NewMemory
            {
                Content = $"entry {i} about the garden project",
                Entities = i % 4 == 0 ? ["Dana", "Erin"] : i % 2 == 0 ? ["dana"] : [],
            }).ToList();
            await engine.Memories.CreateBatchAsync(Me, items);
            dana = await Ids(engine, "garden project", new SearchFilters { Entity = "DANA" });
            erin = await Ids(engine, "garden project", new SearchFilters { Entity = "erin" });
            dana.Should().HaveCount(20);
            erin.Should().HaveCount(10);
            (await engine.SaveSnapshotAsync()).Should().BeTrue();
        }

        await using var reopened = Open();
        (await reopened.EnsureIndexedAsync()).Source.Should().Be("snapshot");
        (await Ids(reopened, "garden project", new SearchFilters { Entity = "Dana" })).Should().BeEquivalentTo(dana);
        (await Ids(reopened, "garden project", new SearchFilters { Entity = "Erin" })).Should().BeEquivalentTo(erin);
        (await Ids(reopened, "garden project", new SearchFilters { Entity = "Nobody" })).Should().BeEmpty();
        // The names a query can mention come back with the doc table: the boost still finds Erin.
        var boosted = await reopened.Search.SearchAsync(Me, new SearchRequest { Query = "Erin garden project", K = 20, Explain = true });
        boosted.Results.Where(r => r.Explain!.Entity == 1).Select(r => r.Memory.Id).Should().BeEquivalentTo(erin);
    }

    [Fact]
    public async Task SnapshotOfAnOlderFormatVersion_IsRefusedAndRebuilt()
    {
        await using (var engine = Open())
        {
            await engine.EnsureIndexedAsync();
            await Fill(engine, 10, "old");
            await engine.SaveSnapshotAsync();
        }
        // Format 1 had no entities in the doc table: mark the file as version 1 with a valid checksum.
        var bytes = await File.ReadAllBytesAsync(SnapshotFile);
        BitConverter.GetBytes(1).CopyTo(bytes, "ENGRAMIX".Length);
        System.Security.Cryptography.SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32)).CopyTo(bytes, bytes.Length - 32);
        await File.WriteAllBytesAsync(SnapshotFile, bytes);

        await using var reopened = Open();
        var report = await reopened.EnsureIndexedAsync();
        report.Source.Should().Be("rebuilt");
        report.Reason.Should().Contain("format version");
        report.Memories.Should().Be(10);
    }

    [Theory]
    [InlineData("flip", "checksum")]
    [InlineData("truncate", "truncated")]
    [InlineData("garbage", "truncated")]
    public async Task DamagedSnapshot_IsRefusedWithAReason_AndTheIndexIsRebuilt(string damage, string reason)
    {
        await using (var engine = Open())
        {
            await engine.EnsureIndexedAsync();
            await Fill(engine, 50, "memo");
            await engine.SaveSnapshotAsync();
        }
        var bytes = await File.ReadAllBytesAsync(SnapshotFile);
        switch (damage)
        {
            case "flip":
                bytes[bytes.Length / 2] ^= 0x5A;
                await File.WriteAllBytesAsync(SnapshotFile, bytes);
                break;
            case "truncate":
                await File.WriteAllBytesAsync(SnapshotFile, bytes[..20]);
                break;
            default:
                await File.WriteAllTextAsync(SnapshotFile, "not a snapshot");
                break;
        }
        await using var reopened = Open();
        var report = await reopened.EnsureIndexedAsync();
        report.Source.Should().Be("rebuilt");
        report.Reason.Should().Contain(reason);
        report.Memories.Should().Be(50);
        (await Ids(reopened, "database backups")).Should().NotBeEmpty();
        // The rebuild wrote a good snapshot again.
        await using var third = Open();
        (await third.EnsureIndexedAsync()).Source.Should().Be("snapshot");
    }

    [Fact]
    public async Task SnapshotOfAnotherModelOrStore_IsNotUsed()
    {
        await using (var engine = Open())
        {
            await engine.EnsureIndexedAsync();
            await Fill(engine, 20, "item");
            await engine.SaveSnapshotAsync();
        }
        await using (var otherModel = Open(new HashEmbeddingProvider(64)))
        {
            var report = await otherModel.EnsureIndexedAsync();
            report.Source.Should().Be("rebuilt");
            report.Reason.Should().Contain("model");
        }

        using var elsewhere = new TempDirectory();
        await using (var other = Open(folder: elsewhere.Path))
        {
            await other.EnsureIndexedAsync();
        }
        File.Copy(SnapshotFile, Path.Combine(elsewhere.Path, IndexSnapshot.FileName), overwrite: true);
        await using var foreign = Open(folder: elsewhere.Path);
        var foreignReport = await foreign.EnsureIndexedAsync();
        foreignReport.Source.Should().Be("rebuilt");
        foreignReport.Reason.Should().Contain("another store");
        foreignReport.Memories.Should().Be(0);
    }

    [Fact]
    public async Task Rebuild_ReportsProgress()
    {
        await using var engine = Open();
        await engine.EnsureIndexedAsync();
        for (var i = 0; i < 5; i++)
        {
            await Fill(engine, 1000, $"bulk{i}");
        }
        var reports = new List<(string Phase, long Done, long Total)>();
        var progress = new SynchronousProgress(reports);
        var result = await engine.RebuildAsync(progress);
        result.Memories.Should().Be(5000);
        var changes = reports.Where(r => r.Phase == "changes").ToList();
        changes.Should().HaveCountGreaterThan(1);
        changes.Select(r => r.Done).Should().BeInAscendingOrder();
        changes[^1].Done.Should().Be(changes[^1].Total);
        var vectors = reports.Where(r => r.Phase == "vectors").ToList();
        vectors.Should().NotBeEmpty();
        vectors[^1].Done.Should().Be(5000, "every vector ends up in the graph");
        engine.Index.StagedVectors.Should().Be(0);
    }

    private sealed class SynchronousProgress(List<(string, long, long)> reports) : IProgress<(string Phase, long Done, long Total)>
    {
        public void Report((string Phase, long Done, long Total) value) => reports.Add(value);
    }
}
