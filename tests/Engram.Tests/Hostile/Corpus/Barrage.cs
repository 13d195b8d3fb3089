using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Engram.Tests.Support;
using Xunit.Abstractions;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// Sends probes (a few at a time), checks every answer against its expectation and the problem-body
/// contract, accounts for accepted writes, and keeps the histogram of statuses per endpoint.
/// </summary>
internal sealed class Barrage(EngramServer server)
{
    /// <summary>A request unanswered after this long is a hang.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// POST /v1/admin/gc stops the whole process for a compacting collection by design, and the suite runs every test
    /// server in one process whose heap reaches gigabytes: a request that arrives during that pause is not a hang.
    /// </summary>
    private static readonly TimeSpan CollectionTimeout = TimeSpan.FromSeconds(60);

    private static TimeSpan TimeoutFor(HostileRequest request) =>
        request.Method == "POST" && request.Target.StartsWith("/v1/admin/gc", StringComparison.Ordinal) ? CollectionTimeout : RequestTimeout;

    private const int Parallelism = 4;

    private readonly ConcurrentDictionary<string, ConcurrentDictionary<int, int>> _histogram = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<int, int>> _classes = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _failures = new();
    private int _sent;

    public WriteLedger Ledger { get; } = new();

    public int Sent => _sent;

    public IReadOnlyCollection<string> Failures => _failures;

    public async Task RunAsync(IEnumerable<Probe> probes)
    {
        await Parallel.ForEachAsync(probes, new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, async (probe, _) => await SendAsync(probe));
    }

