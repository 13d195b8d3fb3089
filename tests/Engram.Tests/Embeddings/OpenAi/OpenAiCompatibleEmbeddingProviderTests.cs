using System.Diagnostics;
using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using Engram.Core.Embeddings;
using Engram.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace Engram.Tests.Embeddings.OpenAi;

public sealed class OpenAiCompatibleEmbeddingProviderTests : IAsyncLifetime
{
    private FakeEmbeddingServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeEmbeddingServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    /// <summary>Options against the fake server with tiny backoff, so retries cost milliseconds.</summary>
    private OpenAiEmbeddingOptions Options(Action<OpenAiEmbeddingOptions>? configure = null)
    {
        var options = new OpenAiEmbeddingOptions
        {
            BaseUrl = _server.BaseUrl,
            Model = "test-embed",
            Timeout = TimeSpan.FromSeconds(10),
            RetryBaseDelay = TimeSpan.FromMilliseconds(1),
            RetryMaxDelay = TimeSpan.FromMilliseconds(5),
        };
        configure?.Invoke(options);
        return options;
    }

    private static string[] Texts(int count) => [.. Enumerable.Range(0, count).Select(i => $"memory {i} about topic{i} and item{i * 7}")];

    private static void ShouldMatch(float[] actual, string text, int dimensions)
    {
        actual.Should().HaveCount(dimensions);
        actual.Should().Equal(FakeEmbeddingServer.ExpectedVector(text, dimensions), (a, e) => Math.Abs(a - e) < 1e-5f, $"the vector of \"{text}\"");
    }

