using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Llm;
using Engram.Tests.Support;
using Microsoft.Extensions.AI;

namespace Engram.Tests.Llm;

/// <summary>The model client against a scripted OpenAI-compatible endpoint: structured answers, retries, time-outs, streaming, limits.</summary>
public sealed class LanguageModelTests
{
    private sealed record Facts(List<Fact> Items);

    private sealed record Fact(string Text, double Importance);

    private static LanguageModel ModelFor(FakeChatModel fake, Action<LlmOptions>? configure = null)
    {
        var options = new LlmOptions { BaseUrl = fake.BaseUrl, Model = "fake-1", ApiKey = "sk-test-key", MaxRetries = 2, TimeoutSeconds = 10 };
        configure?.Invoke(options);
        return new LanguageModel(options);
    }

    private static readonly ChatMessage[] Ask = [new(ChatRole.User, "extract the facts")];

    private static string? Valid(Facts facts) => facts.Items is null ? "items is missing" : facts.Items.Any(f => f.Importance is < 0 or > 1) ? "importance must be between 0 and 1" : null;

    private static Task<Facts> AskAsync(LanguageModel model) => model.AskJsonAsync<Facts>(Ask, "facts", EngramJson.Options, Valid);

    [Fact]
    public async Task A_schema_answer_is_asked_for_with_response_format_and_the_key_and_parsed()
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Enqueue(FakeReply.Text("""{"items":[{"text":"lives in Berlin","importance":0.6}]}"""));
        using var model = ModelFor(fake);

        var facts = await AskAsync(model);

