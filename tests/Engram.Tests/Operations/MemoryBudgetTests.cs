using System.Net;
using Engram.Server.Operations;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Operations;

/// <summary>The memory budget: load shedding over 95 % (writes 503, reads 200) until back under 85 %, and the admin memory routes.</summary>
public sealed class MemoryBudgetTests
{
    [Fact]
    public async Task OverBudget_ShedsWrites_ServesReads_AndResumesOnceUnder()
    {
        // 1 MB: far below any working set, so the first sample (at start) sheds.
        await using var server = await EngramServer.StartAsync(configure: o => o.Memory.BudgetMB = 1);
        var monitor = server.Services.GetRequiredService<MemoryMonitor>();
        monitor.Sample().Shedding.Should().BeTrue();

        var problem = await (await server.PostJsonAsync("/v1/memories", """{"content":"shed"}""")).ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable);
        problem.GetProperty("detail").GetString().Should().StartWith("memory budget exceeded");
        problem.GetProperty("reason").GetString().Should().Be("memory_budget");
        await (await server.SendJsonAsync("PUT", "/v1/kv/k", """{"value":1}""")).ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable);
        (await server.Client.GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await server.PostJsonAsync("/v1/search", """{"query":"anything"}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        await using (var mcp = await McpConnections.ConnectHttpAsync(server))
        {
            (await mcp.CallAsync("memory_store", """{"content":"shed over mcp"}""")).Text().Should().StartWith("unavailable: memory budget exceeded");
        }

        var health = await (await server.Client.GetAsync("/health")).JsonAsync();
        health.GetProperty("shedding").GetBoolean().Should().BeTrue();
        health.GetProperty("status").GetString().Should().Be("degraded");
        (await server.Client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK, "shedding writes does not take reads out of service");
        ReadOnlyModeTests.Gauge("engram_write_shedding").Should().Be(1);

        // Raised (an operator restarts with a larger budget, or memory is freed): writes resume at the next sample.
        monitor.Budget = new MemoryBudget(1L << 40, "test");
        monitor.Sample().Shedding.Should().BeFalse();
        await server.CreateAsync(new { content = "accepted again" });
    }

    [Fact]
    public async Task Shedding_HasHysteresis_StartsAt95AndStopsUnder85()
    {
        await using var server = await EngramServer.StartAsync();
        var monitor = server.Services.GetRequiredService<MemoryMonitor>();
        MemoryBudget At(double ratio) => new((long)(MemoryMonitor.WorkingSet() / ratio), "test");

        monitor.Budget = At(0.5);
        monitor.Sample().Shedding.Should().BeFalse();
        monitor.Budget = At(0.9);
        var warned = monitor.Sample();
        warned.Warning.Should().BeTrue();
        warned.Shedding.Should().BeFalse("90 % warns but does not shed");
        monitor.Budget = At(1.5);
        monitor.Sample().Shedding.Should().BeTrue();
        monitor.Budget = At(0.9);
        monitor.Sample().Shedding.Should().BeTrue("once shedding, writes stay refused until under 85 %");
        monitor.Budget = At(0.5);
        monitor.Sample().Shedding.Should().BeFalse();
    }

    [Fact]
    public async Task AdminMemory_ReportsWorkingSetGcCachesIndexesAndLargestTenants()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.Memory.BudgetMB = 64 * 1024);
        for (var i = 0; i < 3; i++)
        {
            await server.CreateAsync(new { content = $"memory number {i}" });
        }
        await server.SearchAsync(new { query = "memory number" });
        var report = await (await server.Client.GetAsync("/v1/admin/memory")).JsonAsync();
        report.GetProperty("working_set_bytes").GetInt64().Should().BeGreaterThan(0);
        report.GetProperty("budget_bytes").GetInt64().Should().Be(64L * 1024 * 1024 * 1024);
        report.GetProperty("budget_source").GetString().Should().Be("ENGRAM_MEMORY_BUDGET_MB");
        report.GetProperty("gc").GetProperty("generations").EnumerateArray().Select(g => g.GetProperty("generation").GetString())
            .Should().Contain(["gen0", "gen1", "gen2", "loh"]);
        report.GetProperty("caches").EnumerateArray().Select(c => c.GetProperty("name").GetString()).Should().Contain(["query_vectors", "api_keys"]);
        var queryCache = report.GetProperty("caches").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "query_vectors");
        queryCache.GetProperty("entries").GetInt64().Should().BeGreaterThan(0);
        report.GetProperty("indexes").EnumerateArray().Single(i => i.GetProperty("name").GetString() == "lexical_and_documents")
            .GetProperty("entries").GetInt64().Should().Be(3);
        var tenant = report.GetProperty("largest_tenants").EnumerateArray().Single();
        tenant.GetProperty("tenant").GetString().Should().Be("default");
        tenant.GetProperty("memories").GetInt32().Should().Be(3);

        var cleanup = await (await server.SendJsonAsync("POST", "/v1/admin/cache/cleanup")).JsonAsync();
        cleanup.GetProperty("freed").EnumerateArray().Single(f => f.GetProperty("name").GetString() == "query_vectors")
            .GetProperty("entries").GetInt64().Should().BeGreaterThan(0);
        var after = await (await server.Client.GetAsync("/v1/admin/memory")).JsonAsync();
        after.GetProperty("caches").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "query_vectors").GetProperty("entries").GetInt64().Should().Be(0);

        var gc = await (await server.SendJsonAsync("POST", "/v1/admin/gc")).JsonAsync();
        gc.GetProperty("working_set_before_bytes").GetInt64().Should().BeGreaterThan(0);
        gc.GetProperty("working_set_after_bytes").GetInt64().Should().BeGreaterThan(0);
        gc.GetProperty("heap_after_bytes").GetInt64().Should().BeGreaterThan(0);
        // A second call straight after does not stop the process again: it answers the last collection's report.
        var again = await (await server.SendJsonAsync("POST", "/v1/admin/gc")).JsonAsync();
        again.GetProperty("skipped").GetBoolean().Should().BeTrue();
        again.GetProperty("working_set_after_bytes").GetInt64().Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task Monitor_SamplesAndExposesItsValues()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.Memory.BudgetMB = 32 * 1024);
        var monitor = server.Services.GetRequiredService<MemoryMonitor>();
        var sample = monitor.Sample();
        sample.WorkingSetBytes.Should().BeGreaterThan(0);
        sample.BudgetBytes.Should().Be(32L * 1024 * 1024 * 1024);
        sample.Ratio.Should().BeGreaterThan(0);
        monitor.Last.Should().NotBeNull();
        ReadOnlyModeTests.Gauge("engram_process_working_set_bytes").Should().BeGreaterThan(0);
        ReadOnlyModeTests.Gauge("engram_memory_budget_bytes").Should().BeGreaterThan(0);
        ReadOnlyModeTests.Gauge("engram_memory_budget_used_ratio").Should().BeGreaterThan(0);
    }

    [Fact]
    public void Budget_DefaultsToTheCgroupLimitOrHalfTheMachine_AndCapsTheCaches()
    {
        var automatic = MemoryBudget.Resolve(0);
        automatic.Bytes.Should().BeGreaterThan(0);
        automatic.Source.Should().BeOneOf("the cgroup memory limit", "half the machine's RAM");
        automatic.Bytes.Should().BeLessThanOrEqualTo(MemoryBudget.MachineMemory());
        MemoryBudget.Resolve(512).Bytes.Should().Be(512L * 1024 * 1024);

        var options = new Engram.Server.EngramServerOptions();
        MemoryBudget.Resolve(64).CapCaches(options); // 1 % of 64 MB
        options.Search.QueryCacheSize.Should().Be((int)(64L * 1024 * 1024 / 100 / MemoryBudget.QueryVectorBytes));
        options.Auth.KeyCacheSize.Should().Be((int)(64L * 1024 * 1024 / 100 / MemoryBudget.ApiKeyBytes));
        var large = new Engram.Server.EngramServerOptions();
        MemoryBudget.Resolve(1024 * 1024).CapCaches(large);
        large.Search.QueryCacheSize.Should().Be(new Engram.Core.Search.SearchOptions().QueryCacheSize, "a cap never raises the configured size");
    }
}
