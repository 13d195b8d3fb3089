using System.Net;
using System.Text;
using Engram.Core.Embeddings;
using Engram.Core.Security;
using Engram.Tests.Embeddings.OpenAi;
using Engram.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace Engram.Tests.Limits;

/// <summary>The embedder's API key never appears in logs, errors, /health, /v1/stats or search answers.</summary>
public sealed class SecretRedactionTests
{
    private const string Key = "sk-engram-SECRET-7f3a9c1e5b22";

    /// <summary>Failures that echo the request back, Authorization header and all, as careless servers and proxies do.</summary>
    public static TheoryData<string> Failures => ["401", "500-echo", "malformed-200", "400-json-echo"];

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task AFailingEmbedder_ThatEchoesTheKey_YieldsAnErrorWithoutIt(string failure)
    {
        await using var fake = await FakeEmbeddingServer.StartAsync();
        fake.Handler = Failing(failure);
        using var provider = new OpenAiCompatibleEmbeddingProvider(new OpenAiEmbeddingOptions
        {
            BaseUrl = fake.BaseUrl,
            Model = "m",
            ApiKey = Key,
            MaxRetries = 0,
        });

        var act = async () => await provider.EmbedAsync("hello");

        var error = (await act.Should().ThrowAsync<EmbeddingException>()).Which;
        fake.Requests.Should().ContainSingle().Which.Authorization.Should().Be("Bearer " + Key, "the key is sent to the endpoint");
        error.ToString().Should().NotContain(Key).And.NotContain(Key[8..]);
        if (failure != "400-json-echo")
        {
            error.Message.Should().Contain(Secrets.Mask, "the echoed credential is masked where the error quotes it");
        }
    }

    [Fact]
    public async Task TheServer_NeverShowsTheKey_InLogsHealthStatsOrSearch()
    {
        await using var fake = await FakeEmbeddingServer.StartAsync();
        // A server error that echoes the whole request: its text reaches /v1/stats as the last embedding error.
        fake.Handler = Failing("500-echo");
        await using var server = await EngramServer.StartAsync(configure: o => o.Embeddings = new EmbeddingSettings
        {
            Provider = EmbeddingSettings.OpenAiProvider,
            OpenAi = new OpenAiEmbeddingOptions { BaseUrl = fake.BaseUrl, Model = "m", ApiKey = Key, Dimensions = 8, MaxRetries = 0 },
        });
        var logs = LogCapture.AttachTo(server);
        var answers = new StringBuilder();

        for (var i = 0; i < 4; i++)
        {
            answers.Append((await server.CreateAsync(new { content = $"memory number {i}" })).ToString());
            var search = await server.PostJsonAsync("/v1/search", $$"""{"query":"memory {{i}}"}""");
            answers.Append(await search.Content.ReadAsStringAsync());
        }
        // The vectors are retried in the background; wait (bounded) until a failure has been recorded for /v1/stats.
        string stats = "";
        for (var attempt = 0; attempt < 100; attempt++)
        {
            stats = await server.Client.GetStringAsync("/v1/stats");
            if (stats.Contains("\"last_embedding_error\":\"", StringComparison.Ordinal))
            {
                break;
            }
            await Task.Delay(100);
        }
        stats.Should().Contain("\"last_embedding_error\":\"", "an embedding failure is reported in /v1/stats");
        stats.Should().Contain("Authorization: Bearer ***", "the echoed request is shown with its credential masked");
        answers.Append(stats);
        // The failing embedder makes the server unready (503); the answers must not show the key either way.
        var health = await server.Client.GetAsync("/health");
        var healthBody = await health.Content.ReadAsStringAsync();
        healthBody.Should().Contain("\"name\":\"embedder\",\"status\":\"fail\"", "an embedder failing with vectors pending is a failed readiness check");
        answers.Append(healthBody);
        answers.Append(await (await server.Client.GetAsync("/health/ready")).Content.ReadAsStringAsync());

        fake.Requests.Should().NotBeEmpty();
        fake.Requests.Should().OnlyContain(r => r.Authorization == "Bearer " + Key);
        answers.ToString().Should().NotContain(Key[8..]);
        logs.AllText.Should().NotContain(Key[8..]);
    }

    [Theory]
    [InlineData("Authorization: Bearer abcdef123456", "Authorization: Bearer ***")]
    [InlineData("{\"authorization\":\"Token abcdef123456\"}", "{\"authorization\":\"Token ***\"}")]
    [InlineData("x-api-key: eng_abcdef123456", "x-api-key: ***")]
    [InlineData("{\"api_key\": \"abc123456\"}", "{\"api_key\": \"***\"}")]
    [InlineData("nothing secret here, 3 tokens used", "nothing secret here, 3 tokens used")]
    public void Redact_MasksCredentialShapedValues(string text, string expected) =>
        Secrets.Redact(text).Should().Be(expected);

    [Fact]
    public void Options_ToString_MasksTheKey() =>
        new OpenAiEmbeddingOptions { BaseUrl = "http://x/v1", Model = "m", ApiKey = Key }.ToString().Should().NotContain(Key[4..]);

    private static Func<HttpContext, RecordedRequest, Task> Failing(string failure) => (context, request) =>
    {
        var echo = $"{request.Method} {request.Path}\nAuthorization: {request.Authorization}\nContent-Type: {request.ContentType}\n\n{request.Body.ToJsonString()}";
        return failure switch
        {
            "401" => FakeEmbeddingServer.WriteTextAsync(context, 401,
                $$$"""{"error":{"message":"Incorrect API key provided: {{{request.Authorization?.Replace("Bearer ", "")}}}","type":"invalid_request_error"}}"""),
            "500-echo" => FakeEmbeddingServer.WriteTextAsync(context, 500, echo, "text/plain"),
            "malformed-200" => FakeEmbeddingServer.WriteTextAsync(context, 200, "{\"data\": [ truncated " + echo),
            _ => FakeEmbeddingServer.WriteTextAsync(context, 400,
                "{\"error\":\"bad request\",\"request\":{\"headers\":{\"authorization\":\"" + request.Authorization + "\"}}}"),
        };
    };
}
