using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// Slow and stalled clients on bare sockets: headers sent a byte at a time, a body trickled far below
/// any useful rate, a body that stops half way with the connection left open, and a crowd of such
/// clients at once. Each gets a 4xx problem (408) or is closed within a bounded time, while other
/// clients keep being served; and the store is unchanged afterwards.
/// </summary>
[Trait("Category", "Hostile")]
public sealed class SlowClientTests(CorpusServer corpus, ITestOutputHelper output) : IClassFixture<CorpusServer>
{
    /// <summary>Kestrel's header time-out is 30 s; this bounds the wait with room for a loaded machine.</summary>
    private static readonly TimeSpan HeadersBound = TimeSpan.FromSeconds(45);

    /// <summary>Kestrel's minimum body rate (240 B/s after a 5 s grace) cuts a trickle off after about 5 s.</summary>
    private static readonly TimeSpan BodyBound = TimeSpan.FromSeconds(25);

    [Fact]
    public async Task Slow_and_stalled_clients_are_cut_off_in_bounded_time_while_others_are_served()
    {
        var before = await SeededStore.SnapshotAsync(corpus.Server);
        using var stop = new CancellationTokenSource();
        var others = ServeOthersAsync(stop.Token);

        var clients = new List<Task<string>>
        {
            SlowHeadersAsync(),
            TrickledBodyAsync("POST", "/v1/memories", """{"content":"trickled slowly","user_id":"hostile"}"""),
            TrickledBodyAsync("PUT", "/v1/kv/hostile:slow", """{"value":"trickled"}"""),
            StalledBodyAsync("POST", "/v1/memories", """{"content":"stalled half way","user_id":"hostile"}"""),
            StalledBodyAsync("POST", "/v1/memories/batch", """{"items":[{"content":"stalled batch","user_id":"hostile"}]}"""),
            StalledBodyAsync("POST", "/v1/search", """{"query":"stalled"}"""),
        };
        // A crowd: 40 connections that send half a request head and wait.
        clients.AddRange(Enumerable.Range(0, 40).Select(i => HalfHeadAsync(i)));
        var outcomes = await Task.WhenAll(clients);
        await stop.CancelAsync();
        var (served, slowest) = await others;

        foreach (var outcome in outcomes.Take(6))
        {
            output.WriteLine(outcome);
        }
        output.WriteLine($"crowd of 40 half heads: {string.Join(", ", outcomes.Skip(6).GroupBy(o => o).Select(g => $"{g.Key} ×{g.Count()}"))}");
        output.WriteLine($"meanwhile {served} requests of other clients were served; slowest {slowest.TotalMilliseconds:0} ms");

        outcomes.Should().OnlyContain(o => o.StartsWith("408 problem", StringComparison.Ordinal) || o.StartsWith("closed", StringComparison.Ordinal) || o.StartsWith("400 problem", StringComparison.Ordinal),
            "a slow or stalled client gets a 4xx problem or a closed connection, never a hang or a 5xx");
        served.Should().BeGreaterThan(0, "other clients are served while slow ones hold connections");
        slowest.Should().BeLessThan(Barrage.RequestTimeout, "no other client waits as long as a hang");
        (await SeededStore.IntegrityCheckAsync(corpus.Server)).Should().Be("ok");
        var after = await SeededStore.SnapshotAsync(corpus.Server);
        new WriteLedger().Unexplained(before, after).Should().BeEmpty("no slow or stalled request wrote anything");
    }

