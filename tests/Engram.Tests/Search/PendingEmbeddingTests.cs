using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Embeddings;
using Engram.Tests.Embeddings.OpenAi;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

/// <summary>The write path with a real HTTP embeddings endpoint that is down, then comes back.</summary>
public sealed class PendingEmbeddingTests
{
    [Fact]
    public async Task EmbeddingOutage_LosesNoWrite_LexicalFindsItMeanwhile_VectorsArriveAfterRecovery()
    {
        await using var embeddings = await FakeEmbeddingServer.StartAsync();
        var failing = true;
        embeddings.Handler = (context, request) => failing
            ? FakeEmbeddingServer.WriteJsonAsync(context, 503, new JsonObject { ["error"] = new JsonObject { ["message"] = "model is loading" } })
            : embeddings.WriteEmbeddingsAsync(context, request);

        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Embeddings.Provider = EmbeddingSettings.OpenAiProvider;
            o.Embeddings.OpenAi.BaseUrl = embeddings.BaseUrl;
            o.Embeddings.OpenAi.Model = "fake-embed";
            o.Embeddings.OpenAi.MaxRetries = 0;
            o.Embeddings.OpenAi.Timeout = TimeSpan.FromSeconds(5);
        });

        var id = (await server.CreateAsync(new { content = "the quarterly budget review happens in the Lisbon office" })).GetProperty("id").GetString();

        var lexical = await SearchAsync(server, new { query = "budget review Lisbon", k = 3 });
        lexical.Select(r => r.GetProperty("id").GetString()).Should().Equal(id);

        // Embedded at once or by the first retry (when the write landed in the initial build): either way it fails.
        var index = await WaitForIndexAsync(server, i => i.GetProperty("last_embedding_error").ValueKind == JsonValueKind.String);
        index.GetProperty("pending_embeddings").GetInt32().Should().Be(1);
        index.GetProperty("vectors").GetInt32().Should().Be(0);
        index.GetProperty("embedding_model").GetString().Should().Be("openai:fake-embed");
        index.GetProperty("last_embedding_error").GetString().Should().Contain("model is loading");
        (await server.Client.GetAsync($"/v1/memories/{id}")).StatusCode.Should().Be(HttpStatusCode.OK, "the write itself was acknowledged and kept");

        failing = false;
        index = await WaitForIndexAsync(server, i => i.GetProperty("pending_embeddings").GetInt32() == 0);
        index.GetProperty("pending_embeddings").GetInt32().Should().Be(0, "the background retry embeds it once the endpoint is back");
        index.GetProperty("vectors").GetInt32().Should().Be(1);

        var semantic = await SearchAsync(server, new { query = "quarterly budget Lisbon office", k = 3, explain = true, weights = new { semantic = 1, lexical = 0 } });
        semantic.Single().GetProperty("id").GetString().Should().Be(id);
        semantic.Single().GetProperty("explain").GetProperty("cosine").GetDouble().Should().BeGreaterThan(0.3);
        embeddings.Requests.Should().Contain(r => r.Inputs.Contains("the quarterly budget review happens in the Lisbon office"));
    }

    private static async Task<JsonElement> WaitForIndexAsync(EngramServer server, Func<JsonElement, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonElement index;
        do
        {
            index = (await (await server.Client.GetAsync("/v1/stats")).JsonAsync()).GetProperty("index");
            if (condition(index))
            {
                break;
            }
            await Task.Delay(200);
        }
        while (DateTime.UtcNow < deadline);
        return index;
    }

    private static async Task<List<JsonElement>> SearchAsync(EngramServer server, object body)
    {
        var response = await server.PostJsonAsync("/v1/search", JsonSerializer.Serialize(body));
        var json = await response.JsonAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, json.ToString());
        return json.GetProperty("results").EnumerateArray().ToList();
    }
}
