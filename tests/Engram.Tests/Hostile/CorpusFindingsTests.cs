using System.Net;
using System.Text;
using Engram.Tests.Hostile.Corpus;
using Engram.Tests.Support;

namespace Engram.Tests.Hostile;

/// <summary>
/// What the hostile-input corpus (issue 11) found, one test each: a NUL in a query value was read past
/// (<c>limit=1%00</c> as 1), Kestrel's own 405 and 505 went out bare (and 505 is a server error), and
/// the key-value literal routes answered a body without a JSON Content-Type with 404 "no route".
/// </summary>
public sealed class CorpusFindingsTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private Task<HostileAnswer> SendAsync(HostileRequest request) => RawClient.SendAsync(_server.BaseAddress, request, Timeout);

    private static void ShouldBeProblem(HostileAnswer answer, int status)
    {
        answer.Status.Should().Be(status, answer.Text);
        Barrage.ProblemBodyFault(answer).Should().BeNull();
    }

    [Theory]
    [InlineData("/v1/memories?limit=1%00", "limit")]
    [InlineData("/v1/kv?limit=5%00%00", "limit")]
    [InlineData("/v1/memories?created_after=2026-01-01T00:00:00Z%00", "created_after")]
    [InlineData("/v1/memories?user_id=a%00b", "user_id")]
    [InlineData("/v1/graph/entities/Alice/neighbors?depth=1%00", "depth")]
    [InlineData("/v1/memories?%00=1", "query")]
    public async Task A_NUL_in_a_query_parameter_is_a_400_naming_it(string target, string field)
    {
        // Raw: the old server parsed "1\0" as 1 (.NET number and date parsing skip trailing NULs) and answered 200.
        var answer = await SendAsync(new HostileRequest("GET", target, null, null));
        ShouldBeProblem(answer, 400);
        System.Text.Json.JsonDocument.Parse(answer.Body).RootElement.GetProperty("field").GetString().Should().Be(field);
    }

    [Theory]
    [InlineData("GET /v1/stats HTTP/1.2")]
    [InlineData("GET /v1/stats HTTP/2.0")]
    [InlineData("GET /v1/stats")]
    public async Task A_request_line_with_another_HTTP_version_is_a_400_problem_not_a_bare_505(string line)
    {
        var answer = await SendAsync(new HostileRequest("GET", "", null, null) { RequestLine = line });
        ShouldBeProblem(answer, 400);
        answer.Text.Should().Contain("HTTP/1.1");
    }

    [Theory]
    [InlineData("GET * HTTP/1.1")]
    [InlineData("DELETE 127.0.0.1:80 HTTP/1.1")]
    public async Task An_asterisk_or_authority_target_on_another_method_is_a_405_problem(string line)
    {
        var answer = await SendAsync(new HostileRequest("GET", "", null, null) { RequestLine = line });
        ShouldBeProblem(answer, 405);
    }

    [Theory]
    [InlineData("mset", """{"items":[{"key":"ct:mset","value":1}]}""")]
    [InlineData("mget", """{"keys":["ct:mset"]}""")]
    [InlineData("cleanup", """{"pattern":"ct:none:*"}""")]
    public async Task The_key_value_literal_routes_take_a_body_without_a_Content_Type_and_refuse_a_non_JSON_one_with_415(string route, string json)
    {
        var body = Encoding.UTF8.GetBytes(json);
        var untyped = await SendAsync(new HostileRequest("POST", "/v1/kv/" + route, body, ContentType: null));
        untyped.Status.Should().Be(200, untyped.Text);

        var plain = await SendAsync(new HostileRequest("POST", "/v1/kv/" + route, body, "text/plain"));
        ShouldBeProblem(plain, 415);
        if (route == "mset")
        {
            (await _server.Client.GetAsync("/v1/kv/ct:mset")).StatusCode.Should().Be(HttpStatusCode.OK);
        }
    }
}
