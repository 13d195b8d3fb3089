using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Engram.Benchmarks.Store;
using static Engram.Benchmarks.BenchArgs;

namespace Engram.Benchmarks.KeyValue;

/// <summary>
/// <c>resp</c> (issue 20): redis-benchmark against Engram's RESP endpoint (the real <c>engram serve --resp</c>
/// as a child process, relaxed and full key-value durability) and against Debian's redis-server without
/// persistence, on the same machine: <c>-t set</c>, <c>-t get</c>, then EVALSHA of a one-key INCR script (a fifth of
/// the requests: a script is a store transaction of its own), <c>-d 100 -c 50</c>, pipelining off
/// (<c>-P 1</c>, N requests) and 16 deep (<c>-P 16</c>, 8 N requests, so a run lasts about as long). The three
/// servers run side by side and every measurement runs them back to back (redis, relaxed, full), so a change
/// in the machine's speed during the run touches all three alike; each pass repeats all of it and the median
/// is reported. ECHO of 100 bytes runs last: the ceiling of the transport and the parser, no state behind it.
/// Beside requests/s it prints each server's CPU time per request (user + system, from /proc), which the other
/// process on the 2 cores disturbs far less than the rate. Each Engram server first takes --warmup seconds of load
/// (discarded): .NET's tiered JIT keeps recompiling hot paths for 15-20 s of load (see <see cref="KvBenchmark"/>),
/// and one short run left the first pass measuring code still being tiered.
/// Options: --requests N (default 100000), --repeat N (passes; default 3), --warmup S (per Engram server, default 15),
/// --keyspace N (SET and GET pick their key at random among N, redis-benchmark's <c>-r N</c>; default: one key, as
/// redis-benchmark does without it, so every request hits the same hot key), --no-redis-aof, --data-root DIR.
/// <para>
/// The ratio is taken against Redis without persistence, as the issue asks. Two more redis-servers run SET beside them
/// (skipped with --no-redis-aof): with the AOF and <c>appendfsync everysec</c> (the write reaches the file before the
/// reply, as Engram's relaxed durability promises) and <c>appendfsync always</c> (synced first, as Engram's full), so
/// each durability is also compared with Redis keeping the same promise.
/// </para>
/// </summary>
public static class RespBenchmark
{
    private static readonly int[] Pipelines = [1, 16];
    private static readonly string[] Ops = ["SET", "GET", "EVALSHA", "ECHO"];

    /// <summary>
    /// ECHO of a 100-byte argument: a request of SET's size and a reply of GET's that touches no state in either server,
    /// so its rate is what the transport and the parser allow; no command that does more can beat it.
    /// </summary>
    private static readonly string EchoArgument = new('x', 100);

    private const string RedisEverySec = "redis aof everysec";
    private const string RedisAlways = "redis aof always";

    /// <summary>The script of the EVALSHA runs: a read-modify-write of one key, as a rate limiter or lease does.</summary>
    private const string Script = "return redis.call('INCR', KEYS[1])";