        facts.Items.Should().ContainSingle().Which.Text.Should().Be("lives in Berlin");
        var request = fake.Requests.Should().ContainSingle().Subject;
        request.ResponseFormat.Should().Be("json_schema");
        request.Body.GetProperty("response_format").GetProperty("json_schema").GetProperty("schema").GetProperty("properties").TryGetProperty("items", out _).Should().BeTrue();
        request.Body.GetProperty("model").GetString().Should().Be("fake-1");
        request.Authorization.Should().Be("Bearer sk-test-key");
        model.Status().Calls.Should().Be(1);
        model.Status().LastError.Should().BeNull();
    }

    [Theory]
    [InlineData("```json\n{\"items\":[{\"text\":\"a\",\"importance\":0.5}]}\n```")]
    [InlineData("<think>The user wants {facts}. Let me think [carefully].</think>\n{\"items\":[{\"text\":\"a\",\"importance\":0.5}]}")]
    [InlineData("Sure! Here are the facts:\n{\"items\":[{\"text\":\"a\",\"importance\":0.5},]}\nLet me know if you need more.")]
    [InlineData("{\"items\":[{\"text\":\"a } tricky { string\",\"importance\":0.5}]}")]
    public async Task Fences_think_blocks_prose_and_trailing_commas_are_read_through(string answer)
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Enqueue(FakeReply.Text(answer));
        using var model = ModelFor(fake);

        (await AskAsync(model)).Items.Should().ContainSingle();
        fake.Requests.Should().HaveCount(1, "a usable answer needs no second call");
    }

    [Theory]
    [InlineData("I could not find any facts, sorry.")]
    [InlineData("{\"items\":[{\"text\":\"a\",\"importance\":\"high\"}]}")]
    [InlineData("{\"items\":[{\"text\":\"a\",\"importance\":7}]}")]
    [InlineData("{\"items\":[{\"text\":\"a\",\"importance\":0.5}")]
    public async Task A_bad_answer_is_sent_back_once_with_the_problem_and_the_second_answer_is_used(string bad)
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Enqueue(FakeReply.Text(bad), FakeReply.Text("""{"items":[]}"""));
        using var model = ModelFor(fake);

        (await AskAsync(model)).Items.Should().BeEmpty();

        fake.Requests.Should().HaveCount(2);
        var retry = fake.Requests[1].Messages;
        retry[^2].Should().Be(("assistant", bad));
        retry[^1].Role.Should().Be("user");
        retry[^1].Content.Should().StartWith("That answer is not usable: ");
    }

    [Fact]
    public async Task Two_bad_answers_fail_with_the_reason_and_the_raw_answer()
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Responder = _ => FakeReply.Text("no JSON here");
        using var model = ModelFor(fake);

        var failure = (await FluentActions.Awaiting(() => AskAsync(model)).Should().ThrowAsync<LlmOutputException>()).Which;
        failure.Message.Should().Contain("holds no JSON");
        failure.RawAnswer.Should().Be("no JSON here");
        fake.Requests.Should().HaveCount(2);
        model.Status().LastError.Should().StartWith("invalid output: ");
    }

    [Fact]
    public async Task A_429_with_Retry_After_is_retried_after_the_wait()
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Enqueue(FakeReply.Error(429, retryAfterSeconds: 2), FakeReply.Text("""{"items":[]}"""));
        using var model = ModelFor(fake);

        (await AskAsync(model)).Items.Should().BeEmpty();

        fake.Requests.Should().HaveCount(2);
        (fake.Requests[1].ReceivedAt - fake.Requests[0].ReceivedAt).Should().BeGreaterThan(TimeSpan.FromSeconds(1.8), "the endpoint asked for 2 s");
    }

    /// <summary>Found by the probe: the client waited out any Retry-After, so a 429 asking for an hour held a chat request (and a slot) for hours.</summary>
    [Fact]
    public async Task A_429_asking_for_a_long_wait_fails_at_once_with_the_wait_instead_of_holding_the_call()
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Enqueue(FakeReply.Error(429, retryAfterSeconds: 3600), FakeReply.Text("too late"));
        using var model = ModelFor(fake);
        var watch = System.Diagnostics.Stopwatch.StartNew();

        var failure = (await FluentActions.Awaiting(() => model.CompleteAsync(Ask).WaitAsync(TimeSpan.FromSeconds(30)))
            .Should().ThrowAsync<LlmUnavailableException>()).Which;

        watch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10));
        failure.Message.Should().Contain("answered 429");
        failure.RetryAfter.Should().Be(TimeSpan.FromHours(1), "an extraction job backs off this long");
        fake.Requests.Should().HaveCount(1, "no retry in place");
        model.Status().InFlight.Should().Be(0);
    }

    [Fact]
    public async Task Server_errors_are_retried_and_then_reported_with_the_status()
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Responder = _ => FakeReply.Error(500, message: "model crashed");
        using var model = ModelFor(fake, o => o.MaxRetries = 1);

        var failure = (await FluentActions.Awaiting(() => model.CompleteAsync(Ask)).Should().ThrowAsync<LlmUnavailableException>()).Which;
        failure.Message.Should().Contain("answered 500");
        fake.Requests.Should().HaveCount(2, "one attempt and one retry");
        var status = model.Status();
        status.Failures.Should().Be(1);
        status.LastError.Should().Contain("500");
        status.LastErrorAt.Should().NotBeNull();
    }

    [Fact]
    public async Task A_model_that_does_not_answer_in_time_fails_with_the_time_out()
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Responder = _ => new FakeReply { Content = "late", Delay = TimeSpan.FromSeconds(20) };
        using var model = ModelFor(fake, o =>
        {
            o.TimeoutSeconds = 1;
            o.MaxRetries = 0;
        });

        (await FluentActions.Awaiting(() => model.CompleteAsync(Ask)).Should().ThrowAsync<LlmUnavailableException>())
            .Which.Message.Should().Contain("within 1 s");
    }

    [Fact]
    public async Task An_endpoint_without_json_schema_support_is_asked_for_a_json_object_from_then_on()
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Responder = request => request.ResponseFormat == "json_schema"
            ? FakeReply.Error(400, message: "response_format json_schema is not supported by this server")
            : FakeReply.Text("""{"items":[]}""");
        using var model = ModelFor(fake);

        (await AskAsync(model)).Items.Should().BeEmpty();
        (await AskAsync(model)).Items.Should().BeEmpty();

        fake.Requests.Select(r => r.ResponseFormat).Should().Equal("json_schema", "json_object", "json_object");
        fake.Requests[1].AllText.Should().Contain("\"importance\"", "the schema then travels in the prompt");
    }

    [Fact]
    public async Task A_streamed_answer_arrives_in_pieces_that_make_the_whole()
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Enqueue(new FakeReply { Chunks = ["You ", "live in ", "Lisbon."] });
        using var model = ModelFor(fake);

        var pieces = new List<string>();
        await foreach (var update in model.StreamAsync(Ask))
        {
            if (update.Text.Length > 0)
            {
                pieces.Add(update.Text);
            }
        }
        pieces.Should().Equal("You ", "live in ", "Lisbon.");
        fake.Requests.Single().Stream.Should().BeTrue();
    }

    [Fact]
    public async Task Calls_beyond_the_concurrency_limit_wait_their_turn()
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Responder = _ => new FakeReply { Content = "ok", Delay = TimeSpan.FromMilliseconds(200) };
        using var model = ModelFor(fake, o => o.MaxConcurrency = 2);

        await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => model.CompleteAsync(Ask)));

        fake.Requests.Should().HaveCount(6);
        fake.MaxConcurrentRequests.Should().Be(2);
        model.Status().InFlight.Should().Be(0);
    }

    [Fact]
    public async Task The_model_host_is_the_only_host_reached()
    {
        await using var fake = await FakeChatModel.StartAsync();
        using var model = ModelFor(fake);
        var (response, lease) = await model.SendRawAsync("chat/completions", JsonContent("""{"model":"fake-1","messages":[{"role":"user","content":"hi"}]}"""), CancellationToken.None);
        using (lease)
        using (response)
        {
            response.IsSuccessStatusCode.Should().BeTrue();
            (await response.Content.ReadAsStringAsync()).Should().Contain("echo: hi");
        }
        fake.Requests.Single().Authorization.Should().Be("Bearer sk-test-key");
    }

    [Theory]
    [InlineData("", "m", "go together")]
    [InlineData("http://x/v1", "", "go together")]
    [InlineData("ftp://x/v1", "m", "absolute http(s) URL")]
    [InlineData("http://user:pw@x/v1", "m", "without query or credentials")]
    public void Settings_are_checked(string baseUrl, string model, string expected) =>
        new LlmOptions { BaseUrl = baseUrl, Model = model }.Validate().Should().ContainSingle().Which.Should().Contain(expected);

    /// <summary>
    /// Found by the hostile-provider probe: the OpenAI client throws ArgumentException, InvalidOperationException or
    /// NullReferenceException on a 200 answer that is not a chat completion, and those escaped as Engram's own 500s.
    /// </summary>
    [Theory]
    [InlineData("{}")]
    [InlineData("[]")]
    [InlineData("null")]
    [InlineData("\"a string\"")]
    [InlineData("""{"choices":[]}""")]
    [InlineData("""{"choices":null}""")]
    [InlineData("""{"choices":[{"index":0,"message":null}]}""")]
    [InlineData("""{"choices":[{"index":0,"message":{"role":"wizard","content":"x"}}]}""")]
    [InlineData("""{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"tired"}]}""")]
    [InlineData("""{"error":{"message":"quota"}}""")]
    public async Task A_200_answer_that_is_not_a_chat_completion_is_the_model_failing(string body)
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Responder = _ => new FakeReply { RawBody = body };
        using var model = ModelFor(fake, o => o.MaxRetries = 0);

        var failure = (await FluentActions.Awaiting(() => model.CompleteAsync(Ask)).Should().ThrowAsync<LlmUnavailableException>()).Which;
        failure.Message.Should().Contain("could not be read as an OpenAI-compatible chat completion");
        model.Status().Failures.Should().Be(1);
    }

    [Fact]
    public async Task An_answer_that_is_not_UTF_8_is_the_model_failing_streamed_or_not()
    {
        await using var fake = await FakeChatModel.StartAsync();
        var bytes = "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ab"u8.ToArray().Concat(new byte[] { 0xFF, 0xFE })
            .Concat("\"},\"finish_reason\":\"stop\"}]}"u8.ToArray()).ToArray();
        fake.Responder = request => request.Stream
            ? new FakeReply { RawBytes = "data: \"not a chunk\"\n\ndata: [DONE]\n\n"u8.ToArray() }
            : new FakeReply { RawBytes = bytes };
        using var model = ModelFor(fake, o => o.MaxRetries = 0);

        await FluentActions.Awaiting(() => model.CompleteAsync(Ask)).Should().ThrowAsync<LlmUnavailableException>();
        await FluentActions.Awaiting(async () =>
        {
            await foreach (var _ in model.StreamAsync(Ask))
            {
            }
        }).Should().ThrowAsync<LlmUnavailableException>();
        model.Status().Failures.Should().Be(2);
    }

    /// <summary>Left alone by the session-48 probe: a streamed answer with no event in it ended the stream empty, no error.</summary>
    [Theory]
    [InlineData("<html><body>Sign in to continue</body></html>", "text/html")]
    [InlineData("data: [DONE]\n\n", "text/event-stream")]
    [InlineData("", "text/event-stream")]
    public async Task A_streamed_answer_without_any_chunk_is_the_model_failing_not_an_empty_answer(string body, string contentType)
    {
        await using var fake = await FakeChatModel.StartAsync();
        fake.Responder = _ => new FakeReply { RawBytes = System.Text.Encoding.UTF8.GetBytes(body), Headers = new Dictionary<string, string> { ["Content-Type"] = contentType } };
        using var model = ModelFor(fake, o => o.MaxRetries = 0);

        (await FluentActions.Awaiting(async () =>
        {
            await foreach (var _ in model.StreamAsync(Ask))
            {
            }
        }).Should().ThrowAsync<LlmUnavailableException>()).Which.Message.Should().Contain("no chat-completion chunk");
        model.Status().Failures.Should().Be(1);
    }

    [Fact]
    public async Task An_answer_longer_than_the_bound_fails_the_call_without_being_read_whole()
    {
        await using var fake = await FakeChatModel.StartAsync();
        var huge = new string('x', (int)LanguageModel.MaxAnswerBytes + 1024);
        fake.Responder = _ => FakeReply.Text(huge);
        using var model = ModelFor(fake, o => o.MaxRetries = 0);

        (await FluentActions.Awaiting(() => model.CompleteAsync(Ask)).Should().ThrowAsync<LlmUnavailableException>())
            .Which.Message.Should().Contain("longer than 16 MB");
    }

    [Fact]
    public void No_settings_mean_no_model_and_no_error() =>
        new LlmOptions().Validate().Should().BeEmpty();

    private static StringContent JsonContent(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
