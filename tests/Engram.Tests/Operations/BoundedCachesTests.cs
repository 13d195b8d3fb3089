using System.Net;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Search;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Server.Http;
using Engram.Server.Operations;
using Engram.Tests.Limits;
using Engram.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Engram.Tests.Operations;

/// <summary>
/// Every in-process cache and queue that grows with traffic has a hard bound (issue 14, memory budget): each test fills
/// one past its bound and checks that the bound holds and the documented behaviour happens (drop and count, share an
/// overflow slot, empty and refill). <c>GET /v1/admin/memory</c> lists each with entries, capacity and estimated bytes.
/// </summary>
public sealed class BoundedCachesTests
{
    private static readonly string[] ExpectedParts =
        ["query_vectors", "api_keys", "access_counts", "rate_limit_clients", "failed_auth_addresses", "audit_denied_remotes", "kv_states"];

    private static readonly string[] ExpectedQueues = ["store_writer", "kv_write_behind", "audit_queue", "webhook_queue", "embedding_pending"];

    [Fact]
    public async Task AccessCounts_PastTheBound_AreDroppedAndCounted_WhileWaitingOnesKeepCounting()
    {
        await using var server = await EngramServer.StartAsync();
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add((await server.CreateAsync(new { content = $"accessed memory {i}" })).GetProperty("id").GetString()!);
        }
        var tracker = new AccessTracker(TimeProvider.System) { Capacity = 3 };
        tracker.Record("default", ids);
        tracker.Pending.Should().Be(3);
        tracker.Dropped.Should().Be(2);
        tracker.Record("default", [ids[0], ids[0]]);
        tracker.Pending.Should().Be(3, "a memory already waiting keeps counting");
        tracker.Dropped.Should().Be(2);

        var engine = server.Services.GetRequiredService<EngramEngine>();
        (await tracker.FlushAsync(engine.Store)).Should().Be(3);
        tracker.Pending.Should().Be(0);
        var first = await (await server.Client.GetAsync($"/v1/memories/{ids[0]}")).JsonAsync();
        first.GetProperty("access_count").GetInt64().Should().Be(3);
        var dropped = await (await server.Client.GetAsync($"/v1/memories/{ids[4]}")).JsonAsync();
        dropped.GetProperty("access_count").GetInt64().Should().Be(0, "its access was dropped at the bound");

