using Engram.Core.Embeddings;
using Engram.Core.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

/// <summary>
/// Search returns fewer than k rather than filler: a memory sharing no word or entity with the query and
/// less similar than the model's calibrated noise floor is not a result.
/// </summary>
public sealed class SearchNoiseTests : IAsyncLifetime
{
    private static readonly double Floor = SimilarityCalibration.For(BuiltinEmbeddingProvider.Default.ModelId).Noise;

    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task SeedAsync()
    {
        string[] contents =
        [
            "I bake sourdough bread every Sunday morning",
            "My sister lives in Lisbon and teaches piano",
            "The car needs new winter tyres before December",
            "We planted tomatoes and basil in the garden",
            "Dentist appointment moved to the 14th at 9am",
            "The team standup is at 10 every weekday",
            "Remember to renew the passport in spring",
            "Our cat Miso hates the vacuum cleaner",
            "I prefer window seats on long flights",
            "Grandma's lasagne recipe uses nutmeg in the sauce",
            "The gym closes early on public holidays",
            "The quarterly report is due on the last Friday",
        ];
        foreach (var content in contents)
        {
            await _server.CreateAsync(new { content });
        }
    }

    [Fact]
    public async Task AQueryAboutSomethingAbsent_ReturnsFewerThanK_NotScoreZeroFiller()
    {
        await SeedAsync();
        var results = await _server.SearchAsync(new { query = "quantum chromodynamics lattice simulations", k = 10, explain = true });
        results.Count.Should().BeLessThan(10, "nothing stored is about this");
        foreach (var hit in results)
        {
            // Whatever remains earned its place: a shared word, or a similarity above the noise floor.
            var e = hit.GetProperty("explain");
            (e.GetProperty("bm25").GetDouble() > 0 || e.GetProperty("cosine").GetDouble() >= Floor).Should().BeTrue(hit.ToString());
        }
    }

    [Fact]
    public async Task APresentTopic_IsStillFound_AndFillsKWhenMemoriesShareItsWords()
    {
        await SeedAsync();
        var results = await _server.SearchAsync(new { query = "when is the dentist appointment", k = 3 });
        results[0].GetProperty("content").GetString().Should().Be("Dentist appointment moved to the 14th at 9am");
    }

    [Fact]
    public async Task MinScore_OnARequest_StillCutsBelowIt()
    {
        await SeedAsync();
        var all = await _server.SearchAsync(new { query = "bread garden tomatoes basil sourdough", k = 10 });
        all.Count.Should().BeGreaterThanOrEqualTo(2);
        var cut = (all[0].GetProperty("score").GetDouble() + all[^1].GetProperty("score").GetDouble()) / 2;
        var kept = await _server.SearchAsync(new { query = "bread garden tomatoes basil sourdough", k = 10, min_score = cut });
        kept.Should().NotBeEmpty().And.HaveCountLessThan(all.Count);
        kept.Should().OnlyContain(h => h.GetProperty("score").GetDouble() >= cut);
    }

    [Fact]
    public async Task DropNoiseOff_FillsKAgain()
    {
        await _server.DisposeAsync();
        _server = await EngramServer.StartAsync(configure: o => o.Search.DropNoise = false);
        await SeedAsync();
        var results = await _server.SearchAsync(new { query = "quantum chromodynamics lattice simulations", k = 10 });
        results.Should().HaveCount(10, "without the floor every candidate is returned, however unrelated");
    }
}
