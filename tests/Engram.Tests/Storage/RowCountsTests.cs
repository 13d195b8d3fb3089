using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Embeddings;
using Engram.Core.Graph;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Storage;

/// <summary>
/// The counts the writer keeps (schema 11, table row_counts): <c>GET /v1/stats</c> and the metrics read them
/// instead of scanning. Checked against a scan of the rows after every kind of change, across a reopen,
/// and on a store of the previous schema that the migration back-fills.
/// </summary>
public sealed class RowCountsTests : IDisposable
{
    private static readonly Caller Alice = new("default", "test");
    private static readonly Caller Bob = new("team-b", "test");
    private static readonly DateTimeOffset Start = new(2026, 12, 2, 9, 0, 0, TimeSpan.Zero);

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string DbPath => Path.Combine(_dir.Path, SqliteMemoryStore.FileName);

    private static EngramEngine Engine(SqliteMemoryStore store, TimeProvider clock) =>
        new(store, new MemoryLimits(), new SearchOptions(), BuiltinEmbeddingProvider.Default, clock);

    [Fact]
    public async Task Stats_and_counts_stay_exact_through_creates_updates_tier_and_type_changes_deletes_and_ttl_sweeps()
    {
        var clock = new ManualClock(Start);
        await using (var engine = Engine(SqliteMemoryStore.Open(_dir.Path, clock), clock))
        {
            var ids = new List<string>();
            string[] types = ["fact", "preference", "event"];
            MemoryTier[] tiers = [MemoryTier.Working, MemoryTier.ShortTerm, MemoryTier.LongTerm];
            for (var i = 0; i < 30; i++)
            {
                var caller = i % 4 == 3 ? Bob : Alice;
                var written = await engine.Memories.CreateAsync(caller, new NewMemory
                {
                    Content = $"memory number {i}",
                    UserId = "u1",
                    Type = types[i % 3],
                    Tier = tiers[i / 3 % 3],
                    TtlSeconds = i % 5 == 0 ? 60 : null,
                });
                ids.Add(written.Memory.Id);
            }
            await CheckAsync(engine, "after creates");

            await engine.Memories.UpdateAsync(Alice, ids[1], new MemoryPatch { Tier = MemoryTier.Working });
            await engine.Memories.UpdateAsync(Alice, ids[2], new MemoryPatch { Type = "decision" });
            await engine.Memories.UpdateAsync(Alice, ids[4], new MemoryPatch { Tier = MemoryTier.ShortTerm, Type = "note" });
            await engine.Memories.UpdateAsync(Alice, ids[6], new MemoryPatch { Content = "only the content changes" });
            await CheckAsync(engine, "after updates");

            await engine.Memories.DeleteAsync(Alice, ids[8]);
            await engine.Memories.DeleteAsync(Bob, ids[3]);
            await engine.Memories.DeleteManyAsync(Alice, new MemoryFilter { UserId = "u1", Types = ["event"] }, confirm: true);
            await CheckAsync(engine, "after deletes");

            clock.Advance(TimeSpan.FromMinutes(2));
            var stored = await engine.Store.ReadCountsAsync();
            stored.Memories.Values.Sum().Should().Be(RawCount("memories"), "rows past their TTL count until the sweeper deletes them");
            await CheckAsync(engine, "expired but not swept: stats leave them out");

            (await engine.Store.DeleteExpiredAsync(1000)).Should().BeGreaterThan(0);
            await CheckAsync(engine, "after the sweep");
            (await engine.Store.ReadCountsAsync()).Memories.Values.Sum().Should().Be(RawCount("memories"));

            for (var i = 0; i < 5; i++)
            {
                await engine.KeyValue.SetAsync(i == 4 ? Bob : Alice, $"key:{i}", JsonSerializer.SerializeToElement(i), null);
            }
            await engine.KeyValue.DeleteAsync(Alice, "key:0");
            await engine.Graph.CreateEntitiesAsync(Alice, [
                new NewEntity { Name = "Ada", EntityType = "person" },
                new NewEntity { Name = "Babbage", EntityType = "person" },
                new NewEntity { Name = "Engine", EntityType = "machine" },
            ]);
            await engine.Graph.CreateRelationsAsync(Alice, [
                new NewRelation { From = "Ada", To = "Engine", RelationType = "programs" },
                new NewRelation { From = "Babbage", To = "Engine", RelationType = "designs" },
            ]);
            await engine.Graph.DeleteEntitiesAsync(Alice, ["Babbage"]);
            var graph = await engine.Store.ReadCountsAsync();
            graph.GraphEntities.Should().Be(2);
            graph.GraphRelations.Should().Be(1, "deleting an entity deletes its relations");
        }

        // Reopened (the key-value write-behind folded on close): the counts were committed with the rows.
        await using (var engine = Engine(SqliteMemoryStore.Open(_dir.Path, clock), clock))
        {
            var counts = await engine.Store.ReadCountsAsync();
            counts.KvKeys.Should().Be(4).And.Be(RawCount("kv_entries"));
            counts.GraphEntities.Should().Be(RawCount("graph_entities"));
            counts.GraphRelations.Should().Be(RawCount("graph_relations"));
            await CheckAsync(engine, "after a reopen");
        }
    }