        // After a flush the bound applies afresh.
        tracker.Record("default", [ids[4]]);
        tracker.Pending.Should().Be(1);
    }

    [Fact]
    public async Task AccessCounts_HoldTheirBound_UnderConcurrentSearches()
    {
        var tracker = new AccessTracker(TimeProvider.System) { Capacity = 100 };
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 500; i++)
            {
                tracker.Record("t", [$"m{t}-{i}", $"shared-{i % 50}"]);
            }
        })));
        tracker.Pending.Should().Be(100, "slots are reserved before they are taken, so concurrent searches cannot overshoot");
        tracker.Dropped.Should().BeGreaterThan(0);
    }

    [Fact]
    public void ClientSet_PastItsBound_SendsNewKeysToTheOverflow_AndForgetsIdleOnes()
    {
        var set = new BoundedKeySet<string>("test_clients", 2, TimeSpan.FromSeconds(10));
        set.Admit("a", 0).Should().BeTrue();
        set.Admit("b", 0).Should().BeTrue();
        set.Admit("c", 500).Should().BeFalse("the set is full");
        set.Admit("a", 600).Should().BeTrue("a known key keeps its slot");
        set.Count.Should().Be(2);
        set.Overflowed.Should().Be(1);

        // "b" has been idle for more than 10 s, "a" has not: the next newcomer takes b's slot.
        set.Admit("a", 9_000).Should().BeTrue();
        set.Admit("c", 11_000).Should().BeTrue();
        set.Admit("d", 11_000).Should().BeFalse("a and c are active");
        set.Count.Should().Be(2);
        set.Overflowed.Should().Be(2);
    }

    [Fact]
    public async Task ClientSet_HoldsItsBound_UnderAFloodOfDistinctKeys()
    {
        var set = new BoundedKeySet<int>("test_flood", 64, TimeSpan.FromMinutes(1));
        var admitted = 0;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                if (set.Admit((t * 10_000) + i))
                {
                    Interlocked.Increment(ref admitted);
                }
            }
        })));
        set.Count.Should().Be(64);
        admitted.Should().Be(64);
        set.Overflowed.Should().Be(80_000 - 64);
    }

    [Fact]
    public async Task RateLimitClients_PastMaxClients_ShareOneLimit_WhileKnownClientsKeepTheirOwn()
    {
        // Two requests per 100 s per client, and room for two clients.
        await using var server = await EngramServer.StartAsync(configure: o =>
            o.RateLimit = new RateLimitOptions { PermitsPerSecond = 0.01, Burst = 2, MaxConcurrentRequests = 0, MaxClients = 2 });
        using var second = LimitsClients.From(IPAddress.Parse("127.0.0.2"), server.BaseAddress);
        using var third = LimitsClients.From(IPAddress.Parse("127.0.0.3"), server.BaseAddress);
        using var fourth = LimitsClients.From(IPAddress.Parse("127.0.0.4"), server.BaseAddress);

        (await server.Client.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await second.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await third.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await third.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
        // The fourth client has never sent anything, yet its first request is refused: it shares the third's (overflow) bucket.
        await (await fourth.GetAsync("/v1/stats")).ShouldBeProblemAsync(HttpStatusCode.TooManyRequests);
        (await second.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK, "a known client keeps a bucket of its own");

        var clients = server.Services.GetRequiredService<BoundedKeySet<RateLimits.ClientKey>>();
        clients.Count.Should().Be(2);
        clients.Overflowed.Should().Be(3);
        var report = await (await server.Client.GetAsync("/v1/admin/memory")).JsonAsync();
        var part = Part(report, "caches", "rate_limit_clients");
        part.GetProperty("entries").GetInt64().Should().Be(2);
        part.GetProperty("capacity").GetInt64().Should().Be(2);
        part.GetProperty("estimated_bytes").GetInt64().Should().Be(2 * BoundedKeySet<string>.EntryBytes);
    }

    [Fact]
    public void FailedAuthAddresses_PastTheBound_ShareOneBucket()
    {
        using var throttle = new FailedAuthThrottle(perMinute: 2, maxAddresses: 2);
        IPAddress A(int last) => IPAddress.Parse($"10.0.0.{last}");
        throttle.TryCount(A(1), out _).Should().BeTrue();
        throttle.TryCount(A(2), out _).Should().BeTrue();
        throttle.TryCount(A(3), out _).Should().BeTrue();
        throttle.TryCount(A(3), out _).Should().BeTrue();
        throttle.TryCount(A(4), out var wait).Should().BeFalse("a new address beyond the bound shares the overflow bucket, spent by 10.0.0.3");
        wait.Should().BeGreaterThan(TimeSpan.Zero);
        throttle.TryCount(A(1), out _).Should().BeTrue("a tracked address keeps its own bucket");
        throttle.Addresses.Count.Should().Be(2);
        throttle.Addresses.Overflowed.Should().Be(3);
    }

    [Fact]
    public async Task ApiKeyCache_PastItsSize_IsEmptiedAndRefilled_AndEveryKeyKeepsWorking()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.Auth.KeyCacheSize = 2);
        var keys = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            keys.Add(await server.CreateKeyAsync("acme", Role.Admin));
        }
        var service = server.Services.GetRequiredService<ApiKeyService>();
        for (var round = 0; round < 2; round++)
        {
            foreach (var key in keys)
            {
                using var client = server.ClientWithKey(key);
                (await client.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
                service.CachedKeys.Should().BeLessThanOrEqualTo(2);
            }
        }
        using var admin = server.ClientWithKey(keys[0]);
        var part = Part(await (await admin.GetAsync("/v1/admin/memory")).JsonAsync(), "caches", "api_keys");
        part.GetProperty("capacity").GetInt64().Should().Be(2);
        part.GetProperty("entries").GetInt64().Should().BeLessThanOrEqualTo(2);
    }

    [Fact]
    public async Task AuditQueue_PastItsCapacity_DropsAndCounts_AndWritesWhatItKept()
    {
        using var data = new TempDirectory();
        await using (var store = Engram.Core.Storage.Sqlite.SqliteMemoryStore.Open(data.Path))
        {
            var held = new HeldAuditLog(store);
            await using (var trail = new AuditTrail(held))
            {
                long pending, dropped;
                try
                {
                    // The first entry is taken by the writer, which then waits on the held store; the queue fills behind it.
                    trail.Enqueue(Entry(0));
                    await held.Entered;
                    for (var i = 1; i <= AuditTrail.QueueCapacity + 50; i++)
                    {
                        trail.Enqueue(Entry(i));
                    }
                    (pending, dropped) = (trail.Pending, trail.Dropped);
                }
                finally
                {
                    held.Release();
                }
                pending.Should().Be(AuditTrail.QueueCapacity + 1, "the queue plus the batch being written");
                dropped.Should().Be(50);
                await trail.FlushAsync();
                trail.Pending.Should().Be(0);
            }
            var page = await store.ReadAuditAsync(new AuditQuery(Tenant: "acme", Limit: 1000));
            page.Items.Should().HaveCount(1000);
            held.Written.Should().Be(AuditTrail.QueueCapacity + 1);
        }
    }

    [Fact]
    public async Task StoreWriterQueue_WhenFull_MakesCallersWait_AndLosesNothing()
    {
        using var data = new TempDirectory();
        using var connection = Engram.Core.Storage.Sqlite.SqliteConnection.Open(Path.Combine(data.Path, "w.db"));
        connection.Execute("CREATE TABLE t (v INTEGER)");
        await using var writer = new Engram.Core.Storage.Sqlite.SqliteWriter(connection, queueCapacity: 8);
        using var gate = new ManualResetEventSlim(false);
        using var running = new ManualResetEventSlim(false);
        // The first write holds the writer's thread (as a slow disk would); the queue fills behind it.
        var blocker = writer.WriteAsync(c =>
        {
            running.Set();
            gate.Wait();
            return c.ExecuteNonQuery("INSERT INTO t VALUES (-1)");
        });
        running.Wait(TimeSpan.FromSeconds(30)).Should().BeTrue();
        var queued = Enumerable.Range(0, 8).Select(i => writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (?1)", i))).ToList();
        writer.QueueLength.Should().Be(8);
        var beyond = Enumerable.Range(8, 4).Select(i => writer.WriteAsync(c => c.ExecuteNonQuery("INSERT INTO t VALUES (?1)", i))).ToList();
        writer.QueueLength.Should().Be(8, "the bound holds: the callers beyond it wait to enqueue instead of growing the queue");
        beyond.Should().OnlyContain(t => !t.IsCompleted);

        gate.Set();
        await blocker;
        await Task.WhenAll(queued.Concat(beyond));
        connection.ScalarInt64("SELECT COUNT(*) FROM t WHERE v >= 0").Should().Be(12, "back-pressure, not dropping: every write lands");
        writer.QueueLength.Should().Be(0);
    }

    [Fact]
    public async Task WebhookQueue_WithAHungReceiver_HoldsItsBound_AndTheMonitorNeverBlocks()
    {
        using var hang = new CancellationTokenSource();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var receiver = builder.Build();
        var received = 0;
        receiver.MapPost("/hook", async () =>
        {
            Interlocked.Increment(ref received);
            await Task.Delay(Timeout.Infinite, hang.Token).ContinueWith(_ => { }, TaskScheduler.Default); // never answers while the test runs
            return Results.NoContent();
        });
        await receiver.StartAsync();
        try
        {
            await using var server = await EngramServer.StartAsync(configure: o =>
            {
                o.Memory.BudgetMB = 1024 * 1024;
                o.Memory.WarningWebhook = receiver.Urls.Single().TrimEnd('/') + "/hook";
                o.Memory.SampleIntervalMilliseconds = 60_000;
            });
            var monitor = server.Services.GetRequiredService<MemoryMonitor>();
            for (var i = 0; i < 40; i++)
            {
                monitor.Budget = new MemoryBudget(1024 * 1024, "test"); // over: a shedding note
                monitor.Sample().Shedding.Should().BeTrue();
                monitor.Budget = new MemoryBudget(1L << 40, "test"); // under: a recovered note
                monitor.Sample().Shedding.Should().BeFalse();
            }
            monitor.WebhookPending.Should().BeLessThanOrEqualTo(MemoryMonitor.WebhookQueueCapacity);
            monitor.WebhookPending.Should().BeGreaterThanOrEqualTo(MemoryMonitor.WebhookQueueCapacity - 1, "80 notes, one in flight at most, the rest beyond the bound dropped");
            var report = await (await server.Client.GetAsync("/v1/admin/memory")).JsonAsync();
            Part(report, "queues", "webhook_queue").GetProperty("capacity").GetInt64().Should().Be(MemoryMonitor.WebhookQueueCapacity);
            Volatile.Read(ref received).Should().BeLessThanOrEqualTo(1, "one sender, stuck on the first post");
        }
        finally
        {
            await hang.CancelAsync();
        }
    }

    [Fact]
    public async Task AdminMemory_ListsEveryBoundedPart_WithCountCapacityAndBytes_SizedFromTheBudget()
    {
        // 1,200 MB: small enough that 1 % of it caps each part below its default. The whole suite's process can be
        // far above it (every test's server shares it), and then the monitor sheds writes: this test only reads.
        await using var server = await EngramServer.StartAsync(configure: o => o.Memory.BudgetMB = 1200);
        await server.SearchAsync(new { query = "memory" });
        var report = await (await server.Client.GetAsync("/v1/admin/memory")).JsonAsync();

        var caches = report.GetProperty("caches").EnumerateArray().ToList();
        caches.Select(c => c.GetProperty("name").GetString()).Should().Contain(ExpectedParts);
        foreach (var cache in caches)
        {
            cache.GetProperty("capacity").ValueKind.Should().Be(JsonValueKind.Number, $"{cache} has a bound");
            cache.GetProperty("entries").GetInt64().Should().BeLessThanOrEqualTo(cache.GetProperty("capacity").GetInt64());
            cache.GetProperty("estimated_bytes").ValueKind.Should().Be(JsonValueKind.Number);
        }
        var queues = report.GetProperty("queues").EnumerateArray().ToList();
        queues.Select(q => q.GetProperty("name").GetString()).Should().Contain(ExpectedQueues);
        queues.Where(q => q.GetProperty("name").GetString() != "embedding_pending")
            .Should().OnlyContain(q => q.GetProperty("capacity").ValueKind == JsonValueKind.Number);

        // Sized from the budget: 1 % of 1,200 MB each.
        var budget = MemoryBudget.Resolve(1200);
        Part(report, "caches", "access_counts").GetProperty("capacity").GetInt64().Should().Be(budget.AccessCounts());
        Part(report, "caches", "access_counts").GetProperty("capacity").GetInt64().Should().Be(1200L * 1024 * 1024 / 100 / AccessTracker.EntryBytes);
        Part(report, "caches", "rate_limit_clients").GetProperty("capacity").GetInt64().Should().Be(1200L * 1024 * 1024 / 100 / BoundedKeySet<string>.EntryBytes);
        Part(report, "caches", "failed_auth_addresses").GetProperty("capacity").GetInt64().Should().Be(1200L * 1024 * 1024 / 100 / BoundedKeySet<string>.EntryBytes);
        Part(report, "caches", "query_vectors").GetProperty("entries").GetInt64().Should().Be(1);
        // Key-value states: 10 % of the budget (below the 128 MB default), so 120 MB.
        Part(report, "caches", "kv_states").GetProperty("note").GetString().Should().Contain("120 MB");
        var options = new Engram.Server.EngramServerOptions();
        budget.CapCaches(options);
        options.KeyValue.CacheMB.Should().Be(120);
    }

    [Fact]
    public void Budget_SizesEveryPart_NeverAboveItsSetting_NeverBelowItsFloor()
    {
        var small = new Engram.Server.EngramServerOptions();
        var tiny = MemoryBudget.Resolve(1);
        tiny.CapCaches(small);
        small.RateLimit.MaxClients.Should().Be(MemoryBudget.MinClients);
        tiny.AccessCounts().Should().Be(1024);

        var large = new Engram.Server.EngramServerOptions();
        var huge = MemoryBudget.Resolve(1024 * 1024);
        huge.CapCaches(large);
        large.RateLimit.MaxClients.Should().Be(new RateLimitOptions().MaxClients, "a cap never raises the configured size");
        large.KeyValue.CacheMB.Should().Be(new Engram.Core.KeyValue.KvOptions().CacheMB);
        small.KeyValue.CacheMB.Should().Be(0, "a 1 MB budget keeps only the states waiting to be folded");
        huge.AccessCounts().Should().Be(AccessTracker.MaxPending);
    }

    [Fact]
    public async Task AdminMemory_LargestTenants_AnUnscopedAdminSeesEveryTenant_AScopedAdminKeyIsRefused()
    {
        await using var server = await EngramServer.StartAsync();
        var acmeAdmin = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Admin));
        var globexWriter = server.ClientWithKey(await server.CreateKeyAsync("globex", Role.Write));
        (await acmeAdmin.PostAsync("/v1/memories", Json("""{"content":"acme memory"}"""))).StatusCode.Should().Be(HttpStatusCode.Created);
        for (var i = 0; i < 2; i++)
        {
            (await globexWriter.PostAsync("/v1/memories", Json($$"""{"content":"globex memory {{i}}"}"""))).StatusCode.Should().Be(HttpStatusCode.Created);
        }

        // An unscoped admin key operates the server: every tenant, largest first (it may act in any tenant with X-Engram-Tenant anyway).
        var report = await (await acmeAdmin.GetAsync("/v1/admin/memory")).JsonAsync();
        for (var wait = 0; wait < 200 && report.GetProperty("largest_tenants").GetArrayLength() < 2; wait++)
        {
            await Task.Delay(50); // the index follows the store's change log; the report reads the index
            report = await (await acmeAdmin.GetAsync("/v1/admin/memory")).JsonAsync();
        }
        report.GetProperty("largest_tenants").EnumerateArray().Select(t => (t.GetProperty("tenant").GetString(), t.GetProperty("memories").GetInt32()))
            .Should().Equal(("globex", 2), ("acme", 1));

        // A scoped admin key is confined to a user or agent inside its tenant: even its tenant's total counts other scopes, so it gets nothing.
        using var scoped = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Admin, new KeyScope("alice", null)));
        var refused = await scoped.GetAsync("/v1/admin/memory");
        var text = await refused.Content.ReadAsStringAsync();
        await refused.ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        text.Should().NotContain("globex").And.NotContain("largest_tenants");
        using var writer = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Write));
        await (await writer.GetAsync("/v1/admin/memory")).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
    }

    private static StringContent Json(string body) => new(body, System.Text.Encoding.UTF8, "application/json");

    private static JsonElement Part(JsonElement report, string list, string name) =>
        report.GetProperty(list).EnumerateArray().Single(p => p.GetProperty("name").GetString() == name);

    private static AuditEntry Entry(int i) => new(DateTimeOffset.UtcNow, "acme", "test", "test.entry", $"t{i}", AuditActions.Ok);

    /// <summary>The real store's audit log, held shut until released: the trail's writer waits in it, as behind a slow disk.</summary>
    private sealed class HeldAuditLog(IAuditLog inner) : IAuditLog
    {
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _written;

        public Task Entered => _entered.Task;

        public int Written => Volatile.Read(ref _written);

        public void Release() => _release.TrySetResult();

        public async Task AppendAuditAsync(IReadOnlyList<AuditEntry> entries, int maxRows, CancellationToken ct = default)
        {
            _entered.TrySetResult();
            await _release.Task;
            await inner.AppendAuditAsync(entries, maxRows, ct);
            Interlocked.Add(ref _written, entries.Count);
        }

        public Task<AuditPage> ReadAuditAsync(AuditQuery query, CancellationToken ct = default) => inner.ReadAuditAsync(query, ct);
    }
}