    public async Task<HostileAnswer?> SendAsync(Probe probe)
    {
        Interlocked.Increment(ref _sent);
        HostileAnswer answer;
        try
        {
            answer = await RawClient.SendAsync(server.BaseAddress, probe.Request, TimeoutFor(probe.Request));
        }
        catch (OperationCanceledException)
        {
            Count(probe, -1);
            Fail(probe, $"no answer within {TimeoutFor(probe.Request).TotalSeconds:0} s (a hang)");
            return null;
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
        {
            answer = new HostileAnswer(0, new Dictionary<string, string>(), []);
        }
        Count(probe, answer.Status);
        Check(probe, answer);
        return answer;
    }

    private void Check(Probe probe, HostileAnswer answer)
    {
        var jsonRpc = Exceptions.SpeaksJsonRpc(probe.Request.Target);
        var expect = jsonRpc ? Exceptions.Mcp(probe.Expect) : Exceptions.SpeaksMem0(probe.Request.Target) ? Exceptions.Mem0(probe.Expect) : probe.Expect;
        if (answer.Closed)
        {
            if (!expect.MayClose)
            {
                Fail(probe, "the connection closed without an answer");
            }
            return;
        }
        if (answer.Truncated)
        {
            // The answer began and the connection closed before its end. Where the server may close (a request whose body
            // breaks off, which Kestrel finds out while the route already answers), only its status can be checked.
            if (!expect.MayClose)
            {
                Fail(probe, $"the connection ended inside a {answer.Status} answer: {Cut(answer.Text)}");
            }
            else if (answer.Status >= 500 || !expect.Allows(answer.Status))
            {
                Fail(probe, $"{answer.Status} (cut off), expected {Describe(expect)} ({expect.Why})");
            }
            return;
        }
        if (answer.Status >= 500)
        {
            Fail(probe, $"{answer.Status} (a server error): {Cut(answer.Text)}");
            return;
        }
        if (answer.Status == 429)
        {
            Fail(probe, "429: the corpus server has no rate limit, so a 429 means the route itself was never probed");
            return;
        }
        if (!expect.Allows(answer.Status))
        {
            Fail(probe, $"{answer.Status}, expected {Describe(expect)} ({expect.Why}): {Cut(answer.Text)}");
            return;
        }
        if (answer.Status >= 400 && probe.Request.Method != "HEAD" && !(jsonRpc && Exceptions.IsJsonRpcError(answer)) && ProblemBodyFault(answer) is { } fault)
        {
            Fail(probe, $"{answer.Status} without a proper problem body: {fault}");
        }
        if (answer.Text is var text && (text.Contains("   at ", StringComparison.Ordinal) || text.Contains("SELECT ", StringComparison.Ordinal) || text.Contains("sqlite3_", StringComparison.Ordinal)))
        {
            Fail(probe, $"the answer shows a stack trace or SQL: {Cut(text)}");
        }
        if (answer.Status is >= 200 and < 300)
        {
            if (probe.Request.Method is "POST" or "PUT" or "PATCH" or "DELETE" && expect.MayWrite)
            {
                Ledger.Record(probe, answer);
            }
            if (expect.Check?.Invoke(answer) is { } failed)
            {
                Fail(probe, failed);
            }
        }
    }

    /// <summary>RFC 7807: application/problem+json with type, title, status (the answer's) and detail.</summary>
    public static string? ProblemBodyFault(HostileAnswer answer)
    {
        if (!answer.Header("Content-Type").StartsWith("application/problem+json", StringComparison.OrdinalIgnoreCase))
        {
            return $"Content-Type '{answer.Header("Content-Type")}'";
        }
        try
        {
            using var document = JsonDocument.Parse(answer.Body);
            var root = document.RootElement;
            foreach (var member in new[] { "type", "title", "detail" })
            {
                if (!root.TryGetProperty(member, out var value) || value.ValueKind != JsonValueKind.String || value.GetString()!.Length == 0)
                {
                    return $"no {member}: {Cut(answer.Text)}";
                }
            }
            return root.TryGetProperty("status", out var status) && status.ValueKind == JsonValueKind.Number && status.GetInt32() == answer.Status
                ? null
                : $"status member is not {answer.Status}: {Cut(answer.Text)}";
        }
        catch (JsonException)
        {
            return $"not JSON: {Cut(answer.Text)}";
        }
    }

    private void Count(Probe probe, int status)
    {
        _histogram.GetOrAdd(probe.Label, _ => new ConcurrentDictionary<int, int>()).AddOrUpdate(status, 1, (_, n) => n + 1);
        _classes.GetOrAdd(probe.Class, _ => new ConcurrentDictionary<int, int>()).AddOrUpdate(status, 1, (_, n) => n + 1);
    }

    private void Fail(Probe probe, string message) =>
        _failures.Enqueue($"{probe.Request.Method} {Cut(probe.Request.Target, 120)} [{probe.Class}: {probe.Name}] -> {message}");

    private static string Describe(Expectation expect) =>
        expect.Statuses is null ? "a 4xx" : string.Join("/", expect.Statuses.Where(s => s < 400 || s == 404 || s == 405).Distinct()) + (expect.Statuses.Contains(400) ? " or a 4xx" : "");

    private static string Cut(string text, int length = 300) => text.Length > length ? text[..length] + "…" : text;

    /// <summary>Total requests, then per endpoint (the route under test and method) the count of each status; -1 is a hang, 0 a close without answer.</summary>
    public void Report(ITestOutputHelper output, string title)
    {
        var all = _histogram.Values.SelectMany(h => h).GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Sum(p => p.Value));
        var text = new StringBuilder();
        text.AppendLine($"{title}: {_sent} hostile requests; statuses {Histogram(all)}; accepted writes {Ledger.Accepted}");
        text.AppendLine("  by payload class:");
        foreach (var (name, statuses) in _classes.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            text.AppendLine($"  {name,-48} {statuses.Values.Sum(),5}  {Histogram(statuses)}");
        }
        text.AppendLine("  by endpoint (the route and method under test):");
        foreach (var (label, statuses) in _histogram.OrderBy(h => h.Key, StringComparer.Ordinal))
        {
            text.AppendLine($"  {label,-48} {statuses.Values.Sum(),5}  {Histogram(statuses)}");
        }
        output.WriteLine(text.ToString());
    }

    private static string Histogram(IEnumerable<KeyValuePair<int, int>> statuses) =>
        string.Join(" ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}×{s.Value}"));
}
