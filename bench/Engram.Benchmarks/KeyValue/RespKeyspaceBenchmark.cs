using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Engram.Benchmarks.Store;
using Engram.Tests.Resp;
using static Engram.Benchmarks.BenchArgs;

namespace Engram.Benchmarks.KeyValue;

/// <summary>
/// <c>resp-keyspace</c>: the commands that look at the whole key space (DBSIZE, INFO keyspace, SCAN to the end at COUNT
/// 10, which is what <c>redis-cli --scan</c> sends, and at COUNT 1000, KEYS *) against Engram's RESP endpoint (relaxed
/// durability) and redis-server without persistence, each filled by redis-benchmark with SETs of random keys among
/// --keys N (default 100,000; 4 N requests at -P 16, so about 98 % of them exist). Each is timed twice: right after the
/// SETs, while Engram still holds many key states waiting to be written to its table (a listing writes them first), and
/// again. Options: --keys N, --data-root DIR.
/// </summary>
public static class RespKeyspaceBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var keys = int.Parse(Option(args, "--keys") ?? "100000", CultureInfo.InvariantCulture);
        var dataRoot = Option(args, "--data-root") ?? BenchDataFolder.DefaultRoot;
        Directory.CreateDirectory(dataRoot);
        await RedisBaseline.EnsureInstalledAsync();
        foreach (var line in MachineInfo.Describe(dataRoot))
        {
            Console.WriteLine(line);
        }
        using var data = new BenchDataFolder(dataRoot);
        await using var redis = await RedisBaseline.StartAsync(fsyncAlways: false, dataRoot);
        var enginePort = InProcessServer.FreePort();
        await using var engram = await EngramServeProcess.StartAsync(data.Path, new Dictionary<string, string>
        {
            ["ENGRAM_RESP"] = $"127.0.0.1:{enginePort}",
            ["Engram__KeyValue__Durability"] = "Relaxed",
        });
        Console.WriteLine($"SET of random keys among {keys:N0} ({4 * keys:N0} requests, -P 16, -d 100), then each command timed twice");
        Console.WriteLine();
        Console.WriteLine("| command | redis first | redis again | engram first | engram again | keys seen (redis / engram) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---|");
        var results = new Dictionary<string, (List<TimeSpan> Times, long Seen)>[2];
        var ports = new[] { redis.Port, enginePort };
        for (var s = 0; s < ports.Length; s++)
        {
            await WaitForPortAsync(ports[s]);
            await FillAsync(ports[s], keys);
            results[s] = [];
            using var client = await RespClient.ConnectAsync(ports[s]);
            foreach (var round in new[] { 1, 2 })
            {
                foreach (var (name, run) in Commands)
                {
                    var started = Stopwatch.GetTimestamp();
                    var seen = await run(client);
                    var elapsed = Stopwatch.GetElapsedTime(started);
                    if (!results[s].TryGetValue(name, out var entry))
                    {
                        results[s][name] = entry = ([], seen);
                    }
                    entry.Times.Add(elapsed);
                }
            }
        }
        foreach (var (name, _) in Commands)
        {
            var (r, e) = (results[0][name], results[1][name]);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {Ms(r.Times[0])} | {Ms(r.Times[1])} | {Ms(e.Times[0])} | {Ms(e.Times[1])} | {r.Seen:N0} / {e.Seen:N0} |"));
        }
        return 0;
    }

    private static string Ms(TimeSpan t) => t.TotalMilliseconds < 10 ? $"{t.TotalMilliseconds:0.00} ms" : $"{t.TotalMilliseconds:N0} ms";

    /// <summary>Each command's name and how it runs; each returns the number of keys it reported.</summary>
    private static readonly (string Name, Func<RespClient, Task<long>> Run)[] Commands =
    [
        ("DBSIZE", async c => (long)(await c.CallAsync("DBSIZE"))!),
        ("INFO keyspace", async c => long.Parse(((string)(await c.CallAsync("INFO", "keyspace"))!).Split("keys=")[1].Split(',')[0], CultureInfo.InvariantCulture)),
        ("SCAN to the end, COUNT 10", c => ScanAsync(c, 10)),
        ("SCAN to the end, COUNT 1000", c => ScanAsync(c, 1000)),
        ("KEYS *", async c => ((object?[])(await c.CallAsync("KEYS", "*"))!).Length),
    ];

    private static async Task<long> ScanAsync(RespClient client, int count)
    {
        var distinct = new HashSet<string>(StringComparer.Ordinal);
        var cursor = "0";
        do
        {
            var reply = (object?[])(await client.CallAsync("SCAN", cursor, "COUNT", count.ToString(CultureInfo.InvariantCulture)))!;
            cursor = (string)reply[0]!;
            foreach (var key in (object?[])reply[1]!)
            {
                distinct.Add((string)key!);
            }
        }
        while (cursor != "0");
        return distinct.Count;
    }

    private static async Task FillAsync(int port, int keys)
    {
        var start = new ProcessStartInfo("redis-benchmark") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
        {
            "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-d", "100", "-c", "50", "-P", "16",
            "-n", (4 * keys).ToString(CultureInfo.InvariantCulture), "-r", keys.ToString(CultureInfo.InvariantCulture), "-t", "set", "-q",
        })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start redis-benchmark");
        await process.StandardOutput.ReadToEndAsync();
        await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
    }

    private static async Task WaitForPortAsync(int port)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var client = await RespClient.ConnectAsync(port);
                if (await client.CallAsync("PING") is "+PONG")
                {
                    return;
                }
            }
            catch (SocketException) when (attempt < 600)
            {
            }
            await Task.Delay(100);
        }
    }
}
