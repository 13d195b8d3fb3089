using System.Net;
using System.Text;
using System.Text.Json;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Server.Http;
using Engram.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engram.Tests.Hostile;

/// <summary>
/// Filter lists are bounded (issue 10, defect 3): 1,100 tags in a listing or a bulk delete, or 1,100
/// metadata keys in a search, gave 503 "Store unavailable" with SQL text in the problem body. Now a 400
/// names the field and the limit; a store failure never shows SQL or an exception message, and 503 is
/// kept for a store that may answer a retry.
/// </summary>
public sealed class FilterListTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string Values(int count, string prefix) => string.Join(',', Enumerable.Range(0, count).Select(i => prefix + i));

    [Theory]
    [InlineData("GET", "/v1/memories?tags={0}", "tags")]
    [InlineData("GET", "/v1/memories?tags={0}&tags_match=any", "tags")]
    [InlineData("DELETE", "/v1/memories?user_id=u&confirm=true&tags={0}", "tags")]
    [InlineData("GET", "/v1/memories?type={0}", "type")]
    public async Task A_filter_list_over_the_limit_is_a_400_naming_field_and_limit(string method, string template, string field)
    {
        var path = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, Values(1_100, "t"));
        var response = await _server.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
        var problem = await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
        problem.GetProperty("detail").GetString().Should().Contain("100").And.Contain("1100");
    }

    [Fact]
    public async Task Many_metadata_filters_in_a_listing_are_a_400()
    {
        // 120, not 1,100: a query string that long is refused by Kestrel itself (414).
        var query = string.Join('&', Enumerable.Range(0, 120).Select(i => $"metadata.k{i}=v"));
        var response = await _server.Client.GetAsync("/v1/memories?" + query);
        await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "metadata");
    }

    [Theory]
    [InlineData("metadata")]
    [InlineData("tags")]
    [InlineData("type")]
    public async Task A_search_filter_list_over_the_limit_is_a_400(string filter)
    {
        object value = filter == "metadata"
            ? Enumerable.Range(0, 1_100).ToDictionary(i => $"k{i}", i => (object)i)
            : Enumerable.Range(0, 1_100).Select(i => $"v{i}").ToArray();
        var json = JsonSerializer.Serialize(new Dictionary<string, object> { ["query"] = "x", ["filters"] = new Dictionary<string, object> { [filter] = value } });
        var response = await _server.PostJsonAsync("/v1/search", json);
        var problem = await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "filters." + filter);
        problem.GetRawText().Should().NotContainAny("SELECT", "json_extract", "WHERE");
    }

    [Fact]
    public async Task A_filter_list_at_the_limit_works_and_the_limit_is_configurable()
    {
        await _server.CreateAsync(new { content = "tagged", tags = new[] { "t7" } });
        var atLimit = await _server.Client.GetAsync("/v1/memories?tags_match=any&tags=" + Values(100, "t"));
        atLimit.StatusCode.Should().Be(HttpStatusCode.OK);
        (await atLimit.JsonAsync()).GetProperty("items").GetArrayLength().Should().Be(1);

        await using var strict = await EngramServer.StartAsync(configure: o => o.Limits.MaxFilterValues = 3);
        var response = await strict.Client.GetAsync("/v1/memories?tags=a,b,c,d");
        (await response.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "tags")).GetProperty("detail").GetString().Should().Contain("3");
    }

    [Theory]
    [InlineData(1, false)]   // SQLITE_ERROR: a statement the store refused ("too many terms"): a bug, not an outage
    [InlineData(18, false)]  // SQLITE_TOOBIG
    [InlineData(5, true)]    // SQLITE_BUSY
    [InlineData(6, true)]    // SQLITE_LOCKED
    [InlineData(10, true)]   // SQLITE_IOERR
    [InlineData(13, true)]   // SQLITE_FULL
    public async Task A_store_failure_never_shows_its_message_and_only_an_outage_is_503(int code, bool unavailable)
    {
        const string message = "Expression tree is too large (maximum depth 1000) (while running: SELECT m.id FROM memories m WHERE ...)";
        foreach (var exception in new StoreException[] { new SqliteException(code, message), new StoreException("the write was rolled back: " + message, new SqliteException(code, message)) })
        {
            var context = new DefaultHttpContext { RequestServices = _server.Services };
            context.Response.Body = new MemoryStream();
            await Problems.FromException(exception, NullLogger.Instance).ExecuteAsync(context);
            context.Response.StatusCode.Should().Be(unavailable ? 503 : 500);
            var body = Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray());
            body.Should().NotContainAny("SELECT", "Expression tree", "rolled back", "while running");
            JsonDocument.Parse(body).RootElement.GetProperty("status").GetInt32().Should().Be(unavailable ? 503 : 500);
        }
    }
}
