using System.Net;
using Engram.Tests.Operations;
using Engram.Tests.Support;
using static Engram.Tests.Operations.PrometheusTools;

namespace Engram.Tests.Resp;

/// <summary>
/// The RESP endpoint's metrics on <c>/metrics</c> (commands by name, unknown ones folded into one label,
/// errors by kind, connections accepted and closed by reason, bytes) pass <c>promtool check metrics</c>,
/// and INFO's stats sections show the same counts. Alone, with <see cref="MetricsTests"/>: the exported
/// counts sum over every RESP endpoint open in the process.
/// </summary>
[Collection(nameof(MetricsCollection))]
public sealed class RespMetricsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Commands_errors_connections_and_bytes_are_exported_and_info_shows_the_same_counts()
    {
        await using var server = await EngramServer.StartAsync(configure: RespServerFixture.Configure);
        var port = server.RespPort;
        using (var c = await RespClient.ConnectAsync(port))
        {
            (await c.CallAsync("SET", "metrics:a", "1")).Should().Be("+OK");
            (await c.CallAsync("GET", "metrics:a")).Should().Be("1");
            (await c.CallAsync("get", "metrics:b")).Should().BeNull();
            (await c.CallAsync("INCR", "metrics:a")).Should().Be(2L);
            ((string)(await c.CallAsync("SECRETCOMMAND42", "x"))!).Should().StartWith("-ERR unknown command");
            ((string)(await c.CallAsync("LPUSH", "metrics:list", "x"))!).Should().StartWith("-ERR unknown command");
            ((string)(await c.CallAsync("GET"))!).Should().StartWith("-ERR wrong number of arguments");
            (await c.CallAsync("QUIT")).Should().Be("+OK");
        }
        using (var big = await RespClient.ConnectAsync(port))
        {
            await big.SendRawAsync("*2\r\n$3\r\nGET\r\n$99999999999\r\n"u8.ToArray());
            ((string)big.Read()!).Should().StartWith("-ERR Protocol error");
        }
        using var info = await RespClient.ConnectAsync(port);
        var text = "";
        for (var deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            // The closes are counted once the server has seen the two connections end.
            text = (string)(await info.CallAsync("INFO", "all"))!;
            if (text.Contains("engram_closed_oversized_input:1", StringComparison.Ordinal))
            {
                break;
            }
        }
        text.Should().Contain("total_connections_received:3\r\n")
            .And.Contain("cmdstat_get:calls=3\r\n", "two GETs and one with no key")
            .And.Contain("cmdstat_set:calls=1\r\n")
            .And.Contain("cmdstat_incr:calls=1\r\n")
            .And.Contain("cmdstat_unknown:calls=2\r\n")
            .And.Contain("errorstat_ERR:count=4\r\n", "two unknown commands, a wrong arity, a protocol error")
            .And.Contain("engram_closed_oversized_input:1\r\n")
            .And.NotContain("secretcommand42", "a client's command names are never kept");

        var exposition = "";
        for (var deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline; await Task.Delay(100))
        {
            var response = await server.Client.GetAsync("/metrics");
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            exposition = await response.Content.ReadAsStringAsync();
            if (Value(exposition, "engram_resp_connections_closed_total", "reason=\"client\"") >= 1)
            {
                break;
            }
        }
        Value(exposition, "engram_resp_commands_total", "command=\"get\"").Should().Be(3);
        Value(exposition, "engram_resp_commands_total", "command=\"set\"").Should().Be(1);
        Value(exposition, "engram_resp_commands_total", "command=\"unknown\"").Should().Be(2);
        Value(exposition, "engram_resp_commands_total", "command=\"info\"").Should().BeGreaterThanOrEqualTo(1);
        exposition.Should().NotContainEquivalentOf("secretcommand42");
        Value(exposition, "engram_resp_errors_total", "kind=\"ERR\"").Should().Be(4);
        Value(exposition, "engram_resp_errors_total", "kind=\"NOAUTH\"").Should().Be(0);
        Value(exposition, "engram_resp_connections_accepted_total").Should().Be(3);
        Value(exposition, "engram_resp_connections").Should().Be(1, "the INFO connection is open");
        Value(exposition, "engram_resp_connections_closed_total", "reason=\"client\"").Should().Be(1);
        Value(exposition, "engram_resp_connections_closed_total", "reason=\"oversized_input\"").Should().Be(1);
        Value(exposition, "engram_resp_connections_closed_total", "reason=\"idle_timeout\"").Should().Be(0);
        Value(exposition, "engram_resp_received_bytes_total").Should().BeGreaterThan(100);
        Value(exposition, "engram_resp_sent_bytes_total").Should().BeGreaterThan(50);

        var (exitCode, output) = await RunAsync(Promtool, exposition, _dir.Path, "check", "metrics");
        output.Trim().Should().BeEmpty($"promtool check metrics lints nothing; the scrape was:\n{exposition}");
        exitCode.Should().Be(0, output);
    }
}
