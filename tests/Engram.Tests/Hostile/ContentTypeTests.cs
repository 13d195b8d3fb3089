using System.Net;
using System.Text;
using Engram.Tests.Support;

namespace Engram.Tests.Hostile;

/// <summary>
/// The Content-Type of a JSON body is parsed, not searched for "json" (issue 10, 6b): application/json
/// and application/*+json, with no charset or UTF-8; anything else is a 415 problem.
/// </summary>
public sealed class ContentTypeTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static StringContent Body(string json, string contentType)
    {
        var content = new StringContent(json, Encoding.UTF8);
        content.Headers.Remove("Content-Type");
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        return content;
    }

    [Theory]
    [InlineData("text/not-json")]
    [InlineData("text/json")]
    [InlineData("application/jsonx")]
    [InlineData("application/json-seq")]
    [InlineData("application/x-json-stream")]
    [InlineData("multipart/form-data; boundary=json")]
    [InlineData("application/json; charset=latin1")]
    [InlineData("application/json; charset=utf-16")]
    [InlineData("json")]
    [InlineData("application/")]
    public async Task Anything_but_UTF8_JSON_is_a_415(string contentType)
    {
        foreach (var (path, json) in new[] { ("/v1/kv/ct/incr", """{"by":1}"""), ("/v1/memories", """{"content":"x"}"""), ("/v1/kv/ct", """{"value":1}""") })
        {
            var request = new HttpRequestMessage(path.EndsWith("/ct", StringComparison.Ordinal) ? HttpMethod.Put : HttpMethod.Post, path) { Content = Body(json, contentType) };
            var response = await _server.Client.SendAsync(request);
            await response.ShouldBeProblemAsync(HttpStatusCode.UnsupportedMediaType);
        }
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("Application/JSON")]
    [InlineData("application/json; charset=utf-8")]
    [InlineData("application/json;charset=\"UTF-8\"")]
    [InlineData("application/merge-patch+json")]
    [InlineData("application/vnd.engram+json; charset=utf-8")]
    public async Task UTF8_JSON_media_types_are_accepted(string contentType)
    {
        var response = await _server.Client.PostAsync("/v1/kv/ok/incr", Body("""{"by":2}""", contentType));
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
    }
}
