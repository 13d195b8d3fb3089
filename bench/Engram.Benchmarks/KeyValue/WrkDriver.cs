using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Engram.Benchmarks.KeyValue;

/// <summary>
/// Debian's wrk, a native HTTP load generator, driving Engram's REST API the way redis-benchmark
/// drives Redis: keep-alive connections, one request in flight per connection, random keys over the
/// same key space, and little CPU of its own on the machine it shares with the server.
/// </summary>
public sealed partial class WrkDriver : IDisposable
{
    private readonly string _dir;

    private WrkDriver(string dir) => _dir = dir;

    /// <summary>Installs wrk with apt-get when it is not on the PATH (needs root), and writes the request scripts.</summary>
    public static async Task<WrkDriver> CreateAsync(int valueBytes, int keySpace)
    {
        await Tools.EnsureInstalledAsync(["wrk"], ["wrk"]);
        var dir = Path.Combine(Path.GetTempPath(), "engram-wrk-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var key = $"\"/v1/kv/key:\" .. string.format(\"%06d\", math.random(0, {keySpace - 1}))";
        // A JSON string of valueBytes bytes, quotes included: the same 100-byte value redis-benchmark -d sends.
        var body = $$"""'{"value":"' .. string.rep("x", {{valueBytes - 2}}) .. '","ttl_seconds":0}'""";
        await File.WriteAllTextAsync(Path.Combine(dir, "set.lua"), $$"""
            local body = {{body}}
            wrk.method = "PUT"
            wrk.headers["Content-Type"] = "application/json"
            request = function() return wrk.format(nil, {{key}}, nil, body) end
            """);
        await File.WriteAllTextAsync(Path.Combine(dir, "get.lua"), $$"""
            request = function() return wrk.format("GET", {{key}}) end
            """);
        return new WrkDriver(dir);
    }

    /// <summary>Runs SET or GET for <paramref name="duration"/> with <paramref name="clients"/> connections; returns requests/s.</summary>
    public async Task<double> RunAsync(string baseUrl, string op, int clients, TimeSpan duration)
    {
        var start = new ProcessStartInfo("wrk") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var threads = Math.Min(clients, Environment.ProcessorCount);
        foreach (var arg in new[]
        {
            "-t", threads.ToString(CultureInfo.InvariantCulture), "-c", clients.ToString(CultureInfo.InvariantCulture),
            "-d", $"{Math.Max(1, (int)duration.TotalSeconds)}s", "-s", Path.Combine(_dir, op.ToLowerInvariant() + ".lua"), baseUrl,
        })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start wrk");
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (NonSuccess().Match(output) is { Success: true } bad)
        {
            throw new InvalidOperationException($"wrk saw {bad.Groups[1].Value} answers that were not 2xx:\n{output}");
        }
        if (SocketErrors().IsMatch(output))
        {
            throw new InvalidOperationException("wrk saw socket errors:\n" + output);
        }
        var rate = RequestsPerSecond().Match(output);
        return rate.Success
            ? double.Parse(rate.Groups[1].Value, CultureInfo.InvariantCulture)
            : throw new InvalidOperationException("wrk printed no Requests/sec:\n" + output);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [GeneratedRegex(@"Requests/sec:\s+([0-9.]+)")]
    private static partial Regex RequestsPerSecond();

    [GeneratedRegex(@"Non-2xx or 3xx responses: (\d+)")]
    private static partial Regex NonSuccess();

    [GeneratedRegex(@"Socket errors:")]
    private static partial Regex SocketErrors();
}
