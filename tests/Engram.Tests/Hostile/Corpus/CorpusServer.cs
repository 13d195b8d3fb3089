using Engram.Tests.Support;
using Xunit.Abstractions;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// One real server per corpus class, seeded, with its routes read from the running app and a valid
/// sample for each route and method.
/// </summary>
public sealed class CorpusServer : IAsyncLifetime
{
    public EngramServer Server { get; private set; } = null!;

    internal SeededStore Seed { get; private set; } = null!;

    internal IReadOnlyList<ServedRoute> Routes { get; private set; } = [];

    internal IReadOnlyList<RouteSample> Samples { get; private set; } = [];

    /// <summary>The chat routes' model (issue 16): it answers with what it was sent.</summary>
    public FakeChatModel Model { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Model = await FakeChatModel.StartAsync();
        Server = await EngramServer.StartAsync(configure: o =>
        {
            o.Llm.BaseUrl = Model.BaseUrl;
            o.Llm.Model = "fake";
            // Thousands of probes a second from one address: with the default limit, late routes got 429s
            // instead of their own answer (CI after session 16). Rate limiting has its own tests.
            o.RateLimit.PermitsPerSecond = 0;
            o.RateLimit.MaxConcurrentRequests = 0;
        });
        Seed = await SeededStore.SeedAsync(Server);
        Routes = RouteCatalog.Read(Server.Services);
        Samples = RouteSamples.For(Routes);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Model.DisposeAsync();
    }

    /// <summary>The sample's target with its parameters filled (<paramref name="parameters"/> first, raw) and its query plus <paramref name="query"/>.</summary>
    internal string Target(RouteSample sample, IReadOnlyDictionary<string, string>? parameters = null, string query = "")
    {
        var target = sample.Target;
        foreach (var (name, value) in sample.Params)
        {
            var raw = parameters is not null && parameters.TryGetValue(name, out var given) ? given : Resolve(value);
            target = target.Replace("{" + name + "}", raw, StringComparison.Ordinal);
        }
        var all = string.Join("&", new[] { sample.Query, query }.Where(q => q.Length > 0));
        return all.Length == 0 ? target : target + "?" + all;
    }

    private string Resolve(string value) => value.StartsWith('$') ? Seed.Values[value] : Uri.EscapeDataString(value).Replace("%3A", ":", StringComparison.Ordinal);

    /// <summary>
    /// Snapshot, barrage, report, then the verdict: no failed probe, SQLite's integrity check passes, and
    /// the store holds exactly the seeded data plus the writes the barrage had accepted.
    /// </summary>
    internal async Task RunAsync(ITestOutputHelper output, string title, IEnumerable<Probe> probes)
    {
        var before = await SeededStore.SnapshotAsync(Server);
        var barrage = new Barrage(Server);
        await barrage.RunAsync(probes);
        barrage.Report(output, title);
        var after = await SeededStore.SnapshotAsync(Server);
        var integrity = await SeededStore.IntegrityCheckAsync(Server);
        output.WriteLine($"store before: {before.Counts}; after: {after.Counts}; accounted for: {barrage.Ledger.Memories.Count} memories, " +
            $"{barrage.Ledger.Keys.Count} keys, {barrage.Ledger.Entities.Count} entities, {barrage.Ledger.Relations.Count} relations written; integrity_check: {integrity}");
        foreach (var failure in barrage.Failures.Take(400))
        {
            output.WriteLine("FAIL " + failure);
        }

        barrage.Failures.Count.Should().Be(0, $"every hostile request must get what its payload class expects (the test output lists the failures; first: {barrage.Failures.FirstOrDefault()})");
        integrity.Should().Be("ok");
        barrage.Ledger.Unexplained(before, after).Should().BeEmpty("the store must hold the seeded data unchanged plus the accepted writes, nothing else");
        (await Server.Client.GetAsync("/health")).StatusCode.Should().Be(System.Net.HttpStatusCode.OK, "the server keeps serving after the barrage");
    }
}
