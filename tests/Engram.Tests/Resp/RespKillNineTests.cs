using System.Collections.Concurrent;
using System.Globalization;
using Engram.Tests.Durability;
using Engram.Tests.Support;
using Xunit.Abstractions;

namespace Engram.Tests.Resp;

/// <summary>
/// Durability over RESP follows Engram:KeyValue:Durability as over REST: the real <c>engram serve</c> with
/// ENGRAM_RESP is SIGKILLed while RESP clients SET and INCR (relaxed durability); after each restart
/// every acknowledged SET is there (or a later value of the same writer) and every counter is at least its
/// last acknowledged value. A further client runs MULTI / INCR / INCRBY 2 / EXEC on two keys: after each restart
/// the two are in step (b = 2a: a transaction is written whole or not at all) and a is at least the number of
/// acknowledged EXECs. (Two kills: each restart costs seconds of the suite's budget.)
/// </summary>
[Trait("Category", "Durability")]
public sealed class RespKillNineTests(ITestOutputHelper output)
{
    private const int Writers = 3;

    [Fact]
    public async Task AcknowledgedRespWrites_SurviveKillNine_WithRelaxedDurability()
    {
        // Relaxed is the weaker setting (no fsync at commit); full durability takes the same path plus the fsync.
        const string durability = "Relaxed";
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            output.WriteLine("skipped: SIGKILL semantics are tested on Unix only");
            return;
        }
        using var data = new TempDirectory();
        var acknowledged = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        var counters = new long[Writers];
        var next = new long[Writers];
        var random = new Random(2020);
        var transactions = 0L; // acknowledged EXECs
        for (var cycle = 1; cycle <= 2; cycle++)
        {
            var environment = new Dictionary<string, string>
            {
                ["ENGRAM_RESP"] = "127.0.0.1:0",
                ["Engram__KeyValue__Durability"] = durability,
            };
            await using var child = await EngramChildProcess.StartAsync(data.Path, TimeSpan.FromSeconds(30), environment);
            var port = child.RespPort;
            await VerifyAsync(port, acknowledged, counters, transactions, $"cycle {cycle}, after restart");
            using var stop = new CancellationTokenSource();
            // Connected before the clock to the kill starts: on a loaded machine a writer's task could otherwise first run
            // after the kill and fail to connect at all.
            var clients = await Task.WhenAll(Enumerable.Range(0, Writers + 1).Select(_ => RespClient.ConnectAsync(port)));
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
            {
                using var client = clients[w];
                while (!stop.IsCancellationRequested)
                {
                    var n = ++next[w];
                    try
                    {
                        if (n % 4 == 0)
                        {
                            var value = (long)(await client.CallAsync("INCR", $"w{w}:counter"))!;
                            Volatile.Write(ref counters[w], Math.Max(Volatile.Read(ref counters[w]), value));
                        }
                        else
                        {
                            var key = $"w{w}:k{n % 40}";
                            (await client.CallAsync("SET", key, n.ToString(CultureInfo.InvariantCulture))).Should().Be("+OK");
                            acknowledged.AddOrUpdate(key, n, (_, old) => Math.Max(old, n));
                        }
                    }
                    catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or EndOfStreamException)
                    {
                        return; // the kill cut this command off: it was never acknowledged
                    }
                }
            })).ToList();
            writers.Add(Task.Run(async () =>
            {
                using var client = clients[Writers];
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        (await client.CallAsync("MULTI")).Should().Be("+OK");
                        (await client.CallAsync("INCR", "tx:a")).Should().Be("+QUEUED");
                        (await client.CallAsync("INCRBY", "tx:b", "2")).Should().Be("+QUEUED");
                        var replies = (object?[])(await client.CallAsync("EXEC"))!;
                        ((long)replies[1]!).Should().Be(2 * (long)replies[0]!, "EXEC's replies");
                        Interlocked.Increment(ref transactions);
                    }
                    catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or EndOfStreamException)
                    {
                        return;
                    }
                }
            }));
            await Task.Delay(TimeSpan.FromMilliseconds(random.Next(200, 600)));
            (await child.KillNineAsync()).Should().Be(EngramChildProcess.SigKillExitCode);
            await stop.CancelAsync();
            await Task.WhenAll(writers);
            output.WriteLine($"cycle {cycle}: {acknowledged.Count} keys, counters {string.Join(",", counters)}, {transactions} transactions");
        }
        await using (var last = await EngramChildProcess.StartAsync(data.Path, TimeSpan.FromSeconds(30),
            new Dictionary<string, string> { ["ENGRAM_RESP"] = "127.0.0.1:0" }))
        {
            await VerifyAsync(last.RespPort, acknowledged, counters, transactions, "after the last kill");
        }
        acknowledged.Should().NotBeEmpty();
        transactions.Should().BePositive();
    }

    private static async Task VerifyAsync(int port, ConcurrentDictionary<string, long> acknowledged, long[] counters, long transactions, string when)
    {
        using var client = await RespClient.ConnectAsync(port);
        foreach (var (key, n) in acknowledged)
        {
            var value = await client.CallAsync("GET", key);
            value.Should().NotBeNull($"{key} was acknowledged ({when})");
            long.Parse((string)value!, CultureInfo.InvariantCulture).Should().BeGreaterThanOrEqualTo(n, $"{key} ({when})");
        }
        for (var w = 0; w < counters.Length; w++)
        {
            if (counters[w] > 0)
            {
                long.Parse((string)(await client.CallAsync("GET", $"w{w}:counter"))!, CultureInfo.InvariantCulture)
                    .Should().BeGreaterThanOrEqualTo(counters[w], $"counter of writer {w} ({when})");
            }
        }
        var a = long.Parse((string?)await client.CallAsync("GET", "tx:a") ?? "0", CultureInfo.InvariantCulture);
        var b = long.Parse((string?)await client.CallAsync("GET", "tx:b") ?? "0", CultureInfo.InvariantCulture);
        a.Should().BeGreaterThanOrEqualTo(transactions, $"every acknowledged EXEC is kept ({when})");
        b.Should().Be(2 * a, $"a transaction is written whole or not at all ({when})");
    }
}
