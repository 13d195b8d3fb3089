using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Engram.Core.Security;
using Engram.Tests.Support;
using OpenAI;
using OpenAI.Chat;

namespace Engram.Tests.Llm;

/// <summary>The OpenAI-compatible memory proxy (POST /v1/chat/completions, GET /v1/models), driven by the official OpenAI .NET client.</summary>
public sealed class ChatProxyTests
{
    private sealed record Setup(EngramServer Server, FakeChatModel Model, string WriterKey, string AliceKey) : IAsyncDisposable
    {
        public ChatClient Client(string key, string model = "gpt-4o") =>
            new(model, new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(Server.BaseAddress, "/v1"), NetworkTimeout = TimeSpan.FromSeconds(60) });

        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            await Model.DisposeAsync();
        }
    }

    private static async Task<Setup> StartAsync(Action<Core.Llm.LlmOptions>? llm = null)
    {
        var model = await FakeChatModel.StartAsync();
        var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Llm.BaseUrl = model.BaseUrl;
            o.Llm.Model = "fake-upstream";
            o.Llm.ApiKey = "sk-upstream";
            llm?.Invoke(o.Llm);
        });
        var writerKey = await server.CreateKeyAsync("t1", Role.Write);
        var writer = server.ClientWithKey(writerKey);
        var other = server.ClientWithKey(await server.CreateKeyAsync("t2", Role.Write));
        foreach (var (client, body) in new (HttpClient, object)[]
        {
            (writer, new { content = "Alice is allergic to peanuts zzalice", user_id = "alice" }),
            (writer, new { content = "Bob is allergic to shellfish zzbob", user_id = "bob" }),
            (other, new { content = "Alice of the other tenant is allergic to gluten zzother", user_id = "alice" }),
        })
        {
            (await client.PostAsJsonAsync("/v1/memories", body)).StatusCode.Should().Be(HttpStatusCode.Created);
        }
        return new Setup(server, model, writerKey, await server.CreateKeyAsync("t1", Role.Read, new KeyScope("alice", null)));
    }

    [Fact]
    public async Task The_official_client_gets_the_upstream_answer_with_the_users_memories_injected()
    {
        await using var s = await StartAsync();
        s.Model.Enqueue(FakeReply.Text("Avoid peanuts."));

        var completion = (await s.Client(s.WriterKey).CompleteChatAsync(
            [new SystemChatMessage("You are a cook."), new UserChatMessage("What am I allergic to?")],
            new ChatCompletionOptions { EndUserId = "alice", Temperature = 0.3f, MaxOutputTokenCount = 50 })).Value;

        completion.Content.Single().Text.Should().Be("Avoid peanuts.");
        completion.Id.Should().Be("chatcmpl-fake", "the upstream body is returned unchanged");
        completion.Usage.TotalTokenCount.Should().Be(15);
        var seen = s.Model.Requests.Single();
        seen.Messages.Select(m => m.Role).Should().Equal("system", "system", "user");
        seen.Messages[0].Content.Should().Be("You are a cook.");
        seen.Messages[1].Content.Should().Contain("zzalice");
        seen.AllText.Should().NotContain("zzbob").And.NotContain("zzother");
        seen.Body.GetProperty("model").GetString().Should().Be("fake-upstream", "the configured model replaces the client's");
        seen.Body.GetProperty("user").GetString().Should().Be("alice", "other fields pass through");
        seen.Body.GetProperty("temperature").GetDouble().Should().BeApproximately(0.3, 1e-6);
        seen.Body.GetProperty("max_completion_tokens").GetInt32().Should().Be(50);
        seen.Authorization.Should().Be("Bearer sk-upstream", "the configured key goes upstream, never the caller's");
    }

    [Fact]
    public async Task A_streamed_completion_is_relayed_chunk_by_chunk()
    {
        await using var s = await StartAsync();
        s.Model.Enqueue(new FakeReply { Chunks = ["Avoid ", "peanuts", "."] });

        var pieces = new List<string>();
        await foreach (var update in s.Client(s.WriterKey).CompleteChatStreamingAsync(
            [new UserChatMessage("What am I allergic to?")], new ChatCompletionOptions { EndUserId = "alice" }))
        {
            pieces.AddRange(update.ContentUpdate.Select(p => p.Text));
        }

        pieces.Should().Equal("Avoid ", "peanuts", ".");
        var seen = s.Model.Requests.Single();
        seen.Stream.Should().BeTrue();
        seen.AllText.Should().Contain("zzalice").And.NotContain("zzbob");
    }

    /// <summary>
    /// Found by the probe: the call's time-out ended with the upstream headers, so a model that stopped sending mid-answer
    /// held the client, and one of the model's concurrency slots, for as long as the client waited (for ever).
    /// </summary>
    [Fact]
    public async Task A_model_that_goes_quiet_mid_answer_is_cut_off_after_the_time_out_and_frees_its_slot()
    {
        await using var s = await StartAsync(o =>
        {
            o.TimeoutSeconds = 1;
            o.MaxRetries = 0;
        });
        s.Model.Enqueue(new FakeReply { Chunks = ["Avoid ", "peanuts", "."], ChunkDelay = TimeSpan.FromSeconds(12) });
        var client = s.Server.ClientWithKey(s.WriterKey);
        client.Timeout = TimeSpan.FromSeconds(60);
        var started = System.Diagnostics.Stopwatch.StartNew();

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"messages":[{"role":"user","content":"hi"}],"stream":true}""", Encoding.UTF8, "application/json"),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        await FluentActions.Awaiting(() => response.Content.ReadAsStringAsync()).Should().ThrowAsync<Exception>("the relay is cut when the model goes quiet");

        started.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(9), "cut after about the 1 s time-out, not after the model's 12 s pause");
        var admin = s.Server.ClientWithKey(await s.Server.CreateKeyAsync("t1", Role.Admin));
        var llm = (await (await admin.GetAsync("/v1/stats")).JsonAsync()).GetProperty("llm").GetProperty("status");
        llm.GetProperty("in_flight").GetInt32().Should().Be(0, "the slot is given back");
        llm.GetProperty("last_error").GetString().Should().Contain("sent nothing for 1 s");
    }

    [Fact]
    public async Task A_scoped_key_decides_the_scope_whatever_user_the_request_names()
    {
        await using var s = await StartAsync();

        await s.Client(s.AliceKey).CompleteChatAsync([new UserChatMessage("allergic")], new ChatCompletionOptions { EndUserId = "bob" });
        await s.Client(s.AliceKey).CompleteChatAsync([new UserChatMessage("allergic")]);

        s.Model.Requests.Should().HaveCount(2).And.OnlyContain(r => r.AllText.Contains("zzalice") && !r.AllText.Contains("zzbob") && !r.AllText.Contains("zzother"));
    }

    [Fact]
    public async Task Upstream_failures_are_returned_as_the_upstream_sent_them()
    {
        await using var s = await StartAsync(o => o.MaxRetries = 0);
        s.Model.Enqueue(FakeReply.Error(429, retryAfterSeconds: 7, message: "slow down"));

        using var response = await s.Server.ClientWithKey(s.WriterKey).PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"x","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));

        response.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        response.Headers.RetryAfter!.Delta.Should().Be(TimeSpan.FromSeconds(7));
        (await response.Content.ReadAsStringAsync()).Should().Contain("slow down");
    }

    [Theory]
    [InlineData(401)]
    [InlineData(403)]
    [InlineData(407)]
    public async Task A_model_that_refuses_engrams_credentials_is_a_502_problem_not_the_clients_authentication_error(int status)
    {
        // Relayed as it was, a 401 made the OpenAI client raise AuthenticationError about the Engram key it sent.
        await using var s = await StartAsync(o => o.MaxRetries = 0);
        s.Model.Enqueue(FakeReply.Error(status, message: "Incorrect API key provided: sk-upst*****"));

        using var response = await s.Server.ClientWithKey(s.WriterKey).PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"x","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));

        response.StatusCode.Should().Be(HttpStatusCode.BadGateway);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        var body = await response.Content.ReadAsStringAsync();
        body.Should().Contain($"refused Engram's credentials ({status})").And.Contain("llm_unavailable").And.NotContain("sk-upst");

        // The official client (which retries a 502 on its own: every answer is the refusal) reports a server error.
        s.Model.Responder = _ => FakeReply.Error(status);
        var official = async () => await s.Client(s.WriterKey).CompleteChatAsync("hi");
        (await official.Should().ThrowAsync<ClientResultException>()).Which.Status.Should().Be(502);
    }

    [Fact]
    public async Task No_model_is_a_503_problem_and_an_unreachable_one_a_502_problem()
    {
        await using (var bare = await EngramServer.StartAsync())
        {
            await (await bare.PostJsonAsync("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}]}""")).ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable);
            var models = await (await bare.Client.GetAsync("/v1/models")).JsonAsync();
            models.GetProperty("data").GetArrayLength().Should().Be(0);
        }

        await using var gone = await EngramServer.StartAsync(configure: o =>
        {
            o.Llm.BaseUrl = $"http://127.0.0.1:{EngramServer.FreePort()}/v1";
            o.Llm.Model = "absent";
            o.Llm.MaxRetries = 0;
        });
        var problem = await (await gone.PostJsonAsync("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}]}""")).ShouldBeProblemAsync(HttpStatusCode.BadGateway);
        problem.GetProperty("reason").GetString().Should().Be("llm_unavailable");
        var listed = await (await gone.Client.GetAsync("/v1/models")).JsonAsync();
        listed.GetProperty("data")[0].GetProperty("id").GetString().Should().Be("absent");
    }

    [Theory]
    [InlineData("""[]""", null)]
    [InlineData("""{}""", "messages")]
    [InlineData("""{"messages":"hi"}""", "messages")]
    [InlineData("""{"messages":[]}""", "messages")]
    [InlineData("""{"messages":[1]}""", "messages[0]")]
    [InlineData("""{"messages":[{"content":"hi"}]}""", "messages[0].role")]
    [InlineData("""{"messages":[{"role":7,"content":"hi"}]}""", "messages[0].role")]
    [InlineData("""{"messages":[{"role":"user","content":{"a":1}}]}""", "messages[0].content")]
    [InlineData("""{"messages":[{"role":"user","content":[1]}]}""", "messages[0].content")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"user":["alice"]}""", "user")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"stream":"yes"}""", "stream")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"model":"a","model":"b"}""", null)]
    public async Task Hostile_requests_are_400_problems_and_never_reach_the_model(string json, string? field)
    {
        await using var s = await StartAsync();

        using var response = await s.Server.ClientWithKey(s.WriterKey).PostAsync("/v1/chat/completions", new StringContent(json, Encoding.UTF8, "application/json"));

        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
        s.Model.Requests.Should().BeEmpty();
    }

    [Fact]
    public async Task Models_lists_the_configured_model_in_the_openai_format()
    {
        await using var s = await StartAsync();
        var models = await (await s.Server.ClientWithKey(s.AliceKey).GetAsync("/v1/models")).JsonAsync();
        models.GetProperty("object").GetString().Should().Be("list");
        models.GetProperty("data")[0].GetProperty("id").GetString().Should().Be("fake-upstream");
    }
}
