using System.Net;
using Engram.Core.Embeddings;
using Engram.Tests.Embeddings.OpenAi;
using Engram.Tests.Hostile;
using Engram.Tests.Support;

namespace Engram.Tests.Limits;

/// <summary>The per-request time budget (Engram:RequestTimeoutSeconds): a 503 problem body, never a half-done write.</summary>
public sealed class RequestTimeoutTests
{
    [Fact]
    public async Task AWriteWhoseBodyStallsPastTheBudget_Is503Problem_AndStoresNothing()
    {
        // Kestrel alone would wait out its 5 s grace for a slow body and answer 408; the budget stops it at 1 s.
        await using var server = await EngramServer.StartAsync(configure: o => o.RequestTimeoutSeconds = 1);

        var answer = await RawHttp.HeadersOnlyAsync(server.BaseAddress, "POST", "/v1/memories/batch", 200, TimeSpan.FromSeconds(30));

        answer.Status.Should().Be(503, answer.Body);
        answer.ContentType.Should().StartWith("application/problem+json");
        answer.Json.GetProperty("detail").GetString().Should().Contain("Engram:RequestTimeoutSeconds");
        var listed = await server.Client.GetAsync("/v1/memories");
        (await listed.JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(0);
        (await server.Client.GetAsync("/health")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task ASearchWaitingOnAStalledEmbedder_Is503Problem()
    {
        await using var embedder = await FakeEmbeddingServer.StartAsync();
        embedder.Handler = (context, _) => Task.Delay(Timeout.Infinite, context.RequestAborted);
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.RequestTimeoutSeconds = 1;
            o.Embeddings = new EmbeddingSettings
            {
                Provider = EmbeddingSettings.OpenAiProvider,
                OpenAi = new OpenAiEmbeddingOptions { BaseUrl = embedder.BaseUrl, Model = "m", Dimensions = 8, MaxRetries = 0 },
            };
        });

        var response = await server.PostJsonAsync("/v1/search", """{"query":"anything at all"}""");

        var problem = await response.ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable);
        problem.GetProperty("detail").GetString().Should().Contain("1 s");
    }

    [Fact]
    public async Task ZeroTurnsTheBudgetOff_ASlowBodyIsThenKestrels408()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.RequestTimeoutSeconds = 0);
        var answer = await RawHttp.HeadersOnlyAsync(server.BaseAddress, "POST", "/v1/memories/batch", 200, TimeSpan.FromSeconds(30));
        answer.Status.Should().Be(408, answer.Body);
    }
}
