using Xunit.Abstractions;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// Hostile request heads against every route the server maps: route parameters (traversal, encoded NUL,
/// long ids, unicode, meta-characters, reserved names), every method a route does not map, query strings,
/// content types, lying lengths and transfer codings, odd and huge headers, malformed request lines; and
/// FTS/SQL/glob meta-characters where text is free (<see cref="MetaPayloads"/>).
/// </summary>
[Trait("Category", "Hostile")]
public sealed class RequestCorpusTests(CorpusServer corpus, ITestOutputHelper output) : IClassFixture<CorpusServer>
{
    [Fact]
    public void The_catalog_holds_every_route_and_the_sample_table_is_current()
    {
        corpus.Routes.Should().Contain(r => r.Template == "/v1/memories/{id}").And.Contain(r => r.Template == "/v1/kv/{key}");
        RouteSamples.Stale(corpus.Routes).Should().BeEmpty("every sample names a route the server maps");
        foreach (var route in corpus.Routes)
        {
            output.WriteLine($"{string.Join(",", route.Methods.Keys),-20} {route.Template}");
        }
        var generic = corpus.Samples.Where(s => !s.Known).Select(s => s.Label).ToList();
        output.WriteLine(generic.Count == 0 ? "every route has a sample" : "routes covered by generic samples: " + string.Join("; ", generic));
    }

    [Fact]
    public async Task Every_route_refuses_hostile_targets_queries_and_headers_and_the_store_is_unchanged()
    {
        var probes = new List<Probe>();
        foreach (var sample in corpus.Samples)
        {
            probes.AddRange(TargetPayloads.RouteParameters(sample, corpus.Target));
            probes.AddRange(TargetPayloads.Queries(sample, corpus.Target));
            probes.AddRange(TargetPayloads.Heads(sample, corpus.Target(sample)));
        }
        foreach (var route in corpus.Routes)
        {
            var get = corpus.Samples.FirstOrDefault(s => s.Pattern == route.Template && s.Method == "GET");
            var any = corpus.Samples.First(s => s.Pattern == route.Template);
            probes.AddRange(TargetPayloads.Methods(route, get, corpus.Target(get ?? any)));
        }
        probes.AddRange(TargetPayloads.RequestLines(corpus.Server.BaseAddress));
        probes.AddRange(MetaPayloads.All());
        await corpus.RunAsync(output, "Hostile targets, queries, headers and meta-characters", probes);
    }
}