    public static async Task<int> RunAsync(string[] args)
    {
        var requests = int.Parse(Option(args, "--requests") ?? "100000", CultureInfo.InvariantCulture);
        var repeat = int.Parse(Option(args, "--repeat") ?? "3", CultureInfo.InvariantCulture);
        var warmUp = TimeSpan.FromSeconds(double.Parse(Option(args, "--warmup") ?? "15", CultureInfo.InvariantCulture));
        var dataRoot = Option(args, "--data-root") ?? BenchDataFolder.DefaultRoot;
        var keySpace = Option(args, "--keyspace") is { } keys ? int.Parse(keys, CultureInfo.InvariantCulture) : (int?)null;
        var withAof = !args.Contains("--no-redis-aof");
        Directory.CreateDirectory(dataRoot);
        await RedisBaseline.EnsureInstalledAsync();
        foreach (var line in MachineInfo.Describe(dataRoot))
        {
            Console.WriteLine(line);
        }
        Console.WriteLine($"redis-benchmark -t set, then -t get, then EVALSHA of \"{Script}\" on one key, then ECHO of 100 bytes (no state); -d 100 -c 50; -P 1 with {requests:N0} requests, -P 16 with {requests * 8:N0}; {repeat} pass(es) after {warmUp.TotalSeconds:0} s of warm-up per Engram server");
        Console.WriteLine(keySpace is { } space ? $"SET and GET keys: -r {space:N0} (random among {space:N0} keys)" : "SET and GET keys: one (no -r)");
        Console.WriteLine();

        var rates = new Dictionary<(string System, int Pipeline, string Op), List<double>>();
        var cpus = new Dictionary<(string System, int Pipeline, string Op), List<double>>();
        using var relaxedData = new BenchDataFolder(dataRoot);
        using var fullData = new BenchDataFolder(dataRoot);
        await using var redis = await RedisBaseline.StartAsync(fsyncAlways: false, dataRoot);
        await using var relaxed = await StartEngramAsync(relaxedData.Path, "Relaxed");
        await using var full = await StartEngramAsync(fullData.Path, "Full");
        await using var everySec = withAof ? await RedisBaseline.StartAsync("everysec", dataRoot) : null;
        await using var always = withAof ? await RedisBaseline.StartAsync("always", dataRoot) : null;
        var systems = new List<(string Name, int Port, int Pid)>
        {
            ("redis", redis.Port, redis.ProcessId), ("engram relaxed", relaxed.Port, relaxed.Server.ProcessId), ("engram full", full.Port, full.Server.ProcessId),
        };
        if (everySec is not null && always is not null)
        {
            systems.Add((RedisEverySec, everySec.Port, everySec.ProcessId));
            systems.Add((RedisAlways, always.Port, always.ProcessId));
        }
        foreach (var (_, port, _) in systems)
        {
            await LoadScriptAsync(port);
        }
        foreach (var (_, port, _) in systems.Where(s => s.Name.StartsWith("engram", StringComparison.Ordinal)))
        {
            var warming = Stopwatch.StartNew();
            do
            {
                foreach (var op in Ops)
                {
                    var scale = op == "EVALSHA" ? 5 : 1;
                    await RunBenchmarkAsync(port, requests / scale, 16, op, keySpace); // warm-up, discarded
                    await RunBenchmarkAsync(port, requests / 4 / scale, 1, op, keySpace);
                }
            }
            while (warming.Elapsed < warmUp);
        }
        for (var pass = 1; pass <= repeat; pass++)
        {
            foreach (var pipeline in Pipelines)
            {
                foreach (var op in Ops)
                {
                    foreach (var (name, port, pid) in systems)
                    {
                        if (name is RedisEverySec or RedisAlways && op != "SET")
                        {
                            continue; // they differ from the first redis in what a write costs only
                        }
                        var n = (pipeline == 1 ? requests : requests * 8) / (op == "EVALSHA" ? 5 : 1);
                        var cpuBefore = CpuTime(pid);
                        var rate = await RunBenchmarkAsync(port, n, pipeline, op, keySpace);
                        var cpu = CpuTime(pid) - cpuBefore;
                        Add(rates, (name, pipeline, op), rate);
                        Add(cpus, (name, pipeline, op), cpu.TotalMicroseconds / n);
                    }
                }
            }
            Console.WriteLine($"pass {pass} done");
        }

        Console.WriteLine();
        Console.WriteLine("Requests/s (median of the passes):");
        Console.WriteLine();
        Console.WriteLine("| op | pipeline | redis (no persistence) | engram relaxed | × redis | engram full | × redis |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var op in Ops)
        {
            foreach (var pipeline in Pipelines)
            {
                var r = Median(rates, "redis", pipeline, op);
                var rx = Median(rates, "engram relaxed", pipeline, op);
                var f = Median(rates, "engram full", pipeline, op);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {op} | {pipeline} | {r:N0} | {rx:N0} | {rx / r:0.00} | {f:N0} | {f / r:0.00} |"));
            }
        }
        if (withAof)
        {
            Console.WriteLine();
            Console.WriteLine("SET against Redis keeping the same promise (AOF written before the reply; everysec ~ relaxed, always ~ full):");
            Console.WriteLine();
            Console.WriteLine("| pipeline | redis aof everysec | engram relaxed | × | redis aof always | engram full | × |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var pipeline in Pipelines)
            {
                var e = Median(rates, RedisEverySec, pipeline, "SET");
                var rx = Median(rates, "engram relaxed", pipeline, "SET");
                var a = Median(rates, RedisAlways, pipeline, "SET");
                var f = Median(rates, "engram full", pipeline, "SET");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {pipeline} | {e:N0} | {rx:N0} | {rx / e:0.00} | {a:N0} | {f:N0} | {f / a:0.00} |"));
            }
        }
        Console.WriteLine();
        Console.WriteLine("Server CPU µs per request (user + system, median of the passes):");
        Console.WriteLine();
        Console.WriteLine("| op | pipeline | redis | engram relaxed | engram full |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var op in Ops)
        {
            foreach (var pipeline in Pipelines)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {op} | {pipeline} | {Median(cpus, "redis", pipeline, op):0.00} | {Median(cpus, "engram relaxed", pipeline, op):0.00} | {Median(cpus, "engram full", pipeline, op):0.00} |"));
            }
        }
        return 0;
    }

    private sealed class EngramUnderTest(EngramServeProcess server, int port) : IAsyncDisposable
    {
        public EngramServeProcess Server => server;

        public int Port => port;

        public ValueTask DisposeAsync() => server.DisposeAsync();
    }

    private static async Task<EngramUnderTest> StartEngramAsync(string dataPath, string durability)
    {
        var port = InProcessServer.FreePort();
        var server = await EngramServeProcess.StartAsync(dataPath, new Dictionary<string, string>
        {
            ["ENGRAM_RESP"] = $"127.0.0.1:{port}",
            ["Engram__KeyValue__Durability"] = durability,
        });
        await WaitForPortAsync(port);
        return new EngramUnderTest(server, port);
    }

    private static void Add(Dictionary<(string, int, string), List<double>> results, (string, int, string) key, double value)
    {
        if (!results.TryGetValue(key, out var list))
        {
            results[key] = list = [];
        }
        list.Add(value);
    }

    /// <summary>User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15, in clock ticks of 10 ms).</summary>
    private static TimeSpan CpuTime(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromMilliseconds(ticks * 10);
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

    /// <summary>SCRIPT LOAD of <see cref="Script"/> (redis-cli), so EVALSHA finds it.</summary>
    private static async Task LoadScriptAsync(int port)
    {
        var start = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "SCRIPT", "LOAD", Script })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start redis-cli");
        var sha = (await process.StandardOutput.ReadToEndAsync()).Trim();
        await process.WaitForExitAsync();
        if (sha != ScriptSha)
        {
            throw new InvalidOperationException($"SCRIPT LOAD on port {port} answered '{sha}', not {ScriptSha}");
        }
    }

    private static readonly string ScriptSha = Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(Script)));

    /// <summary>Runs redis-benchmark for one test (SET, GET or EVALSHA); returns its requests/s.</summary>
    private static async Task<double> RunBenchmarkAsync(int port, int requests, int pipeline, string op, int? keySpace)
    {
        var start = new ProcessStartInfo("redis-benchmark") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] test = op == "EVALSHA" ? ["evalsha", ScriptSha, "1", "bench:script"]
            : op == "ECHO" ? ["echo", EchoArgument]
            : keySpace is { } space ? ["-r", space.ToString(CultureInfo.InvariantCulture), "-t", op.ToLowerInvariant()]
            : ["-t", op.ToLowerInvariant()];
        foreach (var arg in new[]
        {
            "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-d", "100", "-c", "50",
            "-n", requests.ToString(CultureInfo.InvariantCulture), "-P", pipeline.ToString(CultureInfo.InvariantCulture), "-q", "--csv",
        }.Concat(test))
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
        var figure = results.FirstOrDefault(r => r.Key.StartsWith(op, StringComparison.OrdinalIgnoreCase));
        return figure.Key is not null ? figure.Value : throw new InvalidOperationException($"redis-benchmark printed no {op} figure: " + output);
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