    private static JsonObject OpenAiError(string message, string type = "invalid_request_error") =>
        new() { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = null } };

    [Fact]
    public async Task Batching_splits_150_inputs_into_64_64_22_and_keeps_input_order_when_the_server_reorders()
    {
        _server.Shuffle = true;
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());
        var texts = Texts(150);

        var vectors = await provider.EmbedBatchAsync(texts);

        _server.Requests.Select(r => r.Inputs.Count).Should().Equal(64, 64, 22);
        _server.Requests.SelectMany(r => r.Inputs).Should().Equal(texts);
        vectors.Should().HaveCount(150);
        for (var i = 0; i < texts.Length; i++)
        {
            ShouldMatch(vectors[i], texts[i], _server.DefaultDimensions);
        }
    }

    [Fact]
    public async Task MaxBatchSize_is_configurable()
    {
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.MaxBatchSize = 4));

        await provider.EmbedBatchAsync(Texts(10));

        _server.Requests.Select(r => r.Inputs.Count).Should().Equal(4, 4, 2);
    }

    [Fact]
    public async Task Request_is_an_OpenAi_embeddings_call_with_bearer_key_and_float_encoding()
    {
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.ApiKey = "sk-test-123"));

        var vector = await provider.EmbedAsync("hello world");

        var request = _server.Requests.Should().ContainSingle().Subject;
        request.Method.Should().Be("POST");
        request.Path.Should().Be("/v1/embeddings");
        request.Authorization.Should().Be("Bearer sk-test-123");
        request.ContentType.Should().StartWith("application/json");
        request.Model.Should().Be("test-embed");
        request.EncodingFormat.Should().Be("float");
        request.Inputs.Should().Equal("hello world");
        request.Body.ContainsKey("dimensions").Should().BeFalse("no Dimensions is configured");
        ShouldMatch(vector, "hello world", _server.DefaultDimensions);
    }

    [Fact]
    public async Task No_authorization_header_without_a_key_and_a_trailing_slash_in_the_base_url_is_fine()
    {
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.BaseUrl += "/"));

        await provider.EmbedAsync("hello");

        var request = _server.Requests.Should().ContainSingle().Subject;
        request.Authorization.Should().BeNull();
        request.Path.Should().Be("/v1/embeddings");
    }

    [Fact]
    public async Task Configured_dimensions_are_sent_checked_and_part_of_the_model_id()
    {
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.Dimensions = 32));

        provider.ModelId.Should().Be("openai:test-embed:32");
        provider.Dimensions.Should().Be(32);
        var vector = await provider.EmbedAsync("short vectors please");

        _server.Requests.Single().Dimensions.Should().Be(32);
        ShouldMatch(vector, "short vectors please", 32);
    }

    [Fact]
    public async Task Without_configured_dimensions_the_length_is_learned_from_the_first_response()
    {
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());
        provider.ModelId.Should().Be("openai:test-embed");
        provider.Dimensions.Should().Be(0);

        await provider.EmbedAsync("learn me");

        provider.Dimensions.Should().Be(_server.DefaultDimensions);
    }

    [Fact]
    public async Task Vectors_are_normalized_and_a_zero_vector_stays_zero()
    {
        _server.Scale = 7.5f;
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());

        // "!!!" has no word, so the hash model (and the fake server) gives zeros for it.
        var vectors = await provider.EmbedBatchAsync(["scaled up vector", "!!!"]);

        TensorPrimitives.Norm(vectors[0]).Should().BeApproximately(1f, 1e-5f);
        ShouldMatch(vectors[0], "scaled up vector", _server.DefaultDimensions);
        vectors[1].Should().HaveCount(_server.DefaultDimensions).And.OnlyContain(v => v == 0f);
    }

    [Fact]
    public async Task Vectors_whose_squared_length_overflows_a_float_are_still_normalized()
    {
        _server.Handler = (context, request) => FakeEmbeddingServer.WriteTextAsync(context, 200,
            "{\"data\":[{\"index\":0,\"embedding\":[2e38,-2e38,0]}]}");
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());

        var vector = await provider.EmbedAsync("huge");

        var half = MathF.Sqrt(0.5f);
        vector.Should().Equal([half, -half, 0f], (a, e) => Math.Abs(a - e) < 1e-6f);
    }

    [Fact]
    public async Task Blank_texts_are_not_sent_and_get_zero_vectors()
    {
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.Dimensions = 16));

        var vectors = await provider.EmbedBatchAsync(["", "real text", "   "]);

        _server.Requests.Should().ContainSingle().Which.Inputs.Should().Equal("real text");
        vectors[0].Should().HaveCount(16).And.OnlyContain(v => v == 0f);
        ShouldMatch(vectors[1], "real text", 16);
        vectors[2].Should().HaveCount(16).And.OnlyContain(v => v == 0f);
    }

    [Fact]
    public async Task Only_blank_texts_with_unknown_dimensions_ask_the_server_once_for_the_length()
    {
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());

        var first = await provider.EmbedAsync(" ");
        var second = await provider.EmbedAsync("");

        first.Should().HaveCount(_server.DefaultDimensions).And.OnlyContain(v => v == 0f);
        second.Should().HaveCount(_server.DefaultDimensions);
        _server.Requests.Should().ContainSingle("the learned length is kept");
    }

    [Fact]
    public async Task Status_429_with_Retry_After_is_honoured_then_succeeds()
    {
        _server.Handler = (context, request) =>
        {
            if (request.Number == 1)
            {
                context.Response.Headers.RetryAfter = "1";
                return FakeEmbeddingServer.WriteJsonAsync(context, 429, OpenAiError("Rate limit reached", "requests"));
            }
            return _server.WriteEmbeddingsAsync(context, request);
        };
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());

        var vector = await provider.EmbedAsync("rate limited");

        ShouldMatch(vector, "rate limited", _server.DefaultDimensions);
        var requests = _server.Requests;
        requests.Should().HaveCount(2);
        // The backoff alone would be a few milliseconds; the server asked for one second.
        (requests[1].ReceivedAt - requests[0].ReceivedAt).Should().BeGreaterThan(TimeSpan.FromMilliseconds(900));
    }

    [Fact]
    public async Task Status_503_with_retry_after_ms_is_honoured()
    {
        _server.Handler = (context, request) =>
        {
            if (request.Number == 1)
            {
                context.Response.Headers["retry-after-ms"] = "300";
                return FakeEmbeddingServer.WriteTextAsync(context, 503, "overloaded", "text/plain");
            }
            return _server.WriteEmbeddingsAsync(context, request);
        };
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());

        await provider.EmbedAsync("busy");

        var requests = _server.Requests;
        requests.Should().HaveCount(2);
        (requests[1].ReceivedAt - requests[0].ReceivedAt).Should().BeGreaterThan(TimeSpan.FromMilliseconds(250));
    }

    [Fact]
    public async Task Retry_After_longer_than_MaxRetryAfter_fails_at_once_as_transient_with_the_wait()
    {
        _server.Handler = (context, request) =>
        {
            context.Response.Headers.RetryAfter = "120";
            return FakeEmbeddingServer.WriteJsonAsync(context, 429, OpenAiError("Rate limit reached", "requests"));
        };
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.MaxRetryAfter = TimeSpan.FromSeconds(5)));

        var act = async () => await provider.EmbedAsync("later please");

        var error = (await act.Should().ThrowAsync<EmbeddingException>()).Which;
        error.IsTransient.Should().BeTrue();
        error.StatusCode.Should().Be(429);
        error.RetryAfter.Should().Be(TimeSpan.FromSeconds(120));
        error.Message.Should().Contain("Rate limit reached");
        _server.Requests.Should().HaveCount(1);
    }

    [Fact]
    public async Task Status_500_twice_then_success_makes_three_attempts()
    {
        _server.Handler = (context, request) => request.Number <= 2
            ? FakeEmbeddingServer.WriteJsonAsync(context, 500, OpenAiError("The server had an error", "server_error"))
            : _server.WriteEmbeddingsAsync(context, request);
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());

        var vectors = await provider.EmbedBatchAsync(["one", "two"]);

        _server.Requests.Should().HaveCount(3);
        _server.Requests.Should().OnlyContain(r => r.Inputs.SequenceEqual(new[] { "one", "two" }), "a retry resends the same batch");
        ShouldMatch(vectors[0], "one", _server.DefaultDimensions);
        ShouldMatch(vectors[1], "two", _server.DefaultDimensions);
    }

    [Fact]
    public async Task Persistent_500_gives_a_transient_exception_after_MaxRetries_plus_one_attempts()
    {
        _server.Handler = (context, request) =>
            FakeEmbeddingServer.WriteJsonAsync(context, 500, OpenAiError("The server had an error while processing your request", "server_error"));
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.MaxRetries = 3));

        var act = async () => await provider.EmbedAsync("doomed");

        var error = (await act.Should().ThrowAsync<EmbeddingException>()).Which;
        error.IsTransient.Should().BeTrue();
        error.StatusCode.Should().Be(500);
        error.Attempts.Should().Be(4);
        error.Message.Should().Contain("The server had an error while processing your request").And.Contain("4 attempts");
        _server.Requests.Should().HaveCount(4);
    }

    [Fact]
    public async Task MaxRetries_zero_makes_a_single_attempt()
    {
        _server.Handler = (context, request) => FakeEmbeddingServer.WriteTextAsync(context, 502, "bad gateway", "text/plain");
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.MaxRetries = 0));

        var act = async () => await provider.EmbedAsync("once");

        (await act.Should().ThrowAsync<EmbeddingException>()).Which.IsTransient.Should().BeTrue();
        _server.Requests.Should().HaveCount(1);
    }

    [Fact]
    public async Task Status_401_fails_at_once_as_permanent_with_the_servers_message()
    {
        _server.Handler = (context, request) =>
            FakeEmbeddingServer.WriteJsonAsync(context, 401, OpenAiError("Incorrect API key provided: sk-wrong."));
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.ApiKey = "sk-wrong"));

        var act = async () => await provider.EmbedAsync("secret");

        var error = (await act.Should().ThrowAsync<EmbeddingException>()).Which;
        error.IsTransient.Should().BeFalse();
        error.StatusCode.Should().Be(401);
        error.Attempts.Should().Be(1);
        // The server's message, with the key it quotes masked (issue 11: secrets never reach errors or logs).
        error.Message.Should().Contain("Incorrect API key provided: ***.").And.Contain("401").And.NotContain("sk-wrong");
        _server.Requests.Should().HaveCount(1);
    }

    [Theory]
    [InlineData(400, "{\"error\":\"input length exceeds the context length\"}", "input length exceeds the context length")]
    [InlineData(403, "{\"error\":{\"message\":\"You are not allowed to use this model\"}}", "You are not allowed to use this model")]
    [InlineData(404, "{\"error\":\"model \\\"nomic\\\" not found, try pulling it first\"}", "model \"nomic\" not found, try pulling it first")]
    [InlineData(404, "<html><body>Not Found</body></html>", "<html><body>Not Found</body></html>")]
    public async Task Client_errors_are_not_retried_and_carry_the_servers_message(int status, string body, string expected)
    {
        _server.Handler = (context, request) => FakeEmbeddingServer.WriteTextAsync(context, status, body);
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());

        var act = async () => await provider.EmbedAsync("anything");

        var error = (await act.Should().ThrowAsync<EmbeddingException>()).Which;
        error.IsTransient.Should().BeFalse();
        error.StatusCode.Should().Be(status);
        error.Message.Should().Contain(expected);
        _server.Requests.Should().HaveCount(1);
    }

    [Fact]
    public async Task A_server_that_never_answers_times_out_as_transient_without_hanging()
    {
        _server.Handler = (context, request) => Task.Delay(Timeout.Infinite, context.RequestAborted);
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o =>
        {
            o.Timeout = TimeSpan.FromMilliseconds(300);
            o.MaxRetries = 1;
        }));
        var stopwatch = Stopwatch.StartNew();

        var act = async () => await provider.EmbedAsync("anyone there?");

        var error = (await act.Should().ThrowAsync<EmbeddingException>()).Which;
        stopwatch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(5));
        error.IsTransient.Should().BeTrue();
        error.StatusCode.Should().BeNull();
        error.Attempts.Should().Be(2);
        error.Message.Should().Contain("no answer within");
        _server.Requests.Should().HaveCount(2);
    }

    [Fact]
    public async Task A_server_that_stalls_in_the_middle_of_the_body_times_out_too()
    {
        _server.Handler = async (context, request) =>
        {
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("{\"data\":[{\"index\":0,\"embedding\":[0.1,");
            await context.Response.Body.FlushAsync();
            await Task.Delay(Timeout.Infinite, context.RequestAborted);
        };
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o =>
        {
            o.Timeout = TimeSpan.FromMilliseconds(300);
            o.MaxRetries = 0;
        }));

        var act = async () => await provider.EmbedAsync("half an answer");

        (await act.Should().ThrowAsync<EmbeddingException>().WaitAsync(TimeSpan.FromSeconds(5))).Which.IsTransient.Should().BeTrue();
    }

    [Fact]
    public async Task Connection_refused_is_transient_and_retried()
    {
        var closedPort = EngramServer.FreePort();
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o =>
        {
            o.BaseUrl = $"http://127.0.0.1:{closedPort}/v1";
            o.MaxRetries = 2;
        }));

        var act = async () => await provider.EmbedAsync("nobody home");

        var error = (await act.Should().ThrowAsync<EmbeddingException>().WaitAsync(TimeSpan.FromSeconds(10))).Which;
        error.IsTransient.Should().BeTrue();
        error.StatusCode.Should().BeNull();
        error.Attempts.Should().Be(3);
        error.InnerException.Should().BeOfType<HttpRequestException>();
    }

    [Fact]
    public async Task Wrong_vector_length_against_configured_dimensions_fails_as_permanent()
    {
        _server.Handler = (context, request) =>
            FakeEmbeddingServer.WriteJsonAsync(context, 200, FakeEmbeddingServer.EmbeddingsBody(request.Inputs, 16));
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.Dimensions = 32));

        var act = async () => await provider.EmbedAsync("ignores dimensions");

        var error = (await act.Should().ThrowAsync<EmbeddingException>()).Which;
        error.IsTransient.Should().BeFalse();
        error.Message.Should().Contain("16 dimensions, expected 32");
        _server.Requests.Should().HaveCount(1);
    }

    [Fact]
    public async Task A_later_response_with_another_length_than_the_learned_one_fails()
    {
        _server.Handler = (context, request) => FakeEmbeddingServer.WriteJsonAsync(
            context, 200, FakeEmbeddingServer.EmbeddingsBody(request.Inputs, request.Number == 1 ? 24 : 12));
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());
        await provider.EmbedAsync("first");

        var act = async () => await provider.EmbedAsync("second");

        (await act.Should().ThrowAsync<EmbeddingException>()).Which.Message.Should().Contain("12 dimensions, expected 24");
        provider.Dimensions.Should().Be(24);
    }

    [Theory]
    [InlineData("{\"data\":[{\"index\":0,\"embedding\":[0.1,0.2]", "invalid JSON")]
    [InlineData("not json at all", "invalid JSON")]
    [InlineData("", "invalid JSON")]
    [InlineData("{\"object\":\"list\"}", "no \"data\" array")]
    [InlineData("[1,2,3]", "no \"data\" array")]
    [InlineData("{\"data\":[{\"index\":0,\"embedding\":[0.1,0.2]}]}", "1 embeddings for 2 inputs")]
    [InlineData("{\"data\":[{\"index\":0,\"embedding\":[0.1,0.2]},{\"index\":0,\"embedding\":[0.3,0.4]}]}", "out of range or repeated")]
    [InlineData("{\"data\":[{\"index\":0,\"embedding\":[0.1,0.2]},{\"index\":5,\"embedding\":[0.3,0.4]}]}", "out of range or repeated")]
    [InlineData("{\"data\":[{\"index\":0,\"embedding\":\"AAAAAA==\"},{\"index\":1,\"embedding\":[0.3,0.4]}]}", "not an array of floats")]
    [InlineData("{\"data\":[{\"index\":0,\"embedding\":[0.1,\"x\"]},{\"index\":1,\"embedding\":[0.3,0.4]}]}", "is not a finite number")]
    [InlineData("{\"data\":[{\"index\":0,\"embedding\":[0.1,1e39]},{\"index\":1,\"embedding\":[0.3,0.4]}]}", "is not a finite number")]
    [InlineData("{\"data\":[{\"index\":0,\"embedding\":[]},{\"index\":1,\"embedding\":[]}]}", "is empty")]
    [InlineData("{\"data\":[{\"index\":\"a\",\"embedding\":[0.1]},{\"index\":1,\"embedding\":[0.3]}]}", "index is not an integer")]
    public async Task Malformed_responses_fail_as_permanent_without_retrying(string body, string expected)
    {
        _server.Handler = (context, request) => FakeEmbeddingServer.WriteTextAsync(context, 200, body);
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());

        var act = async () => await provider.EmbedBatchAsync(["alpha", "beta"]);

        var error = (await act.Should().ThrowAsync<EmbeddingException>()).Which;
        error.IsTransient.Should().BeFalse();
        error.Message.Should().Contain(expected);
        _server.Requests.Should().HaveCount(1);
    }

    [Fact]
    public async Task Data_without_index_is_taken_in_order()
    {
        _server.Handler = (context, request) =>
        {
            var body = FakeEmbeddingServer.EmbeddingsBody(request.Inputs, 8);
            foreach (var item in body["data"]!.AsArray())
            {
                item!.AsObject().Remove("index");
            }
            return FakeEmbeddingServer.WriteJsonAsync(context, 200, body);
        };
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());

        var vectors = await provider.EmbedBatchAsync(["first text", "second text"]);

        ShouldMatch(vectors[0], "first text", 8);
        ShouldMatch(vectors[1], "second text", 8);
    }

    [Fact]
    public async Task Cancellation_while_waiting_for_an_answer_is_honoured_promptly()
    {
        _server.Handler = (context, request) => Task.Delay(Timeout.Infinite, context.RequestAborted);
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.Timeout = TimeSpan.FromSeconds(30)));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var stopwatch = Stopwatch.StartNew();

        var act = async () => await provider.EmbedAsync("never mind", cts.Token);

        await act.Should().ThrowAsync<OperationCanceledException>();
        stopwatch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Cancellation_during_backoff_is_honoured_promptly()
    {
        _server.Handler = (context, request) => FakeEmbeddingServer.WriteTextAsync(context, 500, "boom", "text/plain");
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o =>
        {
            o.RetryBaseDelay = TimeSpan.FromSeconds(20);
            o.RetryMaxDelay = TimeSpan.FromSeconds(20);
        }));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var stopwatch = Stopwatch.StartNew();

        var act = async () => await provider.EmbedAsync("retry me", cts.Token);

        await act.Should().ThrowAsync<OperationCanceledException>();
        stopwatch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(5));
        _server.Requests.Should().HaveCount(1);
    }

    [Fact]
    public async Task An_already_cancelled_token_sends_nothing()
    {
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options());

        var act = async () => await provider.EmbedAsync("no", new CancellationToken(canceled: true));

        await act.Should().ThrowAsync<OperationCanceledException>();
        _server.Requests.Should().BeEmpty();
    }

    [Fact]
    public async Task Concurrent_calls_each_get_their_own_vectors()
    {
        using var provider = new OpenAiCompatibleEmbeddingProvider(Options(o => o.MaxBatchSize = 3));
        var texts = Texts(40);

        var results = await Task.WhenAll(texts.Chunk(5).Select(chunk => provider.EmbedBatchAsync(chunk).AsTask()));

        var vectors = results.SelectMany(r => r).ToArray();
        for (var i = 0; i < texts.Length; i++)
        {
            ShouldMatch(vectors[i], texts[i], _server.DefaultDimensions);
        }
    }
}

