using System.Net;
using System.Text;
using Engram.Tests.Support;

namespace Engram.Tests.Hostile;

/// <summary>
/// Key-value targets that name no key or encode it oddly (issue 10, defect 4): <c>PUT /v1/kv</c> and
/// <c>DELETE /v1/kv</c> gave 500 (an ArgumentOutOfRangeException in the key parsing). Every one is a
/// 400 naming <c>key</c> now, and a key is percent-decoded strictly.
/// </summary>
public sealed class KvKeyPathTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();


    [Theory]
    [InlineData("PUT", "/v1/kv", """{"value":1}""")]
    [InlineData("PUT", "/v1/kv/", """{"value":1}""")]
    [InlineData("PUT", "/v1/kv?x", """{"value":1}""")]
    [InlineData("DELETE", "/v1/kv", null)]
    [InlineData("DELETE", "/v1/kv/", null)]
    [InlineData("POST", "/v1/kv/incr", """{"by":1}""")]
    [InlineData("POST", "/v1/kv//expire", """{"ttl_seconds":1}""")]
    public async Task A_target_without_a_key_is_a_400_naming_key(string method, string path, string? json)
    {
        var response = await _server.SendJsonAsync(method, path, json);
        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().NotBe(HttpStatusCode.InternalServerError, text);
        if (path.Contains("?x", StringComparison.Ordinal))
        {
            await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest);
            return;
        }
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "key");
    }

    [Theory]
    [InlineData("/v1/kv/%")]
    [InlineData("/v1/kv/a%2")]
    [InlineData("/v1/kv/a%zz")]
    [InlineData("/v1/kv/%ff")]
    [InlineData("/v1/kv/%ed%a0%80")]     // a surrogate in CESU-8: not UTF-8
    [InlineData("/v1/kv/%c3")]           // a UTF-8 sequence cut short
    [InlineData("/v1/kv/a%0a")]          // a control character
    public async Task A_key_that_is_not_strictly_percent_encoded_UTF8_is_a_400(string path)
    {
        // A bare socket: HttpClient would re-encode "%zz" as "%25zz".
        var answer = await RawHttp.RequestAsync(_server.BaseAddress, "PUT", path, """{"value":1}""", TimeSpan.FromSeconds(20));
        answer.Status.Should().Be(400, answer.Body);
        answer.ContentType.Should().StartWith("application/problem+json");
        answer.Json.GetProperty("field").GetString().Should().Be("key");
        (await (await _server.Client.GetAsync("/v1/kv")).JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(0);
    }

    [Theory]
    [InlineData("/v1/kv/100%25", "100%")]
    [InlineData("/v1/kv/a%2Fb", "a/b")]
    [InlineData("/v1/kv/a/b", "a/b")]
    [InlineData("/v1/kv/caf%C3%A9", "café")]
    [InlineData("/v1/kv/x%20y", "x y")]
    public async Task Encoded_keys_decode_once(string path, string key)
    {
        var put = await _server.SendJsonAsync("PUT", path, """{"value":7}""");
        put.StatusCode.Should().Be(HttpStatusCode.Created, await put.Content.ReadAsStringAsync());
        (await put.JsonAsync()).GetProperty("key").GetString().Should().Be(key);
        (await (await _server.Client.GetAsync(path)).JsonAsync()).GetProperty("value").GetInt32().Should().Be(7);
        (await _server.SendJsonAsync("DELETE", path)).StatusCode.Should().Be(HttpStatusCode.NoContent);
    }
}
