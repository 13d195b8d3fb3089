using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Engram.Benchmarks.Store;
using static Engram.Benchmarks.BenchArgs;

namespace Engram.Benchmarks.KeyValue;

/// <summary>
/// <c>resp</c> (issue 20): redis-benchmark against Engram's RESP endpoint (the real <c>engram serve --resp</c>
/// as a child process, relaxed and full key-value durability) and against Debian's redis-server without
/// persistence, in the same run on the same machine: <c>-t get,set -d 100 -c 50 -n N</c>, pipelining off
/// (<c>-P 1</c>) and 16 deep (<c>-P 16</c>), side by side. Each Engram server first takes a warm-up run
/// (discarded) so the JIT has settled.
/// Options: --requests N (default 100000), --repeat N (passes; median reported), --data-root DIR.
/// </summary>
public static class RespBenchmark
{
    private static readonly int[] Pipelines = [1, 16];

    public static async Task<int> RunAsync(string[] args)
    {
        var requests = int.Parse(Option(args, "--requests") ?? "100000", CultureInfo.InvariantCulture);
        var repeat = int.Parse(Option(args, "--repeat") ?? "1", CultureInfo.InvariantCulture);
        var dataRoot = Option(args, "--data-root") ?? BenchDataFolder.DefaultRoot;
        Directory.CreateDirectory(dataRoot);
        await RedisBaseline.EnsureInstalledAsync();
        foreach (var line in MachineInfo.Describe(dataRoot))
        {
            Console.WriteLine(line);
        }
        Console.WriteLine($"redis-benchmark -t get,set -d 100 -c 50 -n {requests}, -P 1 and -P 16; {repeat} pass(es)");
        Console.WriteLine();

        var results = new Dictionary<(string System, int Pipeline, string Op), List<double>>();
        void Add(string system, int pipeline, IReadOnlyDictionary<string, double> figures)
        {
            foreach (var (op, rps) in figures)
            {
                var key = (system, pipeline, op.ToUpperInvariant());
                if (!results.TryGetValue(key, out var list))
                {
                    results[key] = list = [];
                }
                list.Add(rps);
            }
        }

        for (var pass = 1; pass <= repeat; pass++)
        {
            await using (var redis = await RedisBaseline.StartAsync(fsyncAlways: false, dataRoot))
            {
                foreach (var pipeline in Pipelines)
                {
                    Add("redis", pipeline, await RunBenchmarkAsync(redis.Port, requests, pipeline));
                }
            }
            foreach (var durability in new[] { "Relaxed", "Full" })
            {
                using var data = new BenchDataFolder(dataRoot);
                var port = InProcessServer.FreePort();
                {
                    await using var engram = await EngramServeProcess.StartAsync(data.Path, new Dictionary<string, string>
                    {
                        ["ENGRAM_RESP"] = $"127.0.0.1:{port}",
                        ["Engram__KeyValue__Durability"] = durability,
                    });
                    await WaitForPortAsync(port);
                    await RunBenchmarkAsync(port, requests, 16); // warm-up, discarded
                    await RunBenchmarkAsync(port, requests, 1);
                    foreach (var pipeline in Pipelines)
                    {
                        Add("engram " + durability.ToLowerInvariant(), pipeline, await RunBenchmarkAsync(port, requests, pipeline));
                    }
                }
            }
            Console.WriteLine($"pass {pass} done");
        }

        Console.WriteLine();
        Console.WriteLine("| op | pipeline | redis (no persistence) | engram relaxed | × redis | engram full | × redis |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var op in new[] { "SET", "GET" })
        {
            foreach (var pipeline in Pipelines)
            {
                var redis = Median(results, "redis", pipeline, op);
                var relaxed = Median(results, "engram relaxed", pipeline, op);
                var full = Median(results, "engram full", pipeline, op);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {op} | {pipeline} | {redis:N0} | {relaxed:N0} | {relaxed / redis:0.00} | {full:N0} | {full / redis:0.00} |"));
            }
        }
        return 0;
    }

    private static double Median(Dictionary<(string, int, string), List<double>> results, string system, int pipeline, string op)
    {
        if (!results.TryGetValue((system, pipeline, op), out var list) || list.Count == 0)
        {
            return double.NaN;
        }
        var sorted = list.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>Runs redis-benchmark for SET and GET; ops/s by test name.</summary>
    private static async Task<IReadOnlyDictionary<string, double>> RunBenchmarkAsync(int port, int requests, int pipeline)
    {
        var start = new ProcessStartInfo("redis-benchmark") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
        {
            "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-t", "set,get", "-d", "100", "-c", "50",
            "-n", requests.ToString(CultureInfo.InvariantCulture), "-P", pipeline.ToString(CultureInfo.InvariantCulture), "-q", "--csv",
        })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start redis-benchmark");
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var results = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = line.Split(',').Select(f => f.Trim('"')).ToArray();
            if (fields.Length >= 2 && double.TryParse(fields[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var rps))
            {
                results[fields[0]] = rps;
            }
        }
        return results.Count == 2 ? results : throw new InvalidOperationException("redis-benchmark printed no SET/GET figures: " + output);
    }

    private static async Task WaitForPortAsync(int port)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", port);
                return;
            }
            catch (SocketException) when (attempt < 200)
            {
                await Task.Delay(50);
            }
        }
    }
}
