using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Tests.Support;
using static Engram.Tests.Operations.PrometheusTools;

namespace Engram.Tests.Operations;

/// <summary>
/// <c>GET /metrics</c> against the real Prometheus (Debian package <c>prometheus</c>): a scrape queried back
/// through Prometheus's HTTP API, <c>promtool check metrics</c> on the exposition, the shipped alert rules
/// through <c>promtool check rules</c> and <c>promtool test rules</c>, and every metric the dashboard and the
/// rules read checked against what a running server exports.
/// </summary>
/// <remarks>
/// Alone (no other server in the process meanwhile): ASP.NET Core's meters have the same names in every host,
/// and OpenTelemetry ends a stream that two hosts share when the first host stops; a production process has one host.
/// </remarks>
[Collection(nameof(MetricsCollection))]
public sealed partial class MetricsTests : IDisposable
{
    /// <summary>Series Prometheus itself makes for every target.</summary>
    private static readonly HashSet<string> PrometheusOwn = ["up"];

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_real_Prometheus_scrapes_engram_with_an_admin_key_and_answers_a_query_for_its_memories()
    {
        Require(Prometheus);
        await using var server = await EngramServer.StartAsync();
        var key = await server.CreateKeyAsync("default", Role.Admin, name: "prometheus");
        var admin = server.ClientWithKey(key);
        for (var i = 0; i < 7; i++)
        {
            var created = await admin.PostAsJsonAsync("/v1/memories", new { content = $"scraped memory {i}", type = "prometheus-check" }, EngramJson.Options);
            created.StatusCode.Should().Be(HttpStatusCode.Created);
        }
        (await server.Client.GetAsync("/metrics")).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "keys exist and OpenMetrics is off");

