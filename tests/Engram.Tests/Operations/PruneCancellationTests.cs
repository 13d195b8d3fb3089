using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Operations;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>A cancelled prune (Ctrl-C in the CLI) stops between batches: what it deleted is deleted whole, the rest is untouched.</summary>
public sealed class PruneCancellationTests
{
    [Fact]
    public async Task A_prune_cancelled_after_its_first_batch_has_deleted_that_batch_whole_and_nothing_else()
    {
        using var data = new TempDirectory();
        await using var engine = EngramEngine.OpenSqlite(data.Path);
        var caller = Caller.Default("test");
        for (var i = 0; i < 1200; i += 200)
        {
            await engine.Memories.CreateBatchAsync(caller, [.. Enumerable.Range(i, 200).Select(n => (NewMemory?)new NewMemory { Content = $"note {n}", Type = "observation" })]);
        }
        await engine.Memories.CreateAsync(caller, new NewMemory { Content = "a fact to keep", Type = "fact" });

        using var cancel = new CancellationTokenSource();
        var seen = new List<OperationProgress>();
        var report = await StoreMaintenance.PruneAsync(engine.Store, engine.Memories, caller, new MemoryFilter { Types = ["observation"] }, dryRun: false,
            progress: new InlineProgress(p =>
            {
                seen.Add(p);
                cancel.Cancel();
            }), ct: cancel.Token);

        report.Cancelled.Should().BeTrue();
        report.Matched.Should().Be(1200);
        report.Deleted.Should().Be(500, "the batch under way when Ctrl-C came finishes; no later one starts");
        seen.Should().ContainSingle().Which.Done.Should().Be(500);
        var stats = await engine.Store.GetStatsAsync(caller);
        stats.ByType["observation"].Should().Be(700);
        stats.ByType["fact"].Should().Be(1);
        var changes = await engine.Store.ReadChangesAsync(0, 10_000);
        changes.Count(c => c.Op == "delete").Should().Be(500, "every delete has its change-log entry, so the indexes follow");

        var rest = await StoreMaintenance.PruneAsync(engine.Store, engine.Memories, caller, new MemoryFilter { Types = ["observation"] }, dryRun: false);
        rest.Cancelled.Should().BeFalse();
        rest.Deleted.Should().Be(700);
        (await engine.Store.GetStatsAsync(caller)).Total.Should().Be(1);
    }

    private sealed class InlineProgress(Action<OperationProgress> report) : IProgress<OperationProgress>
    {
        public void Report(OperationProgress value) => report(value);
    }
}
