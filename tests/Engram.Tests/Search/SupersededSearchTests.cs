using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

/// <summary>
/// A superseded memory (extraction's SUPERSEDE) is no longer current. Search leaves it out inside the index's
/// filter, before the top-k cut, so k current memories come back even when the superseded ones rank higher.
/// </summary>
public sealed class SupersededSearchTests : IDisposable
{
    private static readonly Caller Me = Caller.Default("test");
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private EngramEngine Open() => EngramEngine.OpenSqlite(_dir.Path, snapshots: true);

    /// <summary>Ten "moved to" facts that match the query best, and five weaker current ones; the ten are superseded.</summary>
    private static async Task<(List<string> Superseded, List<string> Current)> SeedAsync(EngramEngine engine)
    {
        var strong = Enumerable.Range(0, 10).Select(i => (NewMemory?)new NewMemory { Content = $"Alice moved to city number {i}, the city she lives in", UserId = "alice" }).ToList();
        var weak = Enumerable.Range(0, 5).Select(i => (NewMemory?)new NewMemory { Content = $"Alice lives near a park with {i} ponds", UserId = "alice" }).ToList();
        var superseded = (await engine.Memories.CreateBatchAsync(Me, strong)).Select(r => r.Id!).ToList();
        var current = (await engine.Memories.CreateBatchAsync(Me, weak)).Select(r => r.Id!).ToList();
        foreach (var id in superseded)
        {
            await engine.Memories.UpdateAsync(Me, id, new MemoryPatch { SupersededBy = current[0] });
        }
        return (superseded, current);
    }

    private static async Task<List<string>> Search(EngramEngine engine, int k, bool includeSuperseded = false) =>
        (await engine.Search.SearchAsync(Me, new SearchRequest { Query = "Alice moved to the city she lives in", K = k, IncludeSuperseded = includeSuperseded }))
            .Results.Select(r => r.Memory.Id).ToList();

    [Fact]
    public async Task Search_fills_k_with_current_memories_when_superseded_ones_rank_higher()
    {
        await using var engine = Open();
        await engine.EnsureIndexedAsync();
        var (superseded, current) = await SeedAsync(engine);

        var top = await Search(engine, k: 5);
        top.Should().BeEquivalentTo(current, "the five current memories fill k; the ten superseded ones matched better but are not current");

        var all = await Search(engine, k: 15, includeSuperseded: true);
        all.Should().HaveCount(15);
        all.Take(10).Should().BeEquivalentTo(superseded, "asked for, the superseded ones come back and rank first");
    }

    [Fact]
    public async Task The_superseded_flag_survives_an_index_snapshot()
    {
        List<string> current;
        await using (var engine = Open())
        {
            await engine.EnsureIndexedAsync();
            (_, current) = await SeedAsync(engine);
            await engine.Follower.CatchUpAsync();
            (await engine.SaveSnapshotAsync()).Should().BeTrue();
        }
        await using (var engine = Open())
        {
            await engine.EnsureIndexedAsync();
            (await Search(engine, k: 5)).Should().BeEquivalentTo(current, "the index loaded from the snapshot still knows which memories are superseded");
        }
    }
}