        var port = EngramServer.FreePort();
        var config = Path.Combine(_dir.Path, "prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: engram
                metrics_path: /metrics
                authorization:
                  type: Bearer
                  credentials: {key}
                static_configs:
                  - targets: ['{server.BaseAddress.Authority}']
            """);
        var start = new ProcessStartInfo(Prometheus)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(_dir.Path, "tsdb")}", $"--web.listen-address=127.0.0.1:{port}" })
        {
            start.ArgumentList.Add(arg);
        }
        using var prometheus = Process.Start(start)!;
        var log = new System.Text.StringBuilder();
        prometheus.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        prometheus.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        prometheus.BeginOutputReadLine();
        prometheus.BeginErrorReadLine();
        try
        {
            using var api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var up = await QueryUntilAsync(api, "up{job=\"engram\"}", v => v == 1, log);
            up.Should().Be(1, "the scrape with the key succeeded");
            var memories = await QueryUntilAsync(api, "sum(engram_memories{type=\"prometheus-check\"})", v => v == 7, log);
            memories.Should().Be(7);
            (await QueryUntilAsync(api, "count(http_server_request_duration_seconds_count{job=\"engram\"})", v => v > 0, log)).Should().BeGreaterThan(0,
                "ASP.NET Core's own meter is exported beside Engram's");
        }
        finally
        {
            prometheus.Kill(entireProcessTree: true);
            await prometheus.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Promtool_check_metrics_finds_nothing_to_lint_in_a_scrape()
    {
        await using var server = await EngramServer.StartAsync();
        var exposition = await ExerciseAndScrapeAsync(server);
        var (exitCode, output) = await RunAsync(Promtool, exposition, _dir.Path, "check", "metrics");
        output.Trim().Should().BeEmpty($"promtool check metrics lints nothing; the scrape was:\n{exposition}");
        exitCode.Should().Be(0, output);
    }

    [Fact]
    public async Task The_scrape_has_engram_own_metrics_and_the_built_in_meters()
    {
        await using var server = await EngramServer.StartAsync();
        var exposition = await ExerciseAndScrapeAsync(server);
        Value(exposition, "engram_memories", "type=\"metrics-check\"").Should().Be(3);
        Value(exposition, "engram_build_info").Should().Be(1);
        Value(exposition, "engram_search_requests_total", "kind=\"hybrid\"").Should().BeGreaterThanOrEqualTo(1);
        Value(exposition, "engram_search_requests_total", "kind=\"graph\"").Should().BeGreaterThanOrEqualTo(1);
        Value(exposition, "engram_search_duration_seconds_count", "kind=\"hybrid\"").Should().BeGreaterThanOrEqualTo(1);
        Value(exposition, "engram_kv_keys").Should().BeGreaterThanOrEqualTo(2);
        Value(exposition, "engram_graph_entities").Should().BeGreaterThanOrEqualTo(2);
        Value(exposition, "engram_graph_relations").Should().BeGreaterThanOrEqualTo(1);
        Value(exposition, "engram_store_size_bytes").Should().BeGreaterThan(0);
        Value(exposition, "engram_index_lag").Should().NotBeNull();
        Value(exposition, "engram_embedding_pending").Should().NotBeNull();
        Value(exposition, "engram_embedding_failures_total", "op=\"documents\"").Should().NotBeNull("failure counters start at 0");
        Value(exposition, "engram_index_size_bytes", "index=\"vectors\"").Should().NotBeNull();
        var names = SampleNames(exposition);
        names.Should().Contain(["http_server_request_duration_seconds_bucket", "kestrel_active_connections", "dotnet_gc_collections_total",
            "dotnet_thread_pool_thread_count_total", "dotnet_assembly_loaded", "dotnet_timers"]);
    }

    [Fact]
    public async Task The_alert_rules_pass_promtool_check_rules_and_their_unit_tests()
    {
        var monitoring = Path.Combine(RepositoryRoot(), "monitoring");
        var (checkCode, checkOutput) = await RunAsync(Promtool, null, monitoring, "check", "rules", "engram-alerts.yml");
        checkCode.Should().Be(0, checkOutput);
        checkOutput.Should().Contain("SUCCESS");
        var (testCode, testOutput) = await RunAsync(Promtool, null, monitoring, "test", "rules", "engram-alerts.test.yml");
        testCode.Should().Be(0, testOutput);
        testOutput.Should().Contain("SUCCESS");
    }

    [Fact]
    public async Task Every_metric_the_dashboard_and_the_alert_rules_read_is_one_engram_exports()
    {
        var monitoring = Path.Combine(RepositoryRoot(), "monitoring");
        var expressions = new List<(string Where, string Expr)>();
        var rules = await File.ReadAllTextAsync(Path.Combine(monitoring, "engram-alerts.yml"));
        foreach (Match m in RuleExpression().Matches(rules))
        {
            expressions.Add(("engram-alerts.yml", m.Groups["block"].Success ? m.Groups["block"].Value : m.Groups["line"].Value));
        }
        using var dashboard = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(monitoring, "grafana-dashboard.json")));
        foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray())
        {
            foreach (var target in panel.GetProperty("targets").EnumerateArray())
            {
                expressions.Add(($"dashboard panel '{panel.GetProperty("title").GetString()}'", target.GetProperty("expr").GetString()!));
            }
        }
        foreach (var variable in dashboard.RootElement.GetProperty("templating").GetProperty("list").EnumerateArray())
        {
            if (variable.GetProperty("type").GetString() == "query")
            {
                expressions.Add(($"dashboard variable {variable.GetProperty("name").GetString()}", LabelValues().Match(variable.GetProperty("query").GetString()!).Groups[1].Value));
            }
        }
        expressions.Should().HaveCountGreaterThan(20);

        await using var server = await EngramServer.StartAsync();
        var exported = SampleNames(await ExerciseAndScrapeAsync(server));
        var missing = expressions
            .SelectMany(e => MetricNames(e.Expr).Select(name => (e.Where, Name: name)))
            .Where(x => !exported.Contains(x.Name) && !PrometheusOwn.Contains(x.Name))
            .Select(x => $"{x.Name} ({x.Where})")
            .Distinct()
            .ToList();
        missing.Should().BeEmpty("every metric a panel or a rule reads must be exported by Engram");
        MetricNames("histogram_quantile(0.95, sum by (le, kind) (rate(engram_search_duration_seconds_bucket{job=\"$job\"}[5m]))) > 2 * 3600 and up == 0")
            .Should().Equal(["engram_search_duration_seconds_bucket", "up"], "the name extraction itself is sound");
    }

    /// <summary>Writes memories, keys, a graph, searches of each kind and one backup, then scrapes <c>/metrics</c> (open mode: loopback, no keys).</summary>
    [Fact]
    public async Task Relaxed_sets_increments_expiry_changes_and_deletes_through_the_key_value_journal_are_counted_apart()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.KeyValue.Durability = Core.Storage.WriteDurability.Relaxed);
        // A new key is journaled from its first SET (the key filter knows it has no state), and so are the next ones.
        for (var i = 0; i < 4; i++)
        {
            (await server.Client.PutAsJsonAsync("/v1/kv/metrics:journaled", new { value = i })).EnsureSuccessStatusCode();
        }
        for (var i = 0; i < 2; i++)
        {
            (await server.Client.PostAsJsonAsync("/v1/kv/metrics:journaled/incr", new { by = 5 })).EnsureSuccessStatusCode();
        }
        for (var i = 0; i < 2; i++)
        {
            (await server.Client.PostAsJsonAsync("/v1/kv/metrics:journaled/expire", new { ttl_seconds = 600 + i })).EnsureSuccessStatusCode();
        }
        (await server.Client.DeleteAsync("/v1/kv/metrics:journaled")).EnsureSuccessStatusCode();
        var body = await server.Client.GetStringAsync("/metrics");
        // (A write made while a writer group on key states runs, the sweeper's, goes through the writer: hence ranges.
        // At most 4 SETs: the increments, expiry changes and the delete are not counted among them.)
        Value(body, "engram_kv_journal_sets_total").Should().BeInRange(3, 4, body);
        Value(body, "engram_kv_journal_increments_total").Should().BeInRange(1, 2, body);
        Value(body, "engram_kv_journal_expiry_changes_total").Should().BeInRange(1, 2, body);
        Value(body, "engram_kv_journal_deletes_total").Should().BeInRange(0, 1, body);
        Value(body, "engram_kv_journal_pending").Should().NotBeNull(body);
        Value(body, "engram_kv_key_filter_bytes").Should().BeGreaterThanOrEqualTo(256 * 1024, "the smallest filter is 256 KB; " + body);
    }

    private static async Task<string> ExerciseAndScrapeAsync(EngramServer server)
    {
        for (var i = 0; i < 3; i++)
        {
            await server.CreateAsync(new { content = $"metrics check memory {i} about lighthouses", type = "metrics-check" });
        }
        (await server.Client.PutAsJsonAsync("/v1/kv/metrics:one", new { value = 1 })).EnsureSuccessStatusCode();
        (await server.Client.PutAsJsonAsync("/v1/kv/metrics:two", new { value = 2 })).EnsureSuccessStatusCode();
        (await server.PostJsonAsync("/v1/graph/entities", """{"entities":[{"name":"Lighthouse","entity_type":"place"},{"name":"Keeper","entity_type":"person"}]}"""))
            .EnsureSuccessStatusCode();
        (await server.PostJsonAsync("/v1/graph/relations", """{"relations":[{"from":"Keeper","to":"Lighthouse","relation_type":"tends"}]}"""))
            .EnsureSuccessStatusCode();
        await server.SearchAsync(new { query = "lighthouses" });
        (await server.Client.GetAsync("/v1/graph/search?query=lighthouse")).EnsureSuccessStatusCode();
        (await server.Client.GetAsync("/v1/stats")).EnsureSuccessStatusCode();
        // One backup, so the backup series (age, last result, duration) exist: they appear with the first backup.
        (await server.Client.PostAsync("/v1/admin/backups", null)).EnsureSuccessStatusCode();
        // The counts are cached and refreshed in the background once a scrape finds them older than a second.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var response = await server.Client.GetAsync("/metrics");
            var body = await response.Content.ReadAsStringAsync();
            response.StatusCode.Should().Be(HttpStatusCode.OK, body);
            if ((Value(body, "engram_memories", "type=\"metrics-check\"") == 3 && Value(body, "engram_graph_relations") >= 1 && Value(body, "engram_kv_keys") >= 2)
                || DateTime.UtcNow > deadline)
            {
                return body;
            }
            await Task.Delay(300);
        }
    }

    /// <summary>Queries Prometheus until the single result satisfies <paramref name="done"/> (a minute at most); returns the last value.</summary>
    private static async Task<double?> QueryUntilAsync(HttpClient api, string query, Func<double, bool> done, System.Text.StringBuilder log)
    {
        var deadline = DateTime.UtcNow.AddMinutes(1);
        double? last = null;
        string lastBody = "";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                lastBody = await api.GetStringAsync($"/api/v1/query?query={Uri.EscapeDataString(query)}");
                using var json = JsonDocument.Parse(lastBody);
                var result = json.RootElement.GetProperty("data").GetProperty("result");
                if (result.GetArrayLength() > 0)
                {
                    last = double.Parse(result[0].GetProperty("value")[1].GetString()!, System.Globalization.CultureInfo.InvariantCulture);
                    if (done(last.Value))
                    {
                        return last;
                    }
                }
            }
            catch (HttpRequestException)
            {
                // Prometheus is still starting.
            }
            await Task.Delay(500);
        }
        lock (log)
        {
            throw new Xunit.Sdk.XunitException($"Prometheus never answered {query} as expected (last {last}; {lastBody}); its log:\n{log}");
        }
    }

    [GeneratedRegex(@"expr:\s*(?:\|\s*\n(?<block>(?:[ ]{10,}.*\n)+)|(?<line>[^|\n].*))")]
    private static partial Regex RuleExpression();

    [GeneratedRegex(@"label_values\(([^,]+),")]
    private static partial Regex LabelValues();
}

/// <summary>Runs <see cref="MetricsTests"/> after the parallel tests, with no other server in the process.</summary>
[CollectionDefinition(nameof(MetricsCollection), DisableParallelization = true)]
public sealed class MetricsCollection;