    [Fact]
    public async Task A_store_of_the_previous_schema_gets_its_counts_back_filled()
    {
        var clock = new ManualClock(Start);
        // Schema 11 added row_counts: a store of version 10 is the one without them (later migrations add other tables).
        await using (var old = Engine(SqliteMemoryStore.OpenAtSchemaVersion(_dir.Path, 10, clock), clock))
        {
            for (var i = 0; i < 12; i++)
            {
                await old.Memories.CreateAsync(i % 3 == 0 ? Bob : Alice, new NewMemory { Content = $"old memory {i}", Type = i % 2 == 0 ? "fact" : "event" });
            }
            await old.KeyValue.SetAsync(Alice, "k1", JsonSerializer.SerializeToElement("v"), null);
            await old.KeyValue.SetAsync(Bob, "k2", JsonSerializer.SerializeToElement("v"), null);
            await old.Graph.CreateEntitiesAsync(Alice, [new NewEntity { Name = "A", EntityType = "t" }, new NewEntity { Name = "B", EntityType = "t" }]);
            await old.Graph.CreateRelationsAsync(Alice, [new NewRelation { From = "A", To = "B", RelationType = "knows" }]);
        }
        using (var c = SqliteConnection.Open(DbPath, create: false))
        {
            c.ScalarInt64("SELECT count(*) FROM sqlite_master WHERE name = 'row_counts'").Should().Be(0);
        }

        await using var migrated = Engine(SqliteMemoryStore.Open(_dir.Path, clock), clock);
        var counts = await migrated.Store.ReadCountsAsync();
        counts.Memories.Values.Sum().Should().Be(12);
        counts.Memories[("long_term", "fact")].Should().Be(6);
        counts.KvKeys.Should().Be(2);
        counts.GraphEntities.Should().Be(2);
        counts.GraphRelations.Should().Be(1);
        await CheckAsync(migrated, "back-filled");
        await migrated.Memories.CreateAsync(Alice, new NewMemory { Content = "after the migration", Type = "fact" });
        await CheckAsync(migrated, "a write after the back-fill");
    }

    /// <summary>Unfiltered stats (the counters) equal a GROUP BY over the live rows, for both tenants.</summary>
    private async Task CheckAsync(EngramEngine engine, string because)
    {
        var now = ((ManualClock)engine.Clock).GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var caller in new[] { Alice, Bob })
        {
            var stats = await engine.Store.GetStatsAsync(caller);
            var (byType, byTier) = Scan(caller.Tenant, now);
            stats.ByType.Should().Equal(byType, $"{because} ({caller.Tenant}, by type)");
            stats.ByTier.Should().Equal(byTier, $"{because} ({caller.Tenant}, by tier)");
            stats.ByType.Keys.Should().BeInAscendingOrder(StringComparer.Ordinal);
            stats.Total.Should().Be(byType.Values.Sum(), because);
        }
    }

    private (Dictionary<string, long> ByType, Dictionary<string, long> ByTier) Scan(string tenant, long now)
    {
        using var c = SqliteConnection.Open(DbPath, create: false);
        return (By("type"), By("tier"));

        Dictionary<string, long> By(string column)
        {
            var counts = new Dictionary<string, long>();
            using var statement = c.Prepare(
                $"SELECT {column}, COUNT(*) FROM memories WHERE tenant = ?1 AND (expires_at IS NULL OR expires_at > ?2) GROUP BY {column}");
            statement.BindAll([tenant, now]);
            while (statement.Step())
            {
                counts[statement.GetText(0)] = statement.GetInt64(1);
            }
            return counts;
        }
    }

    private long RawCount(string table)
    {
        using var c = SqliteConnection.Open(DbPath, create: false);
        return c.ScalarInt64($"SELECT COUNT(*) FROM {table}") ?? 0;
    }
}
