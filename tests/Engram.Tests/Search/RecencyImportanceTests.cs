using Engram.Tests.Support;

namespace Engram.Tests.Search;

/// <summary>
/// Recency and importance have a role by default: a newer fact outranks an older near-duplicate, and an
/// important memory wins a close call. Each case is built so that without the signal the other memory wins
/// (the two differ only in a word no model knows, so their text scores tie and the id order, which favours
/// the memory stored later, decides).
/// </summary>
public sealed class RecencyImportanceTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync(clock: new ManualClock(Now));

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<List<string?>> TopContents(object body) =>
        (await _server.SearchAsync(body)).Select(r => r.GetProperty("content").GetString()).ToList();

    [Fact]
    public async Task ANewerFact_OutranksAnOlderNearDuplicate_ByDefault()
    {
        // The newer fact is stored first, so the id order alone would put the older one on top.
        await _server.CreateAsync(new { content = "my office moved to building b7q", created_at = Now.AddDays(-2) });
        await _server.CreateAsync(new { content = "my office moved to building k3z", created_at = Now.AddDays(-200) });

        (await TopContents(new { query = "which building is my office in", k = 2 }))[0].Should().Be("my office moved to building b7q");
        (await TopContents(new { query = "which building is my office in", k = 2, weights = new { recency = 0 } }))[0]
            .Should().Be("my office moved to building k3z", "without recency the two tie and the id order decides");
    }

    [Fact]
    public async Task AnImportantMemory_WinsACloseCall_ByDefault()
    {
        await _server.CreateAsync(new { content = "the staging deploy key is kept in vault qx7", importance = 0.9, created_at = Now.AddDays(-10) });
        await _server.CreateAsync(new { content = "the staging deploy key is kept in vault zk9", importance = 0.3, created_at = Now.AddDays(-10) });

        (await TopContents(new { query = "where is the staging deploy key kept", k = 2 }))[0].Should().Be("the staging deploy key is kept in vault qx7");
        (await TopContents(new { query = "where is the staging deploy key kept", k = 2, weights = new { importance = 0 } }))[0]
            .Should().Be("the staging deploy key is kept in vault zk9", "without importance the close call goes the other way");
    }

    [Fact]
    public async Task Importance_DoesNotOverrideAClearlyBetterMatch()
    {
        await _server.CreateAsync(new { content = "the staging deploy key is kept in vault qx7", importance = 0.5 });
        await _server.CreateAsync(new { content = "lunch menu for the offsite", importance = 1.0 });

        (await TopContents(new { query = "where is the staging deploy key kept", k = 2 }))[0].Should().Be("the staging deploy key is kept in vault qx7");
    }
}
