using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Engram.Benchmarks.KeyValue;
using Engram.Benchmarks.Store;

namespace Engram.Benchmarks.Backends;

/// <summary>
/// How soon a write is searchable: on the instance that took it (read-your-writes) and on another instance on
/// the same database. <see cref="OtherInstance"/> is null when the backend refused a second instance
/// (<see cref="Refusal"/> says why: SQLite allows one server per data folder).
/// </summary>
public sealed record VisibilityResult(TimeSpan FirstStart, TimeSpan Settled, long EmptyRssBytes, long RssBytes, LatencyStats WriteAck, LatencyStats SameInstance,
    LatencyStats? OtherInstance, int Missed, string? Refusal);

/// <summary>
/// Two real <c>engram serve</c> processes on the loaded store (for SQLite the second is tried on the same
/// folder, and refused). Each probe writes a memory with a word no other memory has on instance A
/// (<c>POST /v1/memories</c>), then searches for that word (<c>POST /v1/search</c>, k=10) every 2 ms on A,
/// or on B, until the new id is among the hits; the time from the write's acknowledgement to that answer is
/// recorded. Probes are spaced by a random 0-600 ms so they do not fall into step with a follower's poll.
/// Before, the same on an empty store of the backend for the process's resident size without the corpus.
/// </summary>
public static class BackendVisibility
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(10);

    public static async Task<VisibilityResult> RunAsync(BenchBackend backend, BenchStore store, int probes, int seed)
    {
        long emptyRss;
        await using (var fresh = await backend.FreshAsync())
        {
            await using var empty = await EngramServeProcess.StartAsync(fresh.InstanceFolder(0), BenchStore.ChildEnvironment, fresh.Url, StartTimeout);
            using var client = Client(empty.Url);
            await SearchIdsAsync(client, "warm up");
            await WaitSettledAsync(client);
            emptyRss = ResidentBytes(empty.ProcessId);
        }

        var clock = Stopwatch.StartNew();
        await using var a = await EngramServeProcess.StartAsync(store.InstanceFolder(0), BenchStore.ChildEnvironment, store.Url, StartTimeout);
        using var clientA = Client(a.Url);
        // The first search is answered once the index is built.
        await SearchIdsAsync(clientA, "warm up");
        var firstStart = clock.Elapsed;
        await WaitSettledAsync(clientA);
        var settled = clock.Elapsed;
        var rss = ResidentBytes(a.ProcessId);
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"  instance A: first search after {firstStart.TotalSeconds:0.0} s, graph complete after {settled.TotalSeconds:0.0} s, RSS {rss / 1048576} MB"));

        EngramServeProcess? b = null;
        string? refusal = null;
        try
        {
            b = await EngramServeProcess.StartAsync(store.InstanceFolder(1), BenchStore.ChildEnvironment, store.Url, StartTimeout);
        }
        catch (EngramServeExitedException ex)
        {
            refusal = ex.Output.Split('\n').FirstOrDefault(l => l.Contains("already", StringComparison.OrdinalIgnoreCase))?.Trim()
                ?? ex.Output.Split('\n').LastOrDefault(l => l.Trim().Length > 0)?.Trim() ?? $"exit code {ex.ExitCode}";
        }
        try
        {
            var random = new Random(seed);
            var acks = new List<long>();
            var missed = 0;
            var same = await ProbeAsync(clientA, clientA, probes, random, acks, () => missed++);
            LatencyStats? other = null;
            if (b is not null)
            {
                using var clientB = Client(b.Url);
                await SearchIdsAsync(clientB, "warm up");
                await WaitSettledAsync(clientB);
                other = await ProbeAsync(clientA, clientB, probes, random, acks, () => missed++);
            }
            return new VisibilityResult(firstStart, settled, emptyRss, rss, new LatencyStats(acks), same, other, missed, refusal);
        }
        finally
        {
            if (b is not null)
            {
                await b.DisposeAsync();
            }
        }
    }

    private static async Task<LatencyStats> ProbeAsync(HttpClient writer, HttpClient reader, int probes, Random random, List<long> acks, Action missed)
    {
        var found = new List<long>(probes);
        for (var i = 0; i < probes; i++)
        {
            await Task.Delay(random.Next(600));
            var word = UniqueWord(random);
            var sent = Stopwatch.GetTimestamp();
            using var response = await writer.PostAsJsonAsync("/v1/memories", new { content = $"Probe note {word} written for the backends benchmark, number {i}." });
            var acked = Stopwatch.GetTimestamp();
            if (response.StatusCode != HttpStatusCode.Created)
            {
                throw new InvalidOperationException($"POST /v1/memories answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            }
            acks.Add(acked - sent);
            using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
            var id = body.RootElement.GetProperty("id").GetString()!;
            while (true)
            {
                var ids = await SearchIdsAsync(reader, word);
                var now = Stopwatch.GetTimestamp();
                if (ids.Contains(id))
                {
                    found.Add(now - acked);
                    break;
                }
                if (Stopwatch.GetElapsedTime(acked, now) > ProbeTimeout)
                {
                    missed();
                    break;
                }
                await Task.Delay(2);
            }
        }
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {probes} probes, {found.Count} found"));
        return found.Count > 0 ? new LatencyStats(found) : throw new InvalidOperationException($"no probe became searchable within {ProbeTimeout.TotalSeconds:0} s");
    }

    /// <summary>
    /// Until the instance has applied the whole log and its HNSW graph holds every vector (none staged): an instance
    /// still building its graph would take CPU from the probes (and from the other instance) on these two cores.
    /// </summary>
    private static async Task WaitSettledAsync(HttpClient client)
    {
        while (true)
        {
            using (var response = await client.GetAsync("/v1/stats"))
            {
                response.EnsureSuccessStatusCode();
                using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
                var index = body.RootElement.GetProperty("index");
                if (index.GetProperty("applied_seq").GetInt64() >= body.RootElement.GetProperty("last_seq").GetInt64()
                    && index.GetProperty("pending_embeddings").GetInt32() == 0 && index.GetProperty("staged_vectors").GetInt32() == 0)
                {
                    return;
                }
            }
            await Task.Delay(200);
        }
    }

    private static async Task<HashSet<string>> SearchIdsAsync(HttpClient client, string query)
    {
        using var response = await client.PostAsJsonAsync("/v1/search", new { query, k = 10 });
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"POST /v1/search answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
        using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
        return body.RootElement.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()!).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Twelve random letters: a word in no memory of the corpus, so only the probe matches it.</summary>
    private static string UniqueWord(Random random) => string.Create(12, random, (chars, r) =>
    {
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = (char)('a' + r.Next(26));
        }
    });

    private static HttpClient Client(string url) => new() { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(10) };

    /// <summary>VmRSS of a process (resident pages: the managed heap as committed, native caches, code).</summary>
    private static long ResidentBytes(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }
}
