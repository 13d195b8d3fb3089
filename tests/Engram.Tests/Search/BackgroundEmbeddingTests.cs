using System.Net;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Embeddings;
using Engram.Tests.Embeddings.OpenAi;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Search;

/// <summary>A slow model never holds a write or a search back: vectors fill in behind, through the real server.</summary>
public sealed class BackgroundEmbeddingTests
{
    private const string Content = "the quarterly budget review happens in the Lisbon office";

    [Fact]
    public async Task SlowEmbedder_WriteAndImmediateSearch_FindTheMemoryByItsWords_ThenItsVectorIsAttached()
    {
        await using var embeddings = await FakeEmbeddingServer.StartAsync();
        // Document batches holding the memory wait until released; queries are answered at once.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        embeddings.Handler = async (context, request) =>
        {
            if (request.Inputs.Contains(Content))
            {
                await release.Task;
            }
            await embeddings.WriteEmbeddingsAsync(context, request);
        };
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Embeddings.Provider = EmbeddingSettings.OpenAiProvider;
            o.Embeddings.OpenAi.BaseUrl = embeddings.BaseUrl;
            o.Embeddings.OpenAi.Model = "slow-embed";
            o.Embeddings.OpenAi.Timeout = TimeSpan.FromMinutes(2);
        });
        await WaitForAsync(server, index => index.GetProperty("applied_seq").GetInt64() >= 0); // the maintenance loop runs

        var id = (await server.CreateAsync(new { content = Content })).GetProperty("id").GetString();
        var response = await server.PostJsonAsync("/v1/search", JsonSerializer.Serialize(new { query = "budget review Lisbon", k = 3 }));
        var body = await response.JsonAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, body.ToString());
        body.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Should().Equal(id);
        release.Task.IsCompleted.Should().BeFalse("the search answered while the document embedding was still held");

        var held = await WaitForAsync(server, index => index.GetProperty("pending_embeddings").GetInt32() == 1);
        held.GetProperty("pending_embeddings").GetInt32().Should().Be(1);
        held.GetProperty("vectors").GetInt32().Should().Be(0);

        release.SetResult();
        // The rate is recorded when the worker's batch ends, just after the vector is attached.
        var filled = await WaitForAsync(server, index => index.GetProperty("vectors").GetInt32() == 1 && index.GetProperty("embedding_rate").GetDouble() > 0);
        filled.GetProperty("vectors").GetInt32().Should().Be(1);
        filled.GetProperty("pending_embeddings").GetInt32().Should().Be(0);
        filled.GetProperty("embedded_vectors").GetInt64().Should().Be(1);
        filled.GetProperty("embedding_rate").GetDouble().Should().BeGreaterThan(0);

        var engine = server.Services.GetRequiredService<EngramEngine>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await engine.Store.CountVectorRowsAsync() == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        (await engine.Store.CountVectorRowsAsync()).Should().Be(1, "the worker stored the vector it embedded");
    }

    private static async Task<JsonElement> WaitForAsync(EngramServer server, Func<JsonElement, bool> condition)
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
            await Task.Delay(100);
        }
        while (DateTime.UtcNow < deadline);
        return index;
    }
}
