using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Engram.Tests.Support;
using Xunit.Abstractions;

namespace Engram.Tests.Durability;

/// <summary>
/// Relaxed key-value durability (Engram:KeyValue:Durability=Relaxed) skips the fsync at commit, so a
/// power loss may take the last writes, but a crash of the process must lose none: the commit is in
/// the operating system's page cache before the write is acknowledged. The real <c>engram serve</c>
/// is SIGKILLed under concurrent SETs and INCRs; after each restart every acknowledged SET is there
/// with its value (or a later one of the same writer) and every counter is at least its last
/// acknowledged value.
/// </summary>
[Trait("Category", "Durability")]
public sealed class KvRelaxedKillNineTests(ITestOutputHelper output)
{
    private const int Cycles = 6;
    private const int Writers = 4;
    private static readonly TimeSpan HealthTimeout = TimeSpan.FromSeconds(30);
    // The writers go as fast as the server lets them: a per-client rate limit would refuse writes (429), not test them.
    private static readonly Dictionary<string, string> Relaxed = new()
    {
        ["Engram__KeyValue__Durability"] = "Relaxed",
        ["Engram__RateLimit__PermitsPerSecond"] = "0",
    };

    [Fact]
    public async Task AcknowledgedKeyValueWrites_SurviveKillNine_WithRelaxedDurability()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            output.WriteLine("skipped: SIGKILL semantics are tested on Unix only");
            return;
        }
        using var data = new TempDirectory();
        // Per writer: the highest sequence number acknowledged for each of its keys, and its counter's last acknowledged value.
        var acknowledged = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        var counters = new long[Writers];
        var next = new long[Writers];
        var random = new Random(4242);
        var interrupted = 0;
        for (var cycle = 1; cycle <= Cycles; cycle++)
        {
            await using var child = await EngramChildProcess.StartAsync(data.Path, HealthTimeout, Relaxed);
            using var client = new HttpClient { BaseAddress = child.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
            await VerifyAsync(client, acknowledged, counters, $"cycle {cycle}, after restart");

            using var stop = new CancellationTokenSource();
            var inFlightErrors = 0;
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var n = ++next[w];
                    var key = $"w{w}:k{n % 50}";
                    try
                    {
                        if (n % 5 == 0)
                        {
                            using var incr = await client.PostAsync($"/v1/kv/w{w}:counter/incr", new StringContent("{\"by\":1}", Encoding.UTF8, "application/json"));
                            incr.StatusCode.Should().Be(HttpStatusCode.OK);
                            var value = (await incr.JsonAsync()).GetProperty("value").GetInt64();
                            Volatile.Write(ref counters[w], Math.Max(Volatile.Read(ref counters[w]), value));
                        }
                        else
                        {
                            using var put = await client.PutAsync("/v1/kv/" + key, new StringContent($$"""{"value":{{n}},"ttl_seconds":0}""", Encoding.UTF8, "application/json"));
                            put.IsSuccessStatusCode.Should().BeTrue(await put.Content.ReadAsStringAsync());
                            acknowledged.AddOrUpdate(key, n, (_, old) => Math.Max(old, n));
                        }
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                    {
                        // The kill cut this request off: it was never acknowledged.
                        Interlocked.Increment(ref inFlightErrors);
                        return;
                    }
                }
            })).ToList();

            await Task.Delay(TimeSpan.FromMilliseconds(random.Next(150, 700)));
            (await child.KillNineAsync()).Should().Be(EngramChildProcess.SigKillExitCode);
            await stop.CancelAsync();
            await Task.WhenAll(writers);
            if (inFlightErrors > 0)
            {
                interrupted++;
            }
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"cycle {cycle}: {acknowledged.Count} keys, counters {string.Join(",", counters)}, requests cut off by the kill: {inFlightErrors}"));
        }

        await using (var last = await EngramChildProcess.StartAsync(data.Path, HealthTimeout, Relaxed))
        {
            using var client = new HttpClient { BaseAddress = last.BaseAddress };
            await VerifyAsync(client, acknowledged, counters, "after the last kill");
        }
        acknowledged.Should().NotBeEmpty();
        interrupted.Should().BeGreaterThan(Cycles / 2, "most kills must land while writes are in flight, or the test proves little");
    }

    private static async Task VerifyAsync(HttpClient client, ConcurrentDictionary<string, long> acknowledged, long[] counters, string when)
    {
        foreach (var (key, n) in acknowledged)
        {
            using var response = await client.GetAsync("/v1/kv/" + key);
            response.StatusCode.Should().Be(HttpStatusCode.OK, $"{key} was acknowledged ({when})");
            // Later writes of the same key by the same writer may have landed unacknowledged: never an older one.
            (await response.JsonAsync()).GetProperty("value").GetInt64().Should().BeGreaterThanOrEqualTo(n, $"{key} ({when})");
        }
        for (var w = 0; w < counters.Length; w++)
        {
            if (counters[w] == 0)
            {
                continue;
            }
            using var response = await client.GetAsync($"/v1/kv/w{w}:counter");
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            (await response.JsonAsync()).GetProperty("value").GetInt64().Should().BeGreaterThanOrEqualTo(counters[w], $"counter of writer {w} ({when})");
        }
    }
}
