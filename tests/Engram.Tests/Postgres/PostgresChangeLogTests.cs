using System.Collections.Concurrent;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Memories;
using Engram.Core.Storage;
using Engram.Core.Storage.Postgres;
using Engram.Tests.Support;

namespace Engram.Tests.Postgres;

/// <summary>
/// What only the PostgreSQL backend has to prove: its change log stays safe for followers while many
/// transactions of several instances (separate pools on one database) commit at once, and its schema
/// refuses a newer version.
/// </summary>
public sealed class PostgresChangeLogTests
{
    private static readonly Caller Alice = new("default", "test");
    private static readonly Caller Bob = new("team-b", "test");

    [Fact]
    public async Task A_follower_paging_the_log_during_concurrent_writes_from_three_instances_sees_every_acknowledged_write_once_in_seq_order()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        var instances = new[] { PostgresMemoryStore.Open(url), PostgresMemoryStore.Open(url), PostgresMemoryStore.Open(url) };
        try
        {
            var acknowledged = new ConcurrentDictionary<long, string>();
            var writersDone = 0;
            const int Writers = 9;
            const int WritesEach = 40;
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
            {
                var store = instances[w % instances.Length];
                var caller = w % 2 == 0 ? Alice : Bob;
                for (var i = 0; i < WritesEach; i++)
                {
                    if (i % 3 == 2)
                    {
                        var key = $"app:{caller.Tenant}:w{w}-{i % 5}";
                        var set = await store.SetKvAsync(caller, new KvWrite(key, i.ToString(System.Globalization.CultureInfo.InvariantCulture), null), WriteDurability.Full);
                        acknowledged.TryAdd(set.Seq, key).Should().BeTrue("a seq is given once");
                    }
                    else
                    {
                        var memory = TestMemories.New($"writer {w} memory {i}");
                        var created = await store.CreateAsync(caller, memory, DuplicatePolicy.Allow);
                        acknowledged.TryAdd(created.Seq, memory.Id).Should().BeTrue("a seq is given once");
                    }
                }
                Interlocked.Increment(ref writersDone);
            })).ToList();

            // The follower reads small pages on a fourth instance while the writers run, then drains the log.
            await using var followerStore = PostgresMemoryStore.Open(url);
            var seen = new List<ChangeRecord>();
            long after = 0;
            while (true)
            {
                var done = Volatile.Read(ref writersDone) == Writers;
                var page = await followerStore.ReadChangesAsync(after, 7);
                foreach (var change in page)
                {
                    change.Seq.Should().Be(after + 1, "seqs are contiguous and become visible in order: a follower can never step over one");
                    after = change.Seq;
                    seen.Add(change);
                }
                if (done && page.Count == 0)
                {
                    break;
                }
            }
            await Task.WhenAll(writers);

            seen.Should().HaveCount(Writers * WritesEach);
            seen.Select(c => c.Seq).Should().OnlyHaveUniqueItems().And.BeInAscendingOrder();
            foreach (var (seq, id) in acknowledged)
            {
                seen.Should().ContainSingle(c => c.Seq == seq).Which.EntityId.Should().Be(id);
            }
            (await followerStore.GetLastSeqAsync()).Should().Be(Writers * WritesEach);
        }
        finally
        {
            foreach (var instance in instances)
            {
                await instance.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_follower_of_one_entity_kind_moves_through_concurrent_writes_without_missing_one_of_its_kind()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var a = PostgresMemoryStore.Open(url);
        await using var b = PostgresMemoryStore.Open(url);
        var kvSeqs = new ConcurrentBag<long>();
        var writers = Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
        {
            var store = w % 2 == 0 ? a : b;
            for (var i = 0; i < 30; i++)
            {
                if (w % 3 == 0)
                {
                    await store.CreateAsync(Alice, TestMemories.New($"m {w} {i}"), DuplicatePolicy.Allow);
                }
                else
                {
                    kvSeqs.Add((await store.SetKvAsync(Alice, new KvWrite($"k:{w}:{i}", "1", null), WriteDurability.Relaxed)).Seq);
                }
            }
        })).ToList();
        var all = Task.WhenAll(writers);
        var seen = new List<long>();
        long through = 0;
        while (true)
        {
            var finished = all.IsCompleted;
            var page = await b.ReadChangesAsync(through, 5, ChangeRecord.KeyValueEntity);
            seen.AddRange(page.Changes.Select(c => c.Seq));
            page.ReadThrough.Should().BeGreaterThanOrEqualTo(through);
            var moved = page.ReadThrough != through;
            through = page.ReadThrough;
            if (finished && !moved && page.Changes.Count == 0)
            {
                break;
            }
        }
        await all;
        seen.Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        seen.Should().BeEquivalentTo(kvSeqs);
    }

    [Fact]
    public async Task Concurrent_duplicate_creates_nx_sets_and_increments_from_several_instances_keep_their_semantics()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        var instances = Enumerable.Range(0, 3).Select(_ => PostgresMemoryStore.Open(url)).ToArray();
        try
        {
            var memory = TestMemories.New("the same fact, written by everyone at once");
            var creates = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Task.Run(() =>
                instances[i % 3].CreateAsync(Alice, memory with { Id = Ulid.NewUlid(DateTimeOffset.UtcNow) }, DuplicatePolicy.Return))));
            creates.Count(r => !r.Duplicate).Should().Be(1, "one create stores the content, the others find it");
            creates.Select(r => r.Memory.Id).Distinct().Should().ContainSingle();

            var nx = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Task.Run(async () =>
            {
                try
                {
                    await instances[i % 3].SetKvAsync(Alice, new KvWrite("lock:default:leader", $"\"{i}\"", null, KvCondition.IfMissing), WriteDurability.Full);
                    return true;
                }
                catch (ConflictException)
                {
                    return false;
                }
            })));
            nx.Count(won => won).Should().Be(1, "nx lets exactly one writer in");

            await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Task.Run(async () =>
            {
                for (var n = 0; n < 10; n++)
                {
                    await instances[i % 3].IncrementKvAsync(Alice, "count:default:hits", 1, null, WriteDurability.Relaxed);
                }
            })));
            (await instances[0].GetKvAsync(Alice, "count:default:hits"))!.ValueJson.Should().Be("120");
        }
        finally
        {
            foreach (var instance in instances)
            {
                await instance.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Open_refuses_a_schema_newer_than_the_binary()
    {
        var server = await PostgresServer.GetAsync();
        var database = await server.CreateDatabaseAsync(empty: true);
        await (PostgresMemoryStore.Open(server.Url(database))).DisposeAsync();
        await using (var connection = new Npgsql.NpgsqlConnection(server.ConnectionString(database)))
        {
            await connection.OpenAsync();
            await using var command = new Npgsql.NpgsqlCommand($"INSERT INTO schema_version(version, applied_at) VALUES ({PostgresSchema.LatestVersion + 3}, 0)", connection);
            await command.ExecuteNonQueryAsync();
        }
        var open = () => PostgresMemoryStore.Open(server.Url(database));
        open.Should().Throw<StoreException>().WithMessage($"*schema version {PostgresSchema.LatestVersion + 3}*newer than this engram*");
    }

    [Theory]
    [InlineData("postgres://u:p%40ss@db.example:6543/engram?sslmode=require", "db.example", 6543, "engram", "u", "p@ss")]
    [InlineData("postgresql://db/engram", "db", 5432, "engram", null, null)]
    public void Store_urls_become_connection_strings(string url, string host, int port, string database, string? user, string? password)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(PostgresUrl.ToConnectionString(url));
        builder.Host.Should().Be(host);
        builder.Port.Should().Be(port);
        builder.Database.Should().Be(database);
        builder.Username.Should().Be(user);
        builder.Password.Should().Be(password);
        PostgresUrl.Redact(url).Should().NotContain("p@ss");
    }
}
