using System.Net;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Embeddings.Transformer;
using Engram.Core.Memories;
using Engram.Core.Storage.Sqlite;
using Engram.Server;
using Engram.Server.Operations;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>/health with every check and its timing, /health/ready's 503, and the checks themselves on a real store.</summary>
public sealed class HealthTests
{
    [Fact]
    public async Task Health_ListsEveryCheckWithStatusTimingAndDetail_KeepingTheOldFields()
    {
        await using var server = await EngramServer.StartAsync();
        await server.CreateAsync(new { content = "one memory" });
        var response = await server.Client.GetAsync("/health");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var body = await response.JsonAsync();
        body.GetProperty("status").GetString().Should().Be("ok");
        body.GetProperty("store").GetString().Should().Be("sqlite");
        body.GetProperty("auth").GetString().Should().Be("open");
        body.GetProperty("read_only").GetBoolean().Should().BeFalse();
        body.GetProperty("ms").GetDouble().Should().BeGreaterThan(0);
        var checks = body.GetProperty("checks").EnumerateArray().ToList();
        checks.Select(c => c.GetProperty("name").GetString()).Should().Equal("store", "store_notices", "disk", "index", "embedder", "read_only", "memory", "llm");
        foreach (var check in checks)
        {
            check.GetProperty("status").GetString().Should().Be("ok", check.ToString());
            check.GetProperty("ms").GetDouble().Should().BeGreaterThanOrEqualTo(0);
            check.GetProperty("detail").GetString().Should().NotBeNullOrEmpty();
        }
        (await server.Client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK);
        ReadOnlyModeTests.Gauge("engram_disk_free_bytes").Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task LowDisk_MakesTheServerUnready_WithTheFindingInHealth()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.Health.MinFreeDiskMB = int.MaxValue);
        var ready = await server.Client.GetAsync("/health/ready");
        ready.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        (await ready.JsonAsync()).GetProperty("status").GetString().Should().Be("unavailable");
        var health = await server.Client.GetAsync("/health");
        health.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        var body = await health.JsonAsync();
        body.GetProperty("status").GetString().Should().Be("unavailable");
        body.GetProperty("error").GetString().Should().StartWith("disk:");
        var disk = body.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "disk");
        disk.GetProperty("status").GetString().Should().Be("fail");
        disk.GetProperty("fix").GetString().Should().NotBeNullOrEmpty();
    }

    [Fact]
    public async Task IndexCheck_FailsWhileTheIndexTrailsTheChangeLogBeyondTheTolerance()
    {
        using var data = new TempDirectory();
        var options = new EngramServerOptions { DataPath = data.Path };
        options.Health.MaxIndexLag = 2;
        await using var engine = EngramEngine.OpenSqlite(data.Path);
        await engine.EnsureIndexedAsync();
        var checks = new HealthChecks(engine, options);
        (await checks.RunAsync()).Ready.Should().BeTrue();

        // Another process's writes (a second store handle): this engine's index has not followed them yet.
        await using (var other = SqliteMemoryStore.Open(data.Path))
        {
            var writer = new MemoryService(other, new(), TimeProvider.System);
            for (var i = 0; i < 3; i++)
            {
                await writer.CreateAsync(Caller.Default("test"), new NewMemory { Content = $"written elsewhere {i}" });
            }
        }
        var behind = await checks.RunAsync();
        behind.Ready.Should().BeFalse();
        behind.Checks.Single(c => c.Name == "index").Detail.Should().Contain("lag 3");

        await engine.Follower.CatchUpAsync();
        (await checks.RunAsync()).Ready.Should().BeTrue();
    }

    [Fact]
    public async Task EmbedderCheck_FailsForAMissingTransformerModel_WithoutLoadingOne()
    {
        using var missing = new TempDirectory();
        using var provider = new TransformerEmbeddingProvider(TransformerModels.ArcticXs, new TransformerOptions { ModelDirectory = missing.Path });
        var (status, detail, fix) = HealthChecks.Describe(provider);
        status.Should().Be(HealthChecks.Fail);
        detail.Should().Contain("no model package");
        fix.Should().NotBeNull();
        provider.IsLoaded.Should().BeFalse();

        // A failed load is kept and reported.
        var embed = () => provider.EmbedAsync("x").AsTask();
        await embed.Should().ThrowAsync<Exception>();
        HealthChecks.Describe(provider).Detail.Should().Contain("failed to load");
    }
}
