using System.Net;
using Engram.Tests.Support;

namespace Engram.Tests.Http;

public class MemoriesReadTests : IAsyncLifetime
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync(Backend);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Get_UnknownId_Gives404Problem()
    {
        await (await _server.Client.GetAsync("/v1/memories/01ARZ3NDEKTSV4RRFFQ69G5FAV")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await _server.Client.GetAsync("/v1/memories/not-an-id")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task List_IsNewestFirstAndPagesWithCursor()
    {
        var ids = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            ids.Add((await _server.CreateAsync(new { content = $"page item {i}" })).GetProperty("id").GetString()!);
        }
        var seen = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var url = "/v1/memories?limit=3" + (cursor is null ? "" : $"&cursor={cursor}");
            var page = await (await _server.Client.GetAsync(url)).JsonAsync();
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetString()!));
            cursor = page.GetProperty("next_cursor").GetString();
            pages++;
        }
        while (cursor is not null);
        pages.Should().Be(3);
        seen.Should().Equal(Enumerable.Reverse(ids));
    }

    [Fact]
    public async Task List_DefaultLimitIs50()
    {
        var items = string.Join(',', Enumerable.Range(0, 60).Select(i => $$"""{"content":"bulk {{i}}"}"""));
        await _server.PostJsonAsync("/v1/memories/batch", $$"""{"items":[{{items}}]}""");
        var page = await (await _server.Client.GetAsync("/v1/memories")).JsonAsync();
        page.GetProperty("items").GetArrayLength().Should().Be(50);
        page.GetProperty("next_cursor").GetString().Should().NotBeNull();
    }

    [Fact]
    public async Task List_FiltersByScopeTypeTierTagsMetadataAndTime()
    {
        var a = await _server.CreateAsync(new { content = "a", user_id = "u1", agent_id = "bot", type = "preference", tier = "working", tags = new[] { "x", "y" }, metadata = new { project = "engram", level = 3, on = true, nested = new { k = "v" } } });
        var b = await _server.CreateAsync(new { content = "b", user_id = "u1", session_id = "s1", type = "fact", tags = new[] { "y" }, metadata = new { project = "other", level = 4 } });
        var c = await _server.CreateAsync(new { content = "c", user_id = "u2", @namespace = "work", type = "fact", tier = "short_term", tags = new[] { "z" }, created_at = "2020-01-01T00:00:00Z" });

        async Task<string[]> Ids(string query) =>
            (await (await _server.Client.GetAsync("/v1/memories?" + query)).JsonAsync()).GetProperty("items").EnumerateArray()
                .Select(m => m.GetProperty("content").GetString()!).OrderBy(x => x).ToArray();

        (await Ids("user_id=u1")).Should().Equal("a", "b");
        (await Ids("agent_id=bot")).Should().Equal("a");
        (await Ids("session_id=s1")).Should().Equal("b");
        (await Ids("namespace=work")).Should().Equal("c");
        (await Ids("type=fact")).Should().Equal("b", "c");
        (await Ids("type=preference,fact")).Should().Equal("a", "b", "c");
        (await Ids("tier=working")).Should().Equal("a");
        (await Ids("tier=short_term,working")).Should().Equal("a", "c");
        (await Ids("tags=y")).Should().Equal("a", "b");
        (await Ids("tags=x,y")).Should().Equal("a");
        (await Ids("tags=x,z&tags_match=any")).Should().Equal("a", "c");
        (await Ids("metadata.project=engram")).Should().Equal("a");
        (await Ids("metadata.level=4")).Should().Equal("b");
        (await Ids("metadata.on=true")).Should().Equal("a");
        (await Ids("metadata.nested.k=v")).Should().Equal("a");
        (await Ids("metadata.project=nothing")).Should().BeEmpty();
        (await Ids("created_before=2021-01-01T00:00:00Z")).Should().Equal("c");
        (await Ids("created_after=2021-01-01T00:00:00Z")).Should().Equal("a", "b");
        (await Ids("updated_after=2000-01-01T00:00:00Z&user_id=u2")).Should().Equal("c");
        (await Ids("updated_before=2000-01-01T00:00:00Z")).Should().BeEmpty();
        (await Ids("user_id=u1&type=fact&tags=y")).Should().Equal("b");
        _ = (a, b, c);
    }

    [Theory]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=1001", "limit")]
    [InlineData("limit=ten", "limit")]
    [InlineData("cursor=garbage!", "cursor")]
    [InlineData("tier=forever", "tier")]
    [InlineData("tags_match=some", "tags_match")]
    [InlineData("created_after=yesterday", "created_after")]
    [InlineData("usr_id=u1", "usr_id")]
    [InlineData("user_id=a&user_id=b", "user_id")]
    [InlineData("user_id=", "user_id")]
    public async Task List_BadQuery_Gives400(string query, string field)
    {
        await (await _server.Client.GetAsync("/v1/memories?" + query)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, field);
    }

    [Fact]
    public async Task List_MaxLimitIsAccepted()
    {
        (await _server.Client.GetAsync("/v1/memories?limit=1000")).StatusCode.Should().Be(HttpStatusCode.OK);
    }
}
