using System.Net.Http.Json;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Embeddings.Transformer;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;
using Xunit.Abstractions;

namespace Engram.Tests.Durability;

/// <summary>
/// kill -9 with the transformer embedder, whose vectors are written behind the memories by a background worker
/// in relaxed-durability transactions: the acknowledged memories all survive, the stored vectors that survive
/// belong to live memory versions, the restarted server embeds exactly the ones that were lost, and a further
/// restart embeds nothing (ONNX Runtime is never even loaded).
/// </summary>
[Trait("Category", "Durability")]
public sealed class TransformerKillNineTests(ITestOutputHelper output)
{
    private const int Memories = 240;
    private static readonly TimeSpan HealthTimeout = TimeSpan.FromSeconds(60);
    private static readonly Dictionary<string, string> Transformer = new() { ["ENGRAM_EMBEDDINGS"] = "transformer" };
    private static readonly string Model = TransformerModels.ArcticXs.ModelId;

    [Fact]
    public async Task A_kill_during_background_embedding_loses_no_memory_and_the_restart_embeds_only_what_was_lost()
    {
        using var data = new TempDirectory();
        var acknowledged = new Dictionary<string, string>(StringComparer.Ordinal);

        var child = await EngramChildProcess.StartAsync(data.Path, HealthTimeout, Transformer);
        int embeddedBeforeKill;
        try
        {
            using var client = Client(child);
            for (var batch = 0; batch < Memories / 40; batch++)
            {
                var texts = Enumerable.Range(batch * 40, 40).Select(Text).ToList();
                var response = await client.PostAsJsonAsync("/v1/memories/batch?on_duplicate=allow", new { items = texts.Select(t => new { content = t }) });
                response.EnsureSuccessStatusCode();
                using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                var results = body.RootElement.GetProperty("results").EnumerateArray().ToList();
                results.Should().HaveCount(texts.Count);
                for (var i = 0; i < results.Count; i++)
                {
                    results[i].GetProperty("status").GetString().Should().Be("created");
                    acknowledged[results[i].GetProperty("id").GetString()!] = texts[i];
                }
            }
            acknowledged.Should().HaveCount(Memories);
            // Kill while the worker is part-way through (it embeds in batches, writing each batch's vectors).
            embeddedBeforeKill = await WaitForAsync(client, stats => stats.Embedded >= 20, TimeSpan.FromMinutes(3));
            (await child.KillNineAsync()).Should().Be(EngramChildProcess.SigKillExitCode);
        }
        finally
        {
            await child.DisposeAsync();
        }

        long storedAfterKill;
        await using (var store = SqliteMemoryStore.Open(data.Path))
        {
            (await store.IntegrityCheckAsync()).Should().Be("ok");
            foreach (var (id, content) in acknowledged)
            {
                (await store.GetAsync(Caller.Default("test"), id))?.Content.Should().Be(content, "acknowledged memory {0} must survive", id);
            }
            var keys = acknowledged.Keys.Select(id => new VectorKey(Caller.DefaultTenant, id, 1)).ToList();
            var stored = await store.GetVectorsAsync(keys, Model);
            storedAfterKill = await store.CountVectorRowsAsync();
            storedAfterKill.Should().Be(stored.Count, "every stored vector row belongs to a live memory version of the model");
            // The kill may land between a batch's embedding (counted by the server) and its vectors' commit, so none may
            // have reached the store; what did must be whole. The restart below then embeds exactly what is missing.
            stored.Where(v => v.Dimensions != 384 || v.Count < 1).Should().BeEmpty("a stored vector is whole (none at all is fine)");
        }
        output.WriteLine($"embedded before the kill (per the server): {embeddedBeforeKill}; vector rows that survived: {storedAfterKill}");

        // The restart embeds the memories whose vectors were lost, and no others.
        child = await EngramChildProcess.StartAsync(data.Path, HealthTimeout, Transformer);
        try
        {
            using var client = Client(child);
            var embeddedAfterRestart = await WaitForAsync(client, stats => stats.Vectors == Memories && stats.Pending == 0, TimeSpan.FromMinutes(3));
            embeddedAfterRestart.Should().Be(Memories - (int)storedAfterKill, "only the vectors lost with the kill are embedded again");
            child.Terminate();
            (await child.WaitForExitAsync(TimeSpan.FromSeconds(30))).Should().Be(0, "a graceful stop");
        }
        finally
        {
            await child.DisposeAsync();
        }
        await using (var store = SqliteMemoryStore.Open(data.Path))
        {
            (await store.CountVectorRowsAsync()).Should().Be(Memories);
        }

        // A third start has every vector in the store (or its snapshot): the model is never loaded.
        child = await EngramChildProcess.StartAsync(data.Path, HealthTimeout, Transformer);
        try
        {
            using var client = Client(child);
            var embedded = await WaitForAsync(client, stats => stats.Vectors == Memories && stats.Pending == 0, TimeSpan.FromMinutes(1));
            embedded.Should().Be(0);
            File.ReadAllText($"/proc/{child.ProcessId}/maps").Should().NotContain("libonnxruntime", "nothing needed the model");
        }
        finally
        {
            await child.DisposeAsync();
        }
    }

    private static string Text(int i) =>
        $"Note {i}: the team moved the {Topics[i % Topics.Length]} review to {Days[i % Days.Length]} after the incident in sprint {i / 7}.";

    private static readonly string[] Topics = ["database", "billing", "search", "deploy", "onboarding", "security", "mobile"];
    private static readonly string[] Days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];

    private static HttpClient Client(EngramChildProcess child) => new() { BaseAddress = child.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };

    private readonly record struct IndexState(int Vectors, int Pending, int Embedded);

    /// <summary>Polls /v1/stats until <paramref name="done"/>; returns the documents this process has embedded.</summary>
    private static async Task<int> WaitForAsync(HttpClient client, Func<IndexState, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        IndexState state;
        while (true)
        {
            using var stats = JsonDocument.Parse(await client.GetStringAsync("/v1/stats"));
            var index = stats.RootElement.GetProperty("index");
            state = new IndexState(index.GetProperty("vectors").GetInt32(), index.GetProperty("pending_embeddings").GetInt32(),
                index.GetProperty("embedded_vectors").GetInt32());
            if (done(state) || DateTime.UtcNow > deadline)
            {
                break;
            }
            await Task.Delay(100);
        }
        done(state).Should().BeTrue($"the index reached the expected state in time (now {state})");
        return state.Embedded;
    }
}
