using System.Net;
using System.Text;
using Engram.Tests.Durability;
using Engram.Tests.Support;
using Xunit.Abstractions;

namespace Engram.Tests.Hostile;

/// <summary>
/// The probe's amplification (issue 10, defect 1): eight concurrent 60 MB POST /v1/memories took the
/// server from 167 MB to 1.9 GB, still held 20 s later. Against a real <c>engram serve</c> process,
/// the same load (half with a Content-Length, half chunked) must leave its resident memory near where
/// it was: the bodies are refused at the route's bound instead of read and parsed whole.
/// </summary>
[Trait("Category", "Memory")]
public sealed class BodyMemoryTests(ITestOutputHelper output)
{
    private const int Clients = 8;
    private const long BodyBytes = 60L * 1024 * 1024;

    /// <summary>Far below what the old server kept (1.7 GB more), far above a run's noise (tens of MB).</summary>
    private const long AllowedGrowthBytes = 300L * 1024 * 1024;

    [Fact]
    public async Task Concurrent_60MB_bodies_leave_the_server_resident_memory_bounded()
    {
        using var data = new TempDirectory();
        await using var child = await EngramChildProcess.StartAsync(data.Path, TimeSpan.FromSeconds(60));
        using var client = new HttpClient { BaseAddress = child.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        // Warm up the paths a refused request takes, so their one-time cost is in the baseline.
        for (var i = 0; i < 3; i++)
        {
            await client.PostAsync("/v1/memories", new StringContent("{\"content\":\"warm up\"}", Encoding.UTF8, "application/json"));
        }
        var before = ResidentBytes(child.ProcessId);

        var statuses = await Task.WhenAll(Enumerable.Range(0, Clients).Select(i => SendAsync(client, "/v1/memories", BodyBytes, chunked: i % 2 == 1)));
        await Task.Delay(TimeSpan.FromSeconds(2));
        var after = ResidentBytes(child.ProcessId);

        output.WriteLine($"VmRSS before {before / 1048576} MB, after {after / 1048576} MB; answers: {string.Join(", ", statuses.Select(s => s?.ToString() ?? "connection closed"))}");
        statuses.Should().NotContain(s => s != null && s != HttpStatusCode.RequestEntityTooLarge);
        (after - before).Should().BeLessThan(AllowedGrowthBytes,
            $"resident memory went from {before / 1048576} MB to {after / 1048576} MB after {Clients} bodies of {BodyBytes / 1048576} MB");
        (await client.GetAsync("/health")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Refused_bodies_within_the_batch_bound_do_not_stay_resident()
    {
        // 15 MB batches fit the 16 MB bound, so they are read and parsed; their one content string is too
        // long, so each is refused (400). Their memory must go back, not stay at the burst's peak.
        using var data = new TempDirectory();
        await using var child = await EngramChildProcess.StartAsync(data.Path, TimeSpan.FromSeconds(60));
        using var client = new HttpClient { BaseAddress = child.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        await client.PostAsync("/v1/memories/batch", new StringContent("{\"items\":[{\"content\":\"warm up\"}]}", Encoding.UTF8, "application/json"));
        var before = ResidentBytes(child.ProcessId);

        var statuses = await Task.WhenAll(Enumerable.Range(0, Clients).Select(i => SendAsync(client, "/v1/memories/batch", 15L * 1024 * 1024, chunked: i % 2 == 1, batch: true)));
        var peak = ResidentBytes(child.ProcessId);
        await Task.Delay(TimeSpan.FromSeconds(4));
        var after = ResidentBytes(child.ProcessId);

        output.WriteLine($"VmRSS before {before / 1048576} MB, at the end of the burst {peak / 1048576} MB, 4 s later {after / 1048576} MB");
        statuses.Should().OnlyContain(s => s == HttpStatusCode.BadRequest);
        (after - before).Should().BeLessThan(120L * 1024 * 1024,
            $"resident memory went from {before / 1048576} MB to {after / 1048576} MB (peak {peak / 1048576} MB)");
    }

    [Fact]
    public async Task Big_mgets_are_sent_as_they_are_read_not_held_whole()
    {
        // Two concurrent mgets of 500 keys of a 1 MB value: 1 GB of answers. Read and parsed whole, they took the
        // server's peak resident memory up by about that much; read in chunks and sent as the client reads, by a chunk's.
        using var data = new TempDirectory();
        await using var child = await EngramChildProcess.StartAsync(data.Path, TimeSpan.FromSeconds(60));
        using var client = new HttpClient { BaseAddress = child.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        var value = new string('b', 1_000_000);
        (await client.PutAsync("/v1/kv/big", new StringContent($$"""{"value":"{{value}}"}""", Encoding.UTF8, "application/json"))).IsSuccessStatusCode.Should().BeTrue();
        var body = $$"""{"keys":[{{string.Join(",", Enumerable.Repeat("\"big\"", 500))}}]}""";
        await ReadMgetAsync(client, """{"keys":["big"]}"""); // warm up the path
        var before = ResidentBytes(child.ProcessId);
        ResetPeak(child.ProcessId);

        var lengths = await Task.WhenAll(ReadMgetAsync(client, body), ReadMgetAsync(client, body));
        var peak = PeakResidentBytes(child.ProcessId);

        output.WriteLine($"VmRSS before {before / 1048576} MB, peak during the mgets {peak / 1048576} MB; answers of {string.Join(", ", lengths)} bytes");
        lengths.Should().OnlyContain(n => n > 500L * 1_000_000, "every value is answered");
        (peak - before).Should().BeLessThan(AllowedGrowthBytes, $"resident memory peaked at {peak / 1048576} MB from {before / 1048576} MB");
    }

    /// <summary>Reads an mget's answer as a stream (the test process does not hold it) and returns its length.</summary>
    private static async Task<long> ReadMgetAsync(HttpClient client, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/kv/mget") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[64 * 1024];
        long total = 0;
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            total += n;
        }
        return total;
    }

    /// <summary>Resets the process's peak resident size (VmHWM) to its current one.</summary>
    private static void ResetPeak(int processId) => File.WriteAllText($"/proc/{processId}/clear_refs", "5");

    private static long PeakResidentBytes(int processId) => StatusKilobytes(processId, "VmHWM:") * 1024;

    private static long StatusKilobytes(int processId, string field)
    {
        var line = File.ReadLines($"/proc/{processId}/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line[field.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The answer's status, or null when the server closed the connection on the unread body before the client saw it.</summary>
    private static async Task<HttpStatusCode?> SendAsync(HttpClient client, string path, long bytes, bool chunked, bool batch = false)
    {
        var content = new PatternContent(bytes, chunked, batch);
        try
        {
            using var response = await client.PostAsync(path, content);
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static long ResidentBytes(int processId) => StatusKilobytes(processId, "VmRSS:") * 1024;

    /// <summary>A JSON body of one long content string, generated as it is sent (the test process stays small).</summary>
    private sealed class PatternContent : HttpContent
    {
        private readonly long _length;
        private readonly bool _chunked;
        private readonly bool _batch;

        public PatternContent(long length, bool chunked, bool batch)
        {
            _length = length;
            _chunked = chunked;
            _batch = batch;
            Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var head = _batch ? "{\"items\":[{\"content\":\""u8.ToArray() : "{\"content\":\""u8.ToArray();
            var tail = _batch ? "\"}]}"u8.ToArray() : "\"}"u8.ToArray();
            var block = Encoding.ASCII.GetBytes(new string('a', 64 * 1024));
            await stream.WriteAsync(head);
            var left = _length - head.Length - tail.Length;
            while (left > 0)
            {
                var n = (int)Math.Min(block.Length, left);
                await stream.WriteAsync(block.AsMemory(0, n));
                left -= n;
            }
            await stream.WriteAsync(tail);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _length;
            return !_chunked;
        }
    }
}
