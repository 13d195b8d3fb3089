using System.Net;
using System.Text;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Tests.Support;

namespace Engram.Tests.KeyValue;

/// <summary>
/// A key's history is a chain of rows (each pointing at the key's previous one) whose head lives on
/// the entry, or in kv_deleted once the key is gone. These tests walk it through deletes, revivals,
/// and paging, on both backends (SqliteKvHistoryMigrationTests: the SQLite migration that built the chain).
/// </summary>
public class KvHistoryTests : IDisposable
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private static readonly Caller Acme = new("acme", "test");
    private static readonly Caller Globex = new("globex", "test");
    private StoreLocation? _location;

    private StoreLocation Data => _location ??= StoreLocation.Create(Backend);

    public void Dispose()
    {
        _location?.Dispose();
        GC.SuppressFinalize(this);
    }

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    /// <summary>Every history entry of the key, oldest first, read page by page (pages of at most <paramref name="pageSize"/>).</summary>
    internal static async Task<List<KvHistoryItem>> AllHistoryAsync(KvService kv, Caller caller, string key, int pageSize)
    {
        var all = new List<KvHistoryItem>();
        string? cursor = null;
        do
        {
            var page = await kv.GetHistoryAsync(caller, key, pageSize, cursor);
            page.Items.Should().HaveCountLessThanOrEqualTo(pageSize);
            all.InsertRange(0, page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return all;
    }

    [Fact]
    public async Task History_SurvivesDeleteAndRevival_AndPagesWalkBackInTime()
    {
        await using var engine = EngramEngine.Open(Data.Value);
        var kv = engine.KeyValue;
        await kv.SetAsync(Acme, "k", Json("1"), 0);
        await kv.SetAsync(Acme, "other", Json("\"x\""), 0);
        await kv.SetAsync(Acme, "k", Json("2"), 0);
        await kv.ExpireAsync(Acme, "k", 600);
        await kv.DeleteAsync(Acme, "k");
        // Globex's key of the same name is its own chain.
        await kv.SetAsync(Globex, "k", Json("\"globex\""), 0);
        await kv.SetAsync(Acme, "k", Json("3"), 0);
        await kv.IncrementAsync(Acme, "k", 4);

        string[] expected = ["created", "updated", "ttl_changed", "deleted", "created", "incremented"];
        (await kv.GetHistoryAsync(Acme, "k")).Items.Select(h => h.Event).Should().Equal(expected);
        foreach (var pageSize in new[] { 1, 2, 4, 6, 100 })
        {
            (await AllHistoryAsync(kv, Acme, "k", pageSize)).Select(h => h.Event).Should().Equal(expected, $"pages of {pageSize}");
        }
        var newest = await kv.GetHistoryAsync(Acme, "k", 2);
        newest.Items.Select(h => h.Event).Should().Equal("created", "incremented");
        newest.Items[1].Value!.Value.GetInt64().Should().Be(7);
        newest.NextCursor.Should().NotBeNull();
        var oldest = await kv.GetHistoryAsync(Acme, "k", 2, (await kv.GetHistoryAsync(Acme, "k", 4)).NextCursor);
        oldest.Items.Select(h => h.Event).Should().Equal("created", "updated");
        oldest.NextCursor.Should().BeNull();

        (await kv.GetHistoryAsync(Globex, "k")).Items.Select(h => h.Value!.Value.GetString()).Should().Equal("globex");
        (await kv.GetHistoryAsync(Acme, "other")).Items.Should().ContainSingle();
    }

    [Fact]
    public async Task HistoryOfADeletedKey_StaysReadable_AndCursorsOfOtherKeysReachNothing()
    {
        await using var engine = EngramEngine.Open(Data.Value);
        var kv = engine.KeyValue;
        await kv.SetAsync(Acme, "gone", Json("1"), 0);
        await kv.SetAsync(Acme, "gone", Json("2"), 0);
        await kv.SetAsync(Acme, "kept", Json("1"), 0);
        await kv.SetAsync(Acme, "kept", Json("2"), 0);
        (await kv.CleanupAsync(Acme, "gon*")).Should().Be(1);

        (await kv.GetHistoryAsync(Acme, "gone")).Items.Select(h => h.Event).Should().Equal("created", "updated", "deleted");
        // A cursor names a position in one key's chain; used on another key (or tenant) it yields nothing.
        var cursor = (await kv.GetHistoryAsync(Acme, "kept", 1)).NextCursor;
        cursor.Should().NotBeNull();
        (await kv.GetHistoryAsync(Acme, "gone", 10, cursor)).Items.Should().BeEmpty();
        (await kv.GetHistoryAsync(Globex, "kept", 10, cursor)).Items.Should().BeEmpty();
        await FluentActions.Awaiting(() => kv.GetHistoryAsync(Acme, "kept", 10, "not-a-cursor")).Should().ThrowAsync<ValidationException>().Where(e => e.Field == "cursor");
        await FluentActions.Awaiting(() => kv.GetHistoryAsync(Acme, "kept", 0)).Should().ThrowAsync<ValidationException>().Where(e => e.Field == "limit");
        await FluentActions.Awaiting(() => kv.GetHistoryAsync(Acme, "never")).Should().ThrowAsync<NotFoundException>();
    }

    [Fact]
    public async Task Retention_PrunesOldHistory_KeepsALiveKeysNewestEntry_AndForgetsLongDeletedKeys()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var engine = EngramEngine.Open(Data.Value, clock: clock);
        var kv = engine.KeyValue;
        var store = (IKeyValueStore)engine.Store;
        await kv.SetAsync(Acme, "busy", Json("1"), 0);        // day 0
        await kv.SetAsync(Acme, "idle", Json("\"x\""), 0);    // day 0, never touched again
        await kv.SetAsync(Acme, "gone", Json("1"), 0);        // day 0
        await kv.DeleteAsync(Acme, "gone");                   // day 0
        await kv.SetAsync(Globex, "busy", Json("1"), 0);      // another tenant, day 0
        clock.Advance(TimeSpan.FromDays(1));
        await kv.SetAsync(Acme, "busy", Json("2"), 0);        // day 1
        await kv.SetAsync(Acme, "recent", Json("1"), 0);      // day 1
        await kv.DeleteAsync(Acme, "recent");                 // day 1
        clock.Advance(TimeSpan.FromDays(8));
        await kv.SetAsync(Acme, "busy", Json("3"), 0);        // day 9

        // Keep 7 days at day 9: everything before day 2 goes, except a live key's newest entry.
        var cutoff = clock.GetUtcNow().AddDays(-7).ToUnixTimeMilliseconds();
        var pass = await store.PruneKvHistoryAsync(cutoff, 0, 1000);
        pass.More.Should().BeFalse();
        // busy: day 0 + day 1; gone: created + deleted; recent: created + deleted; Globex's busy is live, its only entry stays.
        pass.Deleted.Should().Be(6);

        (await kv.GetHistoryAsync(Acme, "busy")).Items.Select(h => h.Value!.Value.GetInt64()).Should().Equal(3);
        (await kv.GetHistoryAsync(Acme, "busy", 10)).NextCursor.Should().BeNull("the chain ends where pruning cut it");
        (await kv.GetHistoryAsync(Acme, "idle")).Items.Should().ContainSingle("a live key keeps its newest entry however old");
        (await kv.GetHistoryAsync(Globex, "busy")).Items.Should().ContainSingle();
        await FluentActions.Awaiting(() => kv.GetHistoryAsync(Acme, "gone")).Should().ThrowAsync<NotFoundException>();
        await FluentActions.Awaiting(() => kv.GetHistoryAsync(Acme, "recent")).Should().ThrowAsync<NotFoundException>();
        (await kv.GetAsync(Acme, "idle")).Value.GetString().Should().Be("x");

        // A second pass finds nothing more; once "idle" changes, its old entry becomes prunable.
        (await store.PruneKvHistoryAsync(cutoff, 0, 1000)).Deleted.Should().Be(0);
        await kv.SetAsync(Acme, "idle", Json("\"y\""), 0);
        (await store.PruneKvHistoryAsync(cutoff, 0, 1000)).Deleted.Should().Be(1);
        (await kv.GetHistoryAsync(Acme, "idle")).Items.Select(h => h.Value!.Value.GetString()).Should().Equal("y");
    }

    [Fact]
    public async Task Retention_WorksInBoundedPasses_ThatContinueWhereTheyStopped()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var engine = EngramEngine.Open(Data.Value, clock: clock);
        var kv = engine.KeyValue;
        var store = (IKeyValueStore)engine.Store;
        for (var i = 0; i < 50; i++)
        {
            await kv.SetAsync(Acme, "k", Json(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), 0);
        }
        clock.Advance(TimeSpan.FromDays(10));
        var cutoff = clock.GetUtcNow().AddDays(-7).ToUnixTimeMilliseconds();

        var first = await store.PruneKvHistoryAsync(cutoff, 0, 20);
        first.Should().Be(new KvHistoryPruning(20, first.LastHistoryId, More: true));
        var second = await store.PruneKvHistoryAsync(cutoff, first.LastHistoryId, 20);
        second.Deleted.Should().Be(20);
        var third = await store.PruneKvHistoryAsync(cutoff, second.LastHistoryId, 20);
        third.Deleted.Should().Be(9, "the 50th entry is the live key's newest");
        third.More.Should().BeFalse();
        (await kv.GetHistoryAsync(Acme, "k")).Items.Select(h => h.Value!.Value.GetInt32()).Should().Equal(49);
    }

    [Fact]
    public async Task TheServersSweeper_AppliesTheConfiguredRetention()
    {
        var start = DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        await using (var engine = EngramEngine.Open(Data.Value, clock: new ManualClock(start)))
        {
            for (var i = 1; i <= 3; i++)
            {
                await engine.KeyValue.SetAsync(Caller.Default("test"), "k", Json(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), 0);
            }
        }
        // Ten days later, with 2 days of retention: the sweep at start keeps only the newest entry.
        await using var server = await EngramServer.StartAsync(Data.Value, o => o.KeyValue.HistoryRetentionDays = 2, new ManualClock(start.AddDays(10)));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        List<JsonElement> items;
        do
        {
            items = [.. (await (await server.Client.GetAsync("/v1/kv/k?history=true")).JsonAsync()).GetProperty("items").EnumerateArray()];
        }
        while (items.Count > 1 && DateTime.UtcNow < deadline && await Task.Delay(50).ContinueWith(_ => true));
        items.Select(h => h.GetProperty("value").GetInt32()).Should().Equal(3);
    }

    [Fact]
    public async Task OverHttp_HistoryTakesLimitAndCursor_AndRefusesBadOnes()
    {
        await using var server = await EngramServer.StartAsync(Data.Value);
        for (var i = 1; i <= 5; i++)
        {
            var put = await server.Client.PutAsync("/v1/kv/counter", new StringContent($$"""{"value":{{i}}}""", Encoding.UTF8, "application/json"));
            put.IsSuccessStatusCode.Should().BeTrue();
        }
        var first = await (await server.Client.GetAsync("/v1/kv/counter?history=true&limit=3")).JsonAsync();
        first.GetProperty("items").EnumerateArray().Select(h => h.GetProperty("value").GetInt32()).Should().Equal(3, 4, 5);
        var cursor = first.GetProperty("next_cursor").GetString();
        var second = await (await server.Client.GetAsync($"/v1/kv/counter?history=true&limit=3&cursor={cursor}")).JsonAsync();
        second.GetProperty("items").EnumerateArray().Select(h => h.GetProperty("value").GetInt32()).Should().Equal(1, 2);
        second.GetProperty("next_cursor").ValueKind.Should().Be(JsonValueKind.Null);

        await (await server.Client.GetAsync("/v1/kv/counter?history=true&limit=0")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "limit");
        await (await server.Client.GetAsync("/v1/kv/counter?history=true&cursor=abc")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "cursor");
        await (await server.Client.GetAsync("/v1/kv/counter?limit=3")).ShouldBeProblemAsync(HttpStatusCode.BadRequest);
    }
}
