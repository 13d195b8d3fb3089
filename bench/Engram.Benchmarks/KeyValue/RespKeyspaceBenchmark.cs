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
/// again. Then one command of many keys on each (MSET, MGET, EXISTS, DEL of --many N new keys, default 100,000, each one
/// command of 2N + 1 or N + 1 arguments, several MB: it arrives over many socket reads). Options: --keys N, --many N,
/// --data-root DIR.
/// </summary>
public static class RespKeyspaceBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var keys = int.Parse(Option(args, "--keys") ?? "100000", CultureInfo.InvariantCulture);
        var many = int.Parse(Option(args, "--many") ?? "100000", CultureInfo.InvariantCulture);
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
        var manyResults = new List<(string Name, TimeSpan Time, long Reply)>[2];
        var ports = new[] { redis.Port, enginePort };
        for (var s = 0; s < ports.Length; s++)
        {
            await WaitForPortAsync(ports[s]);
            await FillAsync(ports[s], keys);
            results[s] = [];
            using var client = await RespClient.ConnectAsync(ports[s]);
            manyResults[s] = await ManyKeysAsync(client, many);
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
        Console.WriteLine();
        Console.WriteLine($"One command of {many:N0} keys (timed before the commands above)");
        Console.WriteLine();
        Console.WriteLine("| command | redis | engram | reply (redis / engram) |");
        Console.WriteLine("|---|---:|---:|---|");
        for (var i = 0; i < manyResults[0].Count; i++)
        {
            var (r, e) = (manyResults[0][i], manyResults[1][i]);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {r.Name} | {Ms(r.Time)} | {Ms(e.Time)} | {r.Reply:N0} / {e.Reply:N0} |"));
        }
        return 0;
    }

    /// <summary>
    /// MSET (8-byte values), MGET, EXISTS and DEL of <paramref name="count"/> new keys, one command each; the reply as a number (MSET: its
    /// keys when it answered OK; MGET: the values found).
    /// </summary>
    private static async Task<List<(string Name, TimeSpan Time, long Reply)>> ManyKeysAsync(RespClient client, int count)
    {
        var keys = Enumerable.Range(0, count).Select(i => $"many:{i}").ToArray();
        var value = "value-10"; // 10 bytes a value: 100,000 pairs are some 2.6 MB, under the 4 MB MaxCommandBytes
        var steps = new (string Name, string[] Command, Func<object?, long> Reply)[]
        {
            ("MSET", ["MSET", .. keys.SelectMany(k => new[] { k, value })], r => r is "+OK" ? count : -1),
            ("MGET", ["MGET", .. keys], r => r is object?[] values ? values.Count(v => v is not null) : -1),
            ("EXISTS", ["EXISTS", .. keys], r => r is long n ? n : -1),
            ("DEL", ["DEL", .. keys], r => r is long n ? n : -1),
        };
        var timed = new List<(string, TimeSpan, long)>();
        foreach (var (name, command, reply) in steps)
        {
            var started = Stopwatch.GetTimestamp();
            var answer = await client.CallAsync(command);
            timed.Add((name, Stopwatch.GetElapsedTime(started), reply(answer)));
        }
        return timed;
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