    /// <summary>GET /health/live in a loop: how many were answered and the slowest answer.</summary>
    private async Task<(int Served, TimeSpan Slowest)> ServeOthersAsync(CancellationToken stop)
    {
        var served = 0;
        var slowest = TimeSpan.Zero;
        while (!stop.IsCancellationRequested)
        {
            var watch = Stopwatch.StartNew();
            var answer = await RawClient.SendAsync(corpus.Server.BaseAddress, new HostileRequest("GET", "/v1/stats", null, null), Barrage.RequestTimeout);
            watch.Stop();
            answer.Status.Should().Be(200);
            served++;
            slowest = watch.Elapsed > slowest ? watch.Elapsed : slowest;
            try
            {
                await Task.Delay(200, stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        return (served, slowest);
    }

    /// <summary>A request head sent one byte a second: Kestrel's header time-out ends it.</summary>
    private async Task<string> SlowHeadersAsync()
    {
        using var client = await ConnectAsync();
        var stream = client.GetStream();
        var head = Encoding.ASCII.GetBytes($"GET /v1/stats HTTP/1.1\r\nHost: {corpus.Server.BaseAddress.Authority}\r\nX-Slow: {new string('s', 200)}\r\n\r\n");
        var watch = Stopwatch.StartNew();
        using var deadline = new CancellationTokenSource(HeadersBound);
        var reading = RawClient.ReadAnswerAsync(stream, head: false, deadline.Token);
        foreach (var b in head)
        {
            if (reading.IsCompleted || watch.Elapsed > HeadersBound)
            {
                break;
            }
            try
            {
                await stream.WriteAsync(new[] { b });
            }
            catch (IOException)
            {
                break;
            }
            await Task.WhenAny(reading, Task.Delay(1000));
        }
        return Describe("slow headers", await Outcome(reading), watch.Elapsed);
    }

    /// <summary>The head at once, then the body a byte every 1.5 s (far below Kestrel's 240 B/s minimum).</summary>
    private async Task<string> TrickledBodyAsync(string method, string path, string json)
    {
        using var client = await ConnectAsync();
        var stream = client.GetStream();
        var body = Encoding.UTF8.GetBytes(json);
        await stream.WriteAsync(Head(method, path, body.Length));
        var watch = Stopwatch.StartNew();
        using var deadline = new CancellationTokenSource(BodyBound);
        var reading = RawClient.ReadAnswerAsync(stream, head: false, deadline.Token);
        foreach (var b in body)
        {
            if (reading.IsCompleted)
            {
                break;
            }
            try
            {
                await stream.WriteAsync(new[] { b });
            }
            catch (IOException)
            {
                break;
            }
            await Task.WhenAny(reading, Task.Delay(1500));
        }
        return Describe($"trickled body {method} {path}", await Outcome(reading), watch.Elapsed);
    }

    /// <summary>The head and half the body, then nothing, the connection left open.</summary>
    private async Task<string> StalledBodyAsync(string method, string path, string json)
    {
        using var client = await ConnectAsync();
        var stream = client.GetStream();
        var body = Encoding.UTF8.GetBytes(json);
        await stream.WriteAsync(Head(method, path, body.Length));
        await stream.WriteAsync(body.AsMemory(0, body.Length / 2));
        var watch = Stopwatch.StartNew();
        using var deadline = new CancellationTokenSource(BodyBound);
        return Describe($"stalled body {method} {path}", await Outcome(RawClient.ReadAnswerAsync(stream, head: false, deadline.Token)), watch.Elapsed);
    }

    /// <summary>Half a request head, then nothing (one of a crowd).</summary>
    private async Task<string> HalfHeadAsync(int index)
    {
        using var client = await ConnectAsync();
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /v1/memories HTTP/1.1\r\nHost: {corpus.Server.BaseAddress.Authority}\r\nX-Crowd: {index}\r\n"));
        using var deadline = new CancellationTokenSource(HeadersBound);
        var answer = await Outcome(RawClient.ReadAnswerAsync(stream, head: false, deadline.Token));
        return answer is null ? "hang" : answer.Closed ? "closed" : $"{answer.Status} {(Barrage.ProblemBodyFault(answer) is null ? "problem" : "without a problem body")}";
    }

    private static async Task<HostileAnswer?> Outcome(Task<HostileAnswer> reading)
    {
        try
        {
            return await reading;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    private static string Describe(string what, HostileAnswer? answer, TimeSpan took) => answer switch
    {
        null => $"hang: {what} unanswered after {took.TotalSeconds:0.0} s",
        { Closed: true } => $"closed: {what} after {took.TotalSeconds:0.0} s",
        _ => $"{answer.Status} {(Barrage.ProblemBodyFault(answer) is null ? "problem" : "without a problem body: " + answer.Text)}: {what} after {took.TotalSeconds:0.0} s",
    };

    private byte[] Head(string method, string path, int length) => Encoding.ASCII.GetBytes(
        $"{method} {path} HTTP/1.1\r\nHost: {corpus.Server.BaseAddress.Authority}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n");

    private async Task<TcpClient> ConnectAsync()
    {
        var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(corpus.Server.BaseAddress.Host, corpus.Server.BaseAddress.Port);
        return client;
    }
}
