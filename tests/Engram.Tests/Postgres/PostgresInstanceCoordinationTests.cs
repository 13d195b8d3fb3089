using System.Diagnostics;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Embeddings;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Storage;
using Engram.Core.Storage.Postgres;
using Engram.Tests.Support;
using Npgsql;
using Xunit.Abstractions;

namespace Engram.Tests.Postgres;

/// <summary>
/// What instances sharing one PostgreSQL database coordinate through it, tested on separate stores (separate
/// pools and sessions, as separate processes have): commit notifications that wake index followers, job
/// locks that keep a job to one instance at a time, and per-instance index snapshots.
/// </summary>
public sealed class PostgresInstanceCoordinationTests(ITestOutputHelper output)
{
    private static readonly Caller Alice = new("default", "test");
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_commit_on_one_instance_notifies_the_others_once_per_transaction_with_its_seq_and_a_write_that_appends_nothing_notifies_nobody()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var writer = PostgresMemoryStore.Open(url);
        await using var listener = PostgresMemoryStore.Open(url);
        var signal = new ChangeSignal();
        using var stop = new CancellationTokenSource();
        var listening = listener.ListenAsync(signal, stop.Token);
        try
        {
            await WaitUntilAsync(() => signal.Listening, "the listener connects");

            var first = await writer.CreateAsync(Alice, TestMemories.New("the first note"), DuplicatePolicy.Allow);
            await WaitUntilAsync(() => signal.NewestSeq == first.Seq, "the commit's notification arrives with its seq");
            signal.Notifications.Should().Be(1);

            // A rejected duplicate appends nothing: no notification. The next real commit's is the only one after it
            // (notifications arrive in commit order, so one for the rejected write would have come first).
            var rejected = () => writer.CreateAsync(Alice, TestMemories.New("the first note"), DuplicatePolicy.Reject);
            await rejected.Should().ThrowAsync<ConflictException>();
            var batch = await writer.CreateManyAsync(Alice, Enumerable.Range(0, 100).Select(i => TestMemories.New($"batch note {i}")).ToList(), DuplicatePolicy.Allow);
            var batchSeq = await writer.GetLastSeqAsync();
            batch.Should().HaveCount(100);
            await WaitUntilAsync(() => signal.NewestSeq == batchSeq, "the batch's notification arrives");
            signal.Notifications.Should().Be(2, "one notification for the batch of 100 (one transaction), none for the rejected duplicate");
        }
        finally
        {
            await stop.CancelAsync();
            await listening;
        }
    }

    [Fact]
    public async Task The_listener_reports_a_dropped_connection_reconnects_by_itself_and_hears_commits_again()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var writer = PostgresMemoryStore.Open(url);
        await using var listener = PostgresMemoryStore.Open(url);
        var signal = new ChangeSignal();
        using var stop = new CancellationTokenSource();
        var listening = listener.ListenAsync(signal, stop.Token);
        try
        {
            await WaitUntilAsync(() => signal.Listening, "the listener connects");
            signal.Connects.Should().Be(1);

            var ended = await TerminateListenersAsync(url);
            ended.Should().Be(1, "one session listens");
            await WaitUntilAsync(() => !signal.Listening || signal.Connects > 1, "the listener notices the dropped connection");
            await WaitUntilAsync(() => signal.Listening && signal.Connects == 2, "the listener reconnects with its backoff");

            var after = await writer.CreateAsync(Alice, TestMemories.New("written after the reconnect"), DuplicatePolicy.Allow);
            await WaitUntilAsync(() => signal.NewestSeq == after.Seq, "commits are heard again");
        }
        finally
        {
            await stop.CancelAsync();
            await listening;
        }
        listening.IsCompletedSuccessfully.Should().BeTrue("cancelling ends the listener without an error");
    }

    [Fact]
    public async Task Notifications_alone_bring_another_instances_index_up_to_date_and_a_burst_of_a_thousand_commits_costs_far_fewer_catch_ups()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var writer = PostgresMemoryStore.Open(url);
        await using var engine = new EngramEngine(PostgresMemoryStore.Open(url), new MemoryLimits(), new SearchOptions(), BuiltinEmbeddingProvider.Default);
        await engine.EnsureIndexedAsync();
        using var stop = new CancellationTokenSource();
        var listening = ((IChangeNotifications)engine.Store).ListenAsync(engine.Changes, stop.Token);
        // A poll interval of an hour: only notifications can wake this follower during the test.
        var wake = new FollowerWake(engine.Changes, TimeSpan.FromHours(1), FollowerWake.DefaultMinGap);
        var catchUps = 0;
        var follow = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (await wake.WaitAsync(stop.Token))
                {
                    catchUps++;
                    await engine.Follower.CatchUpToAsync(engine.Changes.NewestSeq, stop.Token);
                }
            }
        });
        try
        {
            await WaitUntilAsync(() => engine.Changes.Listening, "the listener connects");

            const int Writes = 1_000;
            var elapsed = Stopwatch.StartNew();
            var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
            {
                for (var i = w; i < Writes; i += 8)
                {
                    await writer.CreateAsync(Alice, TestMemories.New($"burst note {i}"), DuplicatePolicy.Allow);
                }
            }));
            await Task.WhenAll(writers);
            var last = await writer.GetLastSeqAsync();
            await WaitUntilAsync(() => engine.Index.AppliedSeq >= last, "the notified follower applies the whole burst");
            elapsed.Stop();

            engine.Index.Count.Should().Be(Writes);
            var bound = (int)(elapsed.Elapsed / wake.MinGap) + 2;
            output.WriteLine($"{Writes} commits in {elapsed.ElapsedMilliseconds} ms: {engine.Changes.Notifications} notifications, {catchUps} catch-ups (rate bound {bound})");
            engine.Changes.Notifications.Should().Be(Writes, "every commit notifies");
            // How far a burst coalesces depends on how fast the commits come (1,000 catch-ups at most, 56 on a quiet machine,
            // 631 at load 20 when the commits themselves spread over a minute); what always holds is the minimum gap.
            catchUps.Should().BeLessThanOrEqualTo(Math.Min(bound, Writes), "notified catch-ups are at least the minimum gap apart");
        }
        finally
        {
            await stop.CancelAsync();
            await listening;
            await follow.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    [Fact]
    public async Task A_job_lock_is_held_by_one_instance_at_a_time_and_a_dead_holder_leaves_it_free()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var a = PostgresMemoryStore.Open(url);
        await using var b = PostgresMemoryStore.Open(url);

        var held = await a.TryLockJobAsync(ExclusiveJobs.Sweeper);
        held.Should().NotBeNull();
        (await b.TryLockJobAsync(ExclusiveJobs.Sweeper)).Should().BeNull("another instance holds the sweeper's lock");
        (await a.TryLockJobAsync(ExclusiveJobs.Sweeper)).Should().BeNull("the lock is per run, not per instance: a second run here waits its turn too");
        await using (var other = await b.TryLockJobAsync(ExclusiveJobs.VectorPruning))
        {
            other.Should().NotBeNull("each job has a lock of its own");
        }

        await held!.DisposeAsync();
        var taken = await b.TryLockJobAsync(ExclusiveJobs.Sweeper);
        taken.Should().NotBeNull("released when the run ends");

        // Released when the dispose returns, not some time after: the other instance asks straight away, many times.
        var holders = new[] { b, a };
        for (var round = 0; round < 40; round++)
        {
            await taken!.DisposeAsync();
            taken = await holders[round % 2].TryLockJobAsync(ExclusiveJobs.Sweeper);
            taken.Should().NotBeNull($"released by the end of the dispose (round {round})");
        }

        // The holder dies (its session ends without a word): the lock goes with it.
        (await TerminateLockHoldersAsync(url)).Should().Be(1);
        await WaitUntilAsync(async () =>
        {
            await using var again = await a.TryLockJobAsync(ExclusiveJobs.Sweeper);
            return again is not null;
        }, "the lock of a dead session is free");
        await taken!.DisposeAsync(); // its session is gone already: disposing is harmless
    }

    [Fact]
    public async Task Runs_of_one_job_on_two_instances_never_overlap_and_both_instances_get_turns()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using var a = PostgresMemoryStore.Open(url);
        await using var b = PostgresMemoryStore.Open(url);
        var running = 0;
        var overlaps = 0;
        var ran = new int[2];
        var skipped = 0;
        var instances = new[] { a, b };
        await Task.WhenAll(Enumerable.Range(0, 2).Select(n => Task.Run(async () =>
        {
            for (var i = 0; i < 40; i++)
            {
                var got = await ExclusiveJobs.RunAsync(instances[n], ExclusiveJobs.Sweeper, async () =>
                {
                    if (Interlocked.Increment(ref running) > 1)
                    {
                        Interlocked.Increment(ref overlaps);
                    }
                    await Task.Delay(5);
                    Interlocked.Decrement(ref running);
                    Interlocked.Increment(ref ran[n]);
                }, CancellationToken.None);
                if (!got)
                {
                    Interlocked.Increment(ref skipped);
                }
            }
        })));
        output.WriteLine($"runs: {ran[0]} and {ran[1]}, skipped {skipped}");
        overlaps.Should().Be(0);
        (ran[0] + ran[1] + skipped).Should().Be(80);
        ran[0].Should().BePositive();
        ran[1].Should().BePositive();
    }

    [Fact]
    public async Task An_instance_restarts_from_its_own_snapshot_and_catches_up_with_what_others_wrote_meanwhile_and_refuses_another_databases_snapshot()
    {
        var server = await PostgresServer.GetAsync();
        // Empty databases, each migrated on first open: each gets a store id of its own (copies of the test template share one).
        var url = server.Url(await server.CreateDatabaseAsync(empty: true));
        var otherUrl = server.Url(await server.CreateDatabaseAsync(empty: true));
        using var folder = new TempDirectory();
        var snapshot = Path.Combine(folder.Path, IndexSnapshot.FileName);
        await using var other = PostgresMemoryStore.Open(url);

        await using (var first = Engine(url, snapshot))
        {
            (await first.EnsureIndexedAsync()).Source.Should().Be("rebuilt");
            for (var i = 0; i < 20; i++)
            {
                await first.Memories.CreateAsync(Alice, new NewMemory { Content = $"written before the restart {i}" });
            }
            await first.Follower.CatchUpAsync();
            (await first.SaveSnapshotAsync(force: true)).Should().BeTrue();
        }
        for (var i = 0; i < 5; i++)
        {
            await other.CreateAsync(Alice, TestMemories.New($"written by another instance meanwhile {i}"), DuplicatePolicy.Allow);
        }

        await using (var restarted = Engine(url, snapshot))
        {
            var report = await restarted.EnsureIndexedAsync();
            report.Source.Should().Be("snapshot", report.Reason);
            restarted.Index.Count.Should().Be(25, "the snapshot's 20 and the 5 read from the log after it");
            restarted.Index.AppliedSeq.Should().Be(await other.GetLastSeqAsync());
        }

        await using (var elsewhere = Engine(otherUrl, snapshot))
        {
            var report = await elsewhere.EnsureIndexedAsync();
            report.Source.Should().Be("rebuilt");
            report.Reason.Should().Contain("another store");
            elsewhere.Index.Count.Should().Be(0);
        }
    }

    private static EngramEngine Engine(string url, string snapshot) =>
        new(PostgresMemoryStore.Open(url), new MemoryLimits(), new SearchOptions(), BuiltinEmbeddingProvider.Default, snapshotPath: snapshot);

    /// <summary>Ends the sessions that listen for commits, as a failover or a dropped connection would.</summary>
    private static Task<int> TerminateListenersAsync(string url) =>
        TerminateAsync(url, $"query = 'LISTEN {PostgresMemoryStore.ChangeChannel}'");

    /// <summary>Ends the sessions that hold an advisory lock, as a killed instance's would end.</summary>
    private static Task<int> TerminateLockHoldersAsync(string url) =>
        TerminateAsync(url, "pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)");

    private static async Task<int> TerminateAsync(string url, string where)
    {
        await using var connection = new NpgsqlConnection(PostgresUrl.ToConnectionString(url) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            $"SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND {where}) ended",
            connection);
        return (int)(long)(await command.ExecuteScalarAsync())!;
    }

    private static Task WaitUntilAsync(Func<bool> condition, string what) => WaitUntilAsync(() => Task.FromResult(condition()), what);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > Patience)
            {
                throw new TimeoutException($"not within {Patience.TotalSeconds:0} s: {what}");
            }
            await Task.Delay(10);
        }
    }
}
