using Xunit.Abstractions;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// Hostile bodies against every route and method the server maps (read from its endpoint data source):
/// broken and truncated JSON, wrong top-level values, deep nesting, invalid UTF-8, NUL bytes, lone
/// surrogates, unknown and duplicate fields, every field given every wrong type, hostile numbers,
/// oversized strings and arrays. Every answer is a 4xx problem (or the route's normal answer where it
/// reads no body, or a case listed in <see cref="Exceptions"/>), and the store is unchanged afterwards.
/// </summary>
[Trait("Category", "Hostile")]
public sealed class BodyCorpusTests(CorpusServer corpus, ITestOutputHelper output) : IClassFixture<CorpusServer>
{
    [Fact]
    public async Task Every_route_refuses_every_hostile_body_and_the_store_is_unchanged()
    {
        var probes = corpus.Samples.SelectMany(s => BodyPayloads.For(s, corpus.Target(s))).ToList();
        await corpus.RunAsync(output, "Hostile bodies", probes);
    }
}
