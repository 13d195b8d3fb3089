using System.Net;
using System.Text;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Hostile;

/// <summary>
/// Request bodies are bounded per route (issue 10, defect 1): a single memory, a search or a PATCH is
/// small, a batch bigger; past the bound the answer is a 413 problem body, whether the body announced
/// its length or came chunked. The old server took 64 MB anywhere and parsed it whole.
/// </summary>
public sealed class BodySizeTests : IAsyncLifetime
{
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(20);

    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static void ShouldBeTooLarge(RawHttp.Answer answer, string setting)
    {
        answer.Status.Should().Be(413, answer.Body);
        answer.ContentType.Should().StartWith("application/problem+json");
        var problem = answer.Json;
        problem.GetProperty("status").GetInt32().Should().Be(413);
        problem.GetProperty("title").GetString().Should().NotBeNullOrEmpty();
        problem.GetProperty("detail").GetString().Should().Contain(setting);
    }

    [Theory]
    [InlineData("POST", "/v1/memories")]
    [InlineData("POST", "/v1/search")]
    [InlineData("PATCH", "/v1/memories/01ARZ3NDEKTSV4RRFFQ69G5FAV")]
    public async Task A_single_memory_route_refuses_an_announced_1MB_body_before_reading_it(string method, string path)
    {
        // Only the headers are sent: the old server waited for the megabyte (its bound was 64 MB).
        var answer = await RawHttp.HeadersOnlyAsync(_server.BaseAddress, method, path, 1024 * 1024, AnswerTimeout);
        ShouldBeTooLarge(answer, "Engram:Limits:MaxRequestBodyBytes");
    }

    [Fact]
    public async Task A_chunked_body_is_refused_once_it_passes_the_bound()
    {
        var answer = await RawHttp.ChunkedAsync(_server.BaseAddress, "POST", "/v1/memories", 2 * 1024 * 1024, AnswerTimeout);
        ShouldBeTooLarge(answer, "Engram:Limits:MaxRequestBodyBytes");
    }

    [Fact]
    public async Task A_batch_route_takes_more_than_a_single_memory_route_and_has_its_own_bound()
    {
        var items = Enumerable.Range(0, 16).Select(i => new { content = $"item {i} " + new string('x', 30_000) }).ToArray();
        var json = JsonSerializer.Serialize(new { items });
        json.Length.Should().BeGreaterThan(400_000);
        var batch = await _server.PostJsonAsync("/v1/memories/batch", json);
        batch.StatusCode.Should().Be(HttpStatusCode.OK, await batch.Content.ReadAsStringAsync());

        var tooBig = await RawHttp.HeadersOnlyAsync(_server.BaseAddress, "POST", "/v1/memories/batch", 17L * 1024 * 1024, AnswerTimeout);
        ShouldBeTooLarge(tooBig, "Engram:Limits:MaxBatchRequestBodyBytes");
        var mset = await RawHttp.HeadersOnlyAsync(_server.BaseAddress, "POST", "/v1/kv/mset", 17L * 1024 * 1024, AnswerTimeout);
        ShouldBeTooLarge(mset, "Engram:Limits:MaxBatchRequestBodyBytes");
    }

    [Fact]
    public async Task A_content_at_its_limit_fits_even_when_every_character_is_escaped()
    {
        // Python's json.dumps writes non-ASCII as \uXXXX: 6 bytes a character. The bound allows for it.
        var content = new string('é', 32_768);
        var escaped = "{\"content\":\"" + string.Concat(Enumerable.Repeat("\\u00e9", content.Length)) + "\"}";
        var response = await _server.PostJsonAsync("/v1/memories", escaped);
        response.StatusCode.Should().Be(HttpStatusCode.Created);
        (await response.JsonAsync()).GetProperty("content").GetString().Should().Be(content);
    }

    [Fact]
    public async Task A_key_value_set_takes_a_value_up_to_its_own_limit()
    {
        var value = new string('v', 1_000_000);
        var response = await _server.Client.PutAsync("/v1/kv/big", new StringContent(JsonSerializer.Serialize(new { value }), Encoding.UTF8, "application/json"));
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());

        var tooBig = await RawHttp.HeadersOnlyAsync(_server.BaseAddress, "PUT", "/v1/kv/big", 2L * 1024 * 1024, AnswerTimeout);
        ShouldBeTooLarge(tooBig, "Engram:KeyValue:MaxValueBytes");
        // A small route stays small: incr takes a number.
        var incr = await RawHttp.HeadersOnlyAsync(_server.BaseAddress, "POST", "/v1/kv/n/incr", 1024 * 1024, AnswerTimeout);
        ShouldBeTooLarge(incr, "Engram:Limits:MaxRequestBodyBytes");
    }

    [Fact]
    public async Task The_bounds_are_configurable()
    {
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Limits.MaxRequestBodyBytes = 2048;
            o.Limits.MaxBatchRequestBodyBytes = 8192;
            o.KeyValue.MaxValueBytes = 1024;
        });
        var fits = await server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = new string('a', 1500) }));
        fits.StatusCode.Should().Be(HttpStatusCode.Created);
        var over = await RawHttp.HeadersOnlyAsync(server.BaseAddress, "POST", "/v1/memories", 3000, AnswerTimeout);
        ShouldBeTooLarge(over, "Engram:Limits:MaxRequestBodyBytes");
        over.Json.GetProperty("detail").GetString().Should().Contain("2048");
        var batch = await RawHttp.HeadersOnlyAsync(server.BaseAddress, "POST", "/v1/memories/batch", 9000, AnswerTimeout);
        ShouldBeTooLarge(batch, "Engram:Limits:MaxBatchRequestBodyBytes");
        batch.Json.GetProperty("detail").GetString().Should().Contain("8192");
    }

    [Fact]
    public async Task A_string_longer_than_any_field_takes_is_refused_while_parsing()
    {
        // 400,000 characters fit the single-memory bound (12 bytes a character allow for escapes) but no field: longer
        // than 12 bytes for each of the longest field's 32,768 characters, it is refused before it becomes a string.
        var response = await _server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = new string('a', 400_000) }));
        (await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "content")).GetProperty("detail").GetString()
            .Should().Be("content is longer than 32768 characters, the most any field takes");
        var tag = await _server.PostJsonAsync("/v1/memories/batch", JsonSerializer.Serialize(new { items = new[] { new { content = "x", tags = new[] { new string('t', 400_000) } } } }));
        await tag.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "items[0].tags");
    }

    [Fact]
    public async Task A_request_with_an_empty_body_says_a_body_is_required()
    {
        var response = await _server.Client.PostAsync("/v1/memories", new StringContent("", Encoding.UTF8, "application/json"));
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "body");
    }
}
