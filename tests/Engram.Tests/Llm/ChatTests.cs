using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Llm;

/// <summary>POST /v1/chat against a real server and a scripted model: what the model saw, scope and tenant isolation, streaming, failures.</summary>
public sealed class ChatTests
{
    private sealed record Setup(EngramServer Server, FakeChatModel Model, HttpClient T1, HttpClient T2, HttpClient Alice, Dictionary<string, string> Ids) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            await Model.DisposeAsync();
        }
    }

    /// <summary>Tenant t1 has memories of alice and bob, tenant t2 one of alice; t1 also has a key scoped to alice.</summary>
    private static async Task<Setup> StartAsync(Action<Core.Llm.LlmOptions>? llm = null)
    {
        var model = await FakeChatModel.StartAsync();
        var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Llm.BaseUrl = model.BaseUrl;
            o.Llm.Model = "fake";
            llm?.Invoke(o.Llm);
        });
        var t1 = server.ClientWithKey(await server.CreateKeyAsync("t1", Role.Write));
        var t2 = server.ClientWithKey(await server.CreateKeyAsync("t2", Role.Write));
        var alice = server.ClientWithKey(await server.CreateKeyAsync("t1", Role.Write, new KeyScope("alice", null)));
        var ids = new Dictionary<string, string>
        {
            ["alice"] = await CreateAsync(t1, new { content = "Alice drinks her coffee as an oat milk flat white zzalice", user_id = "alice", valence = 0.6 }),
            ["alice-sad"] = await CreateAsync(t1, new { content = "Alice spilled coffee on her laptop and lost her thesis zzsad", user_id = "alice", valence = -0.9 }),
            ["bob"] = await CreateAsync(t1, new { content = "Bob drinks his coffee black with sugar zzbob", user_id = "bob" }),
            ["t2"] = await CreateAsync(t2, new { content = "Alice of tenant two drinks coffee with cardamom zzother", user_id = "alice" }),
        };
        return new Setup(server, model, t1, t2, alice, ids);
    }

    private static async Task<string> CreateAsync(HttpClient client, object body)
    {
        var response = await client.PostAsJsonAsync("/v1/memories", body);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.JsonAsync()).GetProperty("id").GetString()!;
    }

    private static Task<HttpResponseMessage> ChatAsync(HttpClient client, string json) =>
        client.PostAsync("/v1/chat", new StringContent(json, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task The_answer_comes_with_the_memories_of_the_scope_that_the_model_saw_and_none_of_another_user_or_tenant()
    {
        await using var s = await StartAsync();
        s.Model.Enqueue(FakeReply.Text("You like an oat milk flat white."));

        var response = await ChatAsync(s.T1, """{"messages":[{"role":"user","content":"How do I take my coffee?"}],"user_id":"alice","k":5}""");

        var body = await response.JsonAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, body.ToString());
        body.GetProperty("answer").GetString().Should().Be("You like an oat milk flat white.");
        body.GetProperty("model").GetString().Should().Be("fake");
        body.GetProperty("took_ms").GetDouble().Should().BeGreaterThan(0);
        var used = body.GetProperty("memories").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        used.Should().Contain(s.Ids["alice"]).And.NotContain(s.Ids["bob"]).And.NotContain(s.Ids["t2"]);
        body.GetProperty("memories")[0].GetProperty("score").GetDouble().Should().BeGreaterThan(0);

        var seen = s.Model.Requests.Should().ContainSingle().Subject;
        seen.Messages[0].Role.Should().Be("system");
        seen.Messages[0].Content.Should().Contain("zzalice").And.MatchRegex(@"\[\d{4}-\d{2}-\d{2}\] Alice drinks");
        seen.AllText.Should().NotContain("zzbob").And.NotContain("zzother");
        seen.Messages[^1].Should().Be(("user", "How do I take my coffee?"));
        seen.AllText.Should().NotContain("felt:", "no lens: no tone");
    }

    [Fact]
    public async Task A_scoped_key_recalls_only_its_scope_and_may_not_name_another()
    {
        await using var s = await StartAsync();

        var own = await ChatAsync(s.Alice, """{"messages":[{"role":"user","content":"coffee"}],"k":10}""");
        own.StatusCode.Should().Be(HttpStatusCode.OK);
        s.Model.Requests.Single().AllText.Should().Contain("zzalice").And.NotContain("zzbob").And.NotContain("zzother");

        await (await ChatAsync(s.Alice, """{"messages":[{"role":"user","content":"coffee"}],"user_id":"bob"}""")).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        s.Model.Requests.Should().HaveCount(1, "a refused chat never reaches the model");

        // Tenant t2 sees its own alice only.
        (await ChatAsync(s.T2, """{"messages":[{"role":"user","content":"coffee"}],"user_id":"alice"}""")).StatusCode.Should().Be(HttpStatusCode.OK);
        s.Model.Requests[1].AllText.Should().Contain("zzother").And.NotContain("zzalice").And.NotContain("zzbob");
    }

    [Fact]
    public async Task The_valence_lens_ranks_strong_feelings_first_and_tells_the_model_their_tone()
    {
        await using var s = await StartAsync();

        var response = await ChatAsync(s.T1, """{"messages":[{"role":"user","content":"coffee"}],"user_id":"alice","k":2,"lens":"valence"}""");

        var body = await response.JsonAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, body.ToString());
        var memories = body.GetProperty("memories").EnumerateArray().ToList();
        memories.Select(m => m.GetProperty("id").GetString()).Should().BeEquivalentTo([s.Ids["alice"], s.Ids["alice-sad"]]);
        memories.Select(m => m.GetProperty("valence").GetDouble()).Should().Contain(-0.9);
        var prompt = s.Model.Requests.Single().Messages[0].Content;
        prompt.Should().Contain("zzsad (felt: negative, -0.9)").And.Contain("zzalice (felt: positive, 0.6)").And.Contain("how it felt");
    }

    [Fact]
    public async Task A_streamed_chat_sends_the_memories_then_the_text_then_a_final_event()
    {
        await using var s = await StartAsync();
        s.Model.Enqueue(new FakeReply { Chunks = ["Oat ", "milk ", "flat white."] });

        using var response = await ChatAsync(s.T1, """{"messages":[{"role":"user","content":"coffee?"}],"user_id":"alice","stream":true}""");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/event-stream");
        var events = ParseEvents(await response.Content.ReadAsStringAsync());
        events.Select(e => e.Name).Should().Equal("memories", "delta", "delta", "delta", "done");
        events[0].Data.GetProperty("memories").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Should().Contain(s.Ids["alice"]).And.NotContain(s.Ids["bob"]);
        events.Skip(1).Take(3).Select(e => e.Data.GetProperty("text").GetString()).Should().Equal("Oat ", "milk ", "flat white.");
        events[^1].Data.GetProperty("answer").GetString().Should().Be("Oat milk flat white.");
        s.Model.Requests.Single().Stream.Should().BeTrue();
    }

    [Fact]
    public async Task A_model_failing_is_a_502_problem_and_no_model_is_a_503_problem()
    {
        await using (var s = await StartAsync(o => o.MaxRetries = 0))
        {
            s.Model.Responder = _ => FakeReply.Error(500, message: "model crashed");
            var failed = await (await ChatAsync(s.T1, """{"messages":[{"role":"user","content":"coffee"}]}""")).ShouldBeProblemAsync(HttpStatusCode.BadGateway);
            failed.GetProperty("reason").GetString().Should().Be("llm_unavailable");
            var streamed = await (await ChatAsync(s.T1, """{"messages":[{"role":"user","content":"coffee"}],"stream":true}""")).ShouldBeProblemAsync(HttpStatusCode.BadGateway);
            streamed.GetProperty("detail").GetString().Should().Contain("500");
        }

        await using var bare = await EngramServer.StartAsync();
        var problem = await (await bare.PostJsonAsync("/v1/chat", """{"messages":[{"role":"user","content":"hi"}]}""")).ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable);
        problem.GetProperty("reason").GetString().Should().Be("llm_not_configured");
        problem.GetProperty("detail").GetString().Should().Contain("LLM_BASE_URL");
    }

    [Fact]
    public async Task A_model_answer_that_is_not_a_chat_completion_is_a_502_problem_not_a_500()
    {
        await using var s = await StartAsync(o => o.MaxRetries = 0);
        s.Model.Responder = request => request.Stream
            ? new FakeReply { RawBytes = "data: [1,2]\n\n"u8.ToArray() }
            : new FakeReply { RawBody = """{"choices":[]}""" };

        var whole = await (await ChatAsync(s.T1, """{"messages":[{"role":"user","content":"coffee"}]}""")).ShouldBeProblemAsync(HttpStatusCode.BadGateway);
        whole.GetProperty("reason").GetString().Should().Be("llm_unavailable");
        whole.GetProperty("detail").GetString().Should().Contain("OpenAI-compatible chat completion");
        var streamed = await (await ChatAsync(s.T1, """{"messages":[{"role":"user","content":"coffee"}],"stream":true}""")).ShouldBeProblemAsync(HttpStatusCode.BadGateway);
        streamed.GetProperty("reason").GetString().Should().Be("llm_unavailable");
    }

    [Fact]
    public async Task Remember_queues_an_extraction_of_the_exchange_that_writes_the_fact_in_the_chat_scope()
    {
        await using var s = await StartAsync();
        s.Model.Enqueue(FakeReply.Text("Lisbon is lovely in spring."));
        // Then the extraction's calls: the facts of the exchange, and the decision against what alice already has.
        s.Model.Responder = r => r.AllText.Contains("keep a memory store current", StringComparison.Ordinal)
            ? FakeReply.Json(new { decisions = new[] { new { fact = 1, @event = "ADD", memory = (int?)null, reason = "new" } } })
            : FakeReply.Json(new { facts = new[] { new { text = "Alice moved to Lisbon", type = "fact", entities = new[] { "Lisbon" }, importance = 0.8, valence = 0.3 } } });

        var response = await ChatAsync(s.T1, """{"messages":[{"role":"user","content":"I moved to Lisbon"}],"user_id":"alice","remember":true}""");
        var body = await response.JsonAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, body.ToString());
        body.GetProperty("answer").GetString().Should().Be("Lisbon is lovely in spring.");
        var jobId = body.GetProperty("remember_job_id").GetString()!;

        JsonElement job;
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while ((job = await (await s.T1.GetAsync($"/v1/jobs/{jobId}")).JsonAsync()).GetProperty("status").GetString() is "queued" or "running")
        {
            waited.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(60), "the extraction job finishes");
            await Task.Delay(100);
        }
        job.GetProperty("status").GetString().Should().Be("succeeded", job.ToString());
        var exchange = job.GetProperty("input").GetProperty("conversation").GetProperty("messages").EnumerateArray()
            .Select(m => (m.GetProperty("role").GetString(), m.GetProperty("content").GetString())).ToList();
        exchange.Should().Equal(("user", "I moved to Lisbon"), ("assistant", "Lisbon is lovely in spring."));
        var id = job.GetProperty("memory_ids")[0].GetString()!;
        var memory = await (await s.T1.GetAsync($"/v1/memories/{id}")).JsonAsync();
        memory.GetProperty("content").GetString().Should().Be("Alice moved to Lisbon");
        memory.GetProperty("user_id").GetString().Should().Be("alice");

        // remember writes: a read key may chat but not remember.
        var reader = s.Server.ClientWithKey(await s.Server.CreateKeyAsync("t1", Role.Read));
        await (await ChatAsync(reader, """{"messages":[{"role":"user","content":"hi"}],"remember":true}""")).ShouldBeProblemAsync(HttpStatusCode.Forbidden);
        (await ChatAsync(reader, """{"messages":[{"role":"user","content":"hi"}]}""")).StatusCode.Should().Be(HttpStatusCode.OK, "a read key may chat");
    }

    [Theory]
    [InlineData("""{}""", "messages")]
    [InlineData("""{"messages":[]}""", "messages")]
    [InlineData("""{"messages":"hi"}""", "messages")]
    [InlineData("""{"messages":[{"role":"robot","content":"hi"}]}""", "messages[0].role")]
    [InlineData("""{"messages":[{"role":"user"}]}""", "messages[0].content")]
    [InlineData("""{"messages":[{"role":"user","content":{"text":"hi"}}]}""", "messages[0].content")]
    [InlineData("""{"messages":[{"role":"assistant","content":"hello"}]}""", "messages")]
    [InlineData("""{"messages":[{"role":"user","content":"   "}]}""", "messages")]
    [InlineData("""{"messages":[null]}""", "messages[0]")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"k":0}""", "k")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"lens":"mood"}""", "lens")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"temperature":7}""", "temperature")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"filters":{"user_id":"bob"}}""", "filters")]
    public async Task Hostile_bodies_are_400_problems_and_never_reach_the_model(string json, string field)
    {
        await using var s = await StartAsync();

        await (await ChatAsync(s.T1, json)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
        s.Model.Requests.Should().BeEmpty();
    }

    internal static List<(string Name, JsonElement Data)> ParseEvents(string text)
    {
        var events = new List<(string, JsonElement)>();
        foreach (var block in text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = block.Split('\n');
            var name = lines.First(l => l.StartsWith("event: ", StringComparison.Ordinal))["event: ".Length..];
            var data = lines.First(l => l.StartsWith("data: ", StringComparison.Ordinal))["data: ".Length..];
            events.Add((name, JsonDocument.Parse(data).RootElement.Clone()));
        }
        return events;
    }
}