public sealed class OpenAiEmbeddingOptionsTests
{
    private static OpenAiEmbeddingOptions Valid() => new() { BaseUrl = "http://localhost:11434/v1", Model = "nomic-embed-text" };

    [Fact]
    public void Defaults_with_base_url_and_model_are_valid()
    {
        var options = Valid();

        options.Validate().Should().BeEmpty();
        options.MaxBatchSize.Should().Be(64);
        options.Timeout.Should().Be(TimeSpan.FromSeconds(30));
        options.MaxRetries.Should().Be(4);
        options.RetryBaseDelay.Should().Be(TimeSpan.FromMilliseconds(500));
        options.RetryMaxDelay.Should().Be(TimeSpan.FromSeconds(10));
    }

    public static TheoryData<Action<OpenAiEmbeddingOptions>, string> Invalid => new()
    {
        { o => o.BaseUrl = "", "Engram:Embeddings:OpenAi:BaseUrl must be an absolute http(s) URL" },
        { o => o.BaseUrl = "localhost:11434/v1", "Engram:Embeddings:OpenAi:BaseUrl must be an absolute http(s) URL" },
        { o => o.BaseUrl = "ftp://example.com/v1", "Engram:Embeddings:OpenAi:BaseUrl must be an absolute http(s) URL" },
        { o => o.BaseUrl = "https://example.com/v1?key=1", "Engram:Embeddings:OpenAi:BaseUrl must not have a query" },
        { o => o.BaseUrl = "https://user:secret@example.com/v1", "Engram:Embeddings:OpenAi:BaseUrl must not contain credentials" },
        { o => o.Model = " ", "Engram:Embeddings:OpenAi:Model must be set" },
        { o => o.ApiKey = "sk-abc\n", "Engram:Embeddings:OpenAi:ApiKey" },
        { o => o.ApiKey = "", "Engram:Embeddings:OpenAi:ApiKey" },
        { o => o.Dimensions = 0, "Engram:Embeddings:OpenAi:Dimensions" },
        { o => o.MaxBatchSize = 0, "Engram:Embeddings:OpenAi:MaxBatchSize" },
        { o => o.Timeout = TimeSpan.Zero, "Engram:Embeddings:OpenAi:Timeout" },
        { o => o.Timeout = Timeout.InfiniteTimeSpan, "Engram:Embeddings:OpenAi:Timeout" },
        { o => o.MaxRetries = -1, "Engram:Embeddings:OpenAi:MaxRetries" },
        { o => o.RetryMaxDelay = TimeSpan.FromMilliseconds(100), "Engram:Embeddings:OpenAi:RetryBaseDelay" },
        { o => o.MaxRetryAfter = TimeSpan.FromSeconds(-1), "Engram:Embeddings:OpenAi:MaxRetryAfter" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Invalid_settings_are_reported_by_name_and_rejected_by_the_provider(Action<OpenAiEmbeddingOptions> change, string expected)
    {
        var options = Valid();
        change(options);

        options.Validate().Should().ContainSingle().Which.Should().StartWith(expected);
        var act = () => new OpenAiCompatibleEmbeddingProvider(options);
        act.Should().Throw<ArgumentException>().WithMessage($"*{expected}*");
    }
}
