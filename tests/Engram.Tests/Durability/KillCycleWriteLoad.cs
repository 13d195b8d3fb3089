using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Engram.Tests.Durability;

/// <summary>What one write-then-kill cycle saw from the client side.</summary>
public sealed record KillCycleOutcome(
    int Acknowledged,
    int InFlightAtKill,
    int InterruptedByKill,
    int RefusedAfterKill,
    TimeSpan KillAfter,
    IReadOnlyList<string> Unexpected);

/// <summary>
/// Several concurrent HTTP writers (single POSTs and small batches) against one server, recording
/// into <see cref="Acknowledged"/> every id whose success response arrived, until the server is
/// killed at a random moment. A request that was sent but never answered is not acknowledged, so
/// the test may not demand it, whether or not it happened to commit.
/// </summary>
public sealed class KillCycleWriteLoad(int writers, int seed)
{
    private const int MaxBatch = 20;

    /// <summary>Every acknowledged memory across all cycles: id → the content that was sent.</summary>
    public ConcurrentDictionary<string, string> Acknowledged { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Writes until the first acknowledgement, waits a random <paramref name="minDelay"/>..<paramref name="maxDelay"/>,
    /// runs <paramref name="killAsync"/>, and returns once every writer has seen its last request fail.
    /// </summary>
    public async Task<(KillCycleOutcome Outcome, IReadOnlyList<string> AcknowledgedThisCycle)> RunAsync(
        Uri server, int cycle, TimeSpan minDelay, TimeSpan maxDelay, Func<Task> killAsync)
    {
        var random = new Random(Seeds.Derive(seed, cycle));
        var killAfter = TimeSpan.FromMilliseconds(random.Next((int)minDelay.TotalMilliseconds, (int)maxDelay.TotalMilliseconds));
        var state = new CycleState();
        using var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            BaseAddress = server,
            Timeout = TimeSpan.FromSeconds(30),
        };

        var tasks = Enumerable.Range(0, writers)
            .Select(w => Task.Run(() => WriterAsync(client, new SentenceGenerator(Seeds.Derive(seed, cycle, w + 1)), $"c{cycle}w{w}", state)))
            .ToArray();

        var firstAck = await Task.WhenAny(state.FirstAck.Task, Task.Delay(TimeSpan.FromSeconds(30)));
        if (firstAck != state.FirstAck.Task)
        {
            state.Killed = true;
            await killAsync();
            await Task.WhenAll(tasks);
            throw new InvalidOperationException($"cycle {cycle}: no write was acknowledged within 30 s; errors: {string.Join("; ", state.Unexpected.Take(5))}");
        }
        await Task.Delay(killAfter);
        var inFlight = Volatile.Read(ref state.InFlight);
        state.Killed = true;
        await killAsync();
        await Task.WhenAll(tasks);

        var outcome = new KillCycleOutcome(state.AckedThisCycle.Count, inFlight, state.Interrupted, state.Refused, killAfter, state.Unexpected.ToList());
        return (outcome, state.AckedThisCycle.ToList());
    }

    private async Task WriterAsync(HttpClient client, SentenceGenerator sentences, string prefix, CycleState state)
    {
        var n = 0;
        while (!state.Killed)
        {
            var single = sentences.Next(0, 10) < 6;
            var contents = Enumerable.Range(0, single ? 1 : sentences.Next(2, MaxBatch + 1))
                .Select(_ => sentences.Next($"{prefix}n{n++}"))
                .ToList();
            var sentBeforeKill = !state.Killed;
            Interlocked.Increment(ref state.InFlight);
            try
            {
                var acked = single ? await PostOneAsync(client, contents[0]) : await PostBatchAsync(client, contents);
                foreach (var (id, content) in acked)
                {
                    Acknowledged[id] = content;
                    state.AckedThisCycle.Add(id);
                }
                state.FirstAck.TrySetResult();
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
            {
                if (!state.Killed)
                {
                    state.Unexpected.Add($"connection error before the kill: {ex.Message}");
                    return;
                }
                if (sentBeforeKill)
                {
                    Interlocked.Increment(ref state.Interrupted);
                }
                else
                {
                    Interlocked.Increment(ref state.Refused);
                }
                return;
            }
            catch (UnexpectedResponseException ex)
            {
                state.Unexpected.Add(ex.Message);
                return;
            }
            finally
            {
                Interlocked.Decrement(ref state.InFlight);
            }
        }
    }

    private static async Task<IReadOnlyList<(string Id, string Content)>> PostOneAsync(HttpClient client, string content)
    {
        using var response = await client.PostAsJsonAsync("/v1/memories", new { content, tags = new[] { "kill9" } });
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new UnexpectedResponseException($"POST /v1/memories answered {(int)response.StatusCode}: {body}");
        }
        using var json = JsonDocument.Parse(body);
        var root = json.RootElement;
        var echoed = root.GetProperty("content").GetString();
        if (echoed != content)
        {
            throw new UnexpectedResponseException($"POST /v1/memories echoed different content: sent '{content}', got '{echoed}'");
        }
        return [(root.GetProperty("id").GetString()!, content)];
    }

    private static async Task<IReadOnlyList<(string Id, string Content)>> PostBatchAsync(HttpClient client, List<string> contents)
    {
        var items = contents.Select(content => new { content, tags = new[] { "kill9", "batch" } }).ToArray();
        using var response = await client.PostAsJsonAsync("/v1/memories/batch", new { items });
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new UnexpectedResponseException($"POST /v1/memories/batch answered {(int)response.StatusCode}: {body}");
        }
        using var json = JsonDocument.Parse(body);
        var results = json.RootElement.GetProperty("results");
        if (results.GetArrayLength() != contents.Count)
        {
            throw new UnexpectedResponseException($"batch of {contents.Count} answered {results.GetArrayLength()} results: {body}");
        }
        var acked = new List<(string, string)>(contents.Count);
        var i = 0;
        foreach (var result in results.EnumerateArray())
        {
            var status = result.GetProperty("status").GetString();
            if (status != "created")
            {
                throw new UnexpectedResponseException($"batch item {i} has status '{status}': {result}");
            }
            acked.Add((result.GetProperty("id").GetString()!, contents[i++]));
        }
        return acked;
    }

    private sealed class CycleState
    {
        public readonly TaskCompletionSource FirstAck = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly ConcurrentBag<string> AckedThisCycle = [];
        public readonly ConcurrentBag<string> Unexpected = [];
        public volatile bool Killed;
        public int InFlight;
        public int Interrupted;
        public int Refused;
    }

    private sealed class UnexpectedResponseException(string message) : Exception(message);
}
