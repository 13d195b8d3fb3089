using System.Net;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage;
using Engram.Tests.Support;

namespace Engram.Tests.KeyValue;

/// <summary>KvService over a real SQLite file: tenants, the naming helper, globs, expiry with an injected clock.</summary>
public class KvServiceTests : IAsyncLifetime
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private static readonly Caller Acme = new("acme", "test");
    private static readonly Caller Globex = new("globex", "test");

    private StoreLocation? _location;

    private StoreLocation Data => _location ??= StoreLocation.Create(Backend);
    private readonly ManualClock _clock = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private EngramEngine _engine = null!;

    private KvService Kv => _engine.KeyValue;

    public Task InitializeAsync()
    {
        _engine = EngramEngine.Open(Data.Value, clock: _clock);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _engine.DisposeAsync();
        _location?.Dispose();
    }

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    [Fact]
    public async Task An_expiry_more_than_the_limit_away_is_refused_judged_by_the_clock_now()
    {
        // The limit is checked against the latest clock reading first, and the clock read only beyond it: an expiry that
        // reading would refuse is accepted once the clock has moved on, and refused while it has not.
        const long LimitMs = KvOptions.MaxTtlSeconds * 1000;
        var read = Kv.NowMs;
        await Kv.SetJsonAsync(Acme, "far", "1", read + LimitMs, KvCondition.Always);
        await FluentActions.Awaiting(() => Kv.SetJsonAsync(Acme, "far", "2", read + LimitMs + 1, KvCondition.Always))
            .Should().ThrowAsync<ValidationException>().WithMessage("*seconds away*");

        _clock.Advance(TimeSpan.FromDays(1));
        await Kv.SetJsonAsync(Acme, "far", "3", read + LimitMs + 60_000, KvCondition.Always);
        await FluentActions.Awaiting(() => Kv.SetJsonAsync(Acme, "far", "4", read + LimitMs + 86_400_000 + 1, KvCondition.Always))
            .Should().ThrowAsync<ValidationException>();
        (await Kv.GetAsync(Acme, "far")).Value.GetInt64().Should().Be(3);
    }

    [Fact]
    public async Task Tenants_NeverSeeEachOthersKeys()
    {
        await Kv.SetAsync(Acme, "plain", Json("1"), null);
        await Kv.SetAsync(Acme, "app:session:42", Json("\"acme\""), null);

        // Same names, other tenant: missing, and writing them creates separate entries.
        await FluentActions.Awaiting(() => Kv.GetAsync(Globex, "plain")).Should().ThrowAsync<NotFoundException>();
        await FluentActions.Awaiting(() => Kv.GetAsync(Globex, "app:session:42")).Should().ThrowAsync<NotFoundException>();
        // Naming the other tenant's stored form reaches nothing of theirs.
        await FluentActions.Awaiting(() => Kv.GetAsync(Globex, "app:acme:session:42")).Should().ThrowAsync<NotFoundException>();
        await Kv.SetAsync(Globex, "app:acme:session:42", Json("\"globex\""), null);
        (await Kv.GetAsync(Acme, "app:session:42")).Value.GetString().Should().Be("acme");

        await FluentActions.Awaiting(() => Kv.DeleteAsync(Globex, "plain")).Should().ThrowAsync<NotFoundException>();
        await FluentActions.Awaiting(() => Kv.ExpireAsync(Globex, "plain", 1)).Should().ThrowAsync<NotFoundException>();
        (await Kv.IncrementAsync(Globex, "plain", 5)).Should().Be(5);
        (await Kv.GetAsync(Acme, "plain")).Value.GetInt64().Should().Be(1);
        (await Kv.CleanupAsync(Globex, "*")).Should().Be(2);
        (await Kv.ListAsync(Acme, "*", null, null)).Items.Select(i => i.Key).Should().Equal("app:session:42", "plain");
        (await Kv.GetManyAsync(Globex, ["plain", "app:session:42"])).Select(l => l.Found).Should().Equal(false, false);
        await FluentActions.Awaiting(() => Kv.GetHistoryAsync(Globex, "app:session:42")).Should().ThrowAsync<NotFoundException>();
    }

    [Theory]
    [InlineData("app:session:42")]
    [InlineData("a:b")]
    [InlineData("a:b:c:d")]
    [InlineData("::")]
    [InlineData("plain")]
    public void NamingHelper_WithoutAString_GivesTheSameStoredKey(string key)
    {
        Span<char> buffer = stackalloc char[64];
        KvKeys.TryToStored("acme", key, buffer, out var stored).Should().BeTrue();
        stored.ToString().Should().Be(KvKeys.ToStored("acme", key));
        // A buffer too short for the tenant is a refusal, not a truncated key.
        KvKeys.TryToStored("acme", key, buffer[..key.Length], out var unchanged).Should().Be(KvKeys.ToStored("acme", key) == key);
        if (KvKeys.ToStored("acme", key) == key)
        {
            unchanged.ToString().Should().Be(key);
        }
    }

    [Fact]
    public async Task AGetFromMemory_ByUtf8Bytes_FindsTheCallersOwnEntry()
    {
        await Kv.SetAsync(Acme, "app:session:42", Json("\"acme's\""), null);
        await Kv.SetAsync(Globex, "app:session:42", Json("\"globex's\""), null);
        await Kv.SetAsync(Acme, "caf\u00e9", Json("2"), null);
        if (_engine.Store.Kind == "postgres")
        {
            // Every instance reads PostgreSQL itself: nothing is answered from memory.
            Kv.TryGetEntryFromMemory(Acme, "app:session:42"u8, out _).Should().BeFalse();
            return;
        }

        Kv.TryGetEntryFromMemory(Acme, "app:session:42"u8, out var acme).Should().BeTrue();
        acme!.ValueJson.Should().Be("\"acme's\"");
        Kv.TryGetEntryFromMemory(Globex, "app:session:42"u8, out var globex).Should().BeTrue();
        globex!.ValueJson.Should().Be("\"globex's\"");
        Kv.TryGetEntryFromMemory(Acme, "caf\u00e9"u8, out var accented).Should().BeTrue();
        accented!.ValueJson.Should().Be("2");
        // Bytes that are not UTF-8, control characters and readers without the role go to the checked path.
        Kv.TryGetEntryFromMemory(Acme, [(byte)'k', 0xC0, 0xAF], out _).Should().BeFalse();
        Kv.TryGetEntryFromMemory(Acme, "a\u0001b"u8, out _).Should().BeFalse();
        Kv.TryGetEntryFromMemory(Acme with { Role = 0 }, "app:session:42"u8, out _).Should().BeFalse();
    }

    [Fact]
    public async Task NamingHelper_InsertsTheTenant_AndShowsKeysAsWritten()
    {
        KvKeys.ToStored("acme", "app:session:42").Should().Be("app:acme:session:42");
        KvKeys.ToStored("acme", "a:b").Should().Be("a:b");
        KvKeys.ToStored("acme", "a:b:c:d").Should().Be("a:b:c:d");
        KvKeys.ToStored("acme", "::").Should().Be(":acme::");
        KvKeys.ToDisplay("acme", "app:acme:session:42").Should().Be("app:session:42");
        KvKeys.ToDisplay("acme", "app:globex:session:42").Should().Be("app:globex:session:42");
        KvKeys.ToDisplay("acme", ":acme::").Should().Be("::");

        await Kv.SetAsync(Acme, "app:session:42", Json("1"), null);
        // The stored form with your own tenant is the same entry.
        (await Kv.GetAsync(Acme, "app:acme:session:42")).Value.GetInt64().Should().Be(1);
        (await Kv.ListAsync(Acme, "app:session:*", null, null)).Items.Select(i => i.Key).Should().Equal("app:session:42");
        (await Kv.ListAsync(Acme, "*:session:4?", null, null)).Items.Select(i => i.Key).Should().Equal("app:session:42");

        // The change log and history carry the stored key under the caller's tenant.
        var changes = await _engine.Store.ReadChangesAsync(0, 100);
        changes.Should().ContainSingle(c => c.Entity == ChangeRecord.KeyValueEntity && c.EntityId == "app:acme:session:42" && c.Tenant == "acme");
    }

    [Theory]
    [InlineData("user:*", new[] { "user:1", "user:10", "user:2", "user:[x]" })]
    [InlineData("user:?", new[] { "user:1", "user:2" })]
    [InlineData("user:[12]", new[] { "user:1", "user:2" })]
    [InlineData("user:[^1]*", new[] { "user:2", "user:[x]" })]
    [InlineData("user:1*", new[] { "user:1", "user:10" })]
    [InlineData(@"user:\[x\]", new[] { "user:[x]" })]
    [InlineData("*star*", new[] { "a*star*b" })]
    [InlineData(@"a\*star\*b", new[] { "a*star*b" })]
    [InlineData("50%", new[] { "50%" })]
    [InlineData("*_*", new[] { "under_score" })]
    [InlineData("ünï*", new[] { "ünïcode" })]
    public async Task Globs_MatchLikeRedis(string pattern, string[] expected)
    {
        foreach (var key in new[] { "user:1", "user:2", "user:10", "user:[x]", "a*star*b", "50%", "500", "under_score", "underscore", "ünïcode" })
        {
            await Kv.SetAsync(Acme, key, Json("0"), null);
        }
        (await Kv.ListAsync(Acme, pattern, 1000, null)).Items.Select(i => i.Key).Should().BeEquivalentTo(expected);
    }

    [Fact]
    public async Task ExpiredEntries_AreNeverReturned_ThenSweptWithHistory()
    {
        await Kv.SetAsync(Acme, "short", Json("1"), 10);
        await Kv.SetAsync(Acme, "long", Json("2"), 100);
        await Kv.SetAsync(Acme, "forever", Json("3"), 0);
        (await Kv.GetAsync(Acme, "short")).TtlSeconds.Should().Be(10);

        _clock.Advance(TimeSpan.FromSeconds(10));
        await FluentActions.Awaiting(() => Kv.GetAsync(Acme, "short")).Should().ThrowAsync<NotFoundException>();
        (await Kv.GetManyAsync(Acme, ["short", "long"])).Select(l => l.Found).Should().Equal(false, true);
        (await Kv.ListAsync(Acme, "*", null, null)).Items.Select(i => i.Key).Should().Equal("forever", "long");
        (await Kv.GetAsync(Acme, "long")).TtlSeconds.Should().Be(90);
        // An expired key counts as missing for nx and incr, and incr gives it the default TTL.
        (await Kv.IncrementAsync(Acme, "short")).Should().Be(1);
        (await Kv.GetAsync(Acme, "short")).TtlSeconds.Should().Be(86_400);

        _clock.Advance(TimeSpan.FromDays(2));
        (await Kv.ListAsync(Acme, "*", null, null)).Items.Select(i => i.Key).Should().Equal("forever");
        await FluentActions.Awaiting(() => Kv.DeleteAsync(Acme, "long")).Should().ThrowAsync<NotFoundException>();
        (await Kv.CleanupAsync(Acme, "long")).Should().Be(0);

        var store = (IKeyValueStore)_engine.Store;
        (await store.DeleteExpiredKvAsync(1000)).Should().Be(2);
        (await store.DeleteExpiredKvAsync(1000)).Should().Be(0);
        var history = (await Kv.GetHistoryAsync(Acme, "long")).Items;
        history.Select(h => h.Event).Should().Equal(KvEvents.Created, KvEvents.Expired);
        history[1].Actor.Should().Be("system:ttl-sweeper");
        (await Kv.GetAsync(Acme, "forever")).Value.GetInt64().Should().Be(3);
    }

    [Fact]
    public async Task DeleteKeys_DeletesEachLiveKeyOnce_InOrder_WithHistoryLogAndCounts()
    {
        // 2,500 keys: more than one statement's worth on PostgreSQL (1,000), all in one step.
        var keys = Enumerable.Range(0, 2500).Select(i => $"k:{i:D4}").ToArray();
        foreach (var chunk in keys.Chunk(1000))
        {
            await Kv.SetManyAsync(Acme, [.. chunk.Select(k => new KvSetItem(k, Json("1"), null))]);
        }
        await Kv.SetAsync(Acme, "short", Json("2"), 10);
        await Kv.SetAsync(Globex, "k:0000", Json("3"), null);
        _clock.Advance(TimeSpan.FromSeconds(10)); // "short" has expired: not live, so not deleted (nor counted)
        var countsBefore = await KeyCountAsync();
        var seqBefore = (await _engine.Store.ReadChangesAsync(0, 100_000)).Max(c => c.Seq);

        // Given in reverse, with a key named twice, a missing key and the expired one.
        string[] doomed = [.. keys.Reverse(), "k:0001", "missing", "short"];
        (await Kv.DeleteKeysAsync(Acme, doomed)).Should().Be(2500);

        (await Kv.ListAsync(Acme, "k:*", null, null)).Items.Should().BeEmpty();
        (await Kv.GetAsync(Globex, "k:0000")).Value.GetInt64().Should().Be(3, "another tenant's key of the same name stays");
        var changes = (await _engine.Store.ReadChangesAsync(seqBefore, 100_000)).ToList();
        changes.Should().HaveCount(2500);
        changes.Select(c => c.Seq).Should().Equal(Enumerable.Range(1, 2500).Select(i => seqBefore + i), "one change each, seqs contiguous");
        changes.Select(c => c.EntityId).Should().Equal(keys.Reverse(), "in the order the keys were given");
        changes.Should().OnlyContain(c => c.Op == ChangeRecord.Delete && c.Tenant == "acme" && c.Entity == ChangeRecord.KeyValueEntity);
        var history = (await Kv.GetHistoryAsync(Acme, "k:0001")).Items;
        history.Select(h => (h.Event, h.Version, h.Actor)).Should().Equal((KvEvents.Created, 1L, "test"), (KvEvents.Deleted, 1L, "test"));
        history[1].Seq.Should().Be(changes.Single(c => c.EntityId == "k:0001").Seq);
        (await KeyCountAsync()).Should().Be(countsBefore - 2500);

        // The next write follows the deletes in the log, and a deleted key's history goes on from its delete.
        await Kv.SetAsync(Acme, "k:0001", Json("4"), null);
        (await _engine.Store.ReadChangesAsync(seqBefore + 2500, 10)).Select(c => c.Seq).Should().Equal(seqBefore + 2501);
        (await Kv.GetHistoryAsync(Acme, "k:0001")).Items.Select(h => h.Event).Should().Equal(KvEvents.Created, KvEvents.Deleted, KvEvents.Created);
        (await Kv.DeleteKeysAsync(Acme, ["missing", "short"])).Should().Be(0);
        (await Kv.DeleteKeysAsync(Acme, [])).Should().Be(0);
        await FluentActions.Awaiting(() => Kv.DeleteKeysAsync(Acme, ["ok", ""])).Should().ThrowAsync<ValidationException>();
        (await Kv.GetAsync(Acme, "k:0001")).Value.GetInt64().Should().Be(4, "a refused call deletes nothing");
    }

    [Fact]
    public async Task SetMany_OverNewLiveExpiredAndDeletedKeys_WritesEachInOrder_WithHistoryLogAndCounts()
    {
        // 2,500 keys in one step, more than one set-based statement's worth on PostgreSQL (1,000): a quarter never written,
        // a quarter live, a quarter expired, a quarter deleted.
        var keys = Enumerable.Range(0, 2500).Select(i => $"m:{i:D4}").ToArray();
        string[] Quarter(int q) => [.. keys.Where((_, i) => i % 4 == q)];
        await Kv.SetManyJsonAsync(Acme, [.. Quarter(1).Select(k => (k, "\"live\""))], null, limit: 5000);
        await Kv.SetManyJsonAsync(Acme, [.. Quarter(2).Select(k => (k, "\"short\""))], Kv.NowMs + 5_000, limit: 5000);
        await Kv.SetManyJsonAsync(Acme, [.. Quarter(3).Select(k => (k, "\"gone\""))], null, limit: 5000);
        (await Kv.DeleteKeysAsync(Acme, Quarter(3))).Should().Be(625);
        await Kv.SetAsync(Globex, "m:0001", Json("9"), null);
        _clock.Advance(TimeSpan.FromSeconds(5));
        var countsBefore = await KeyCountAsync();
        var seqBefore = (await _engine.Store.ReadChangesAsync(0, 100_000)).Max(c => c.Seq);

        // Every key once, then m:0001 (live) and m:0003 (deleted) again: a key's second write follows its first.
        (string, string)[] items = [.. keys.Select((k, i) => (k, i.ToString(System.Globalization.CultureInfo.InvariantCulture))), ("m:0001", "\"again\""), ("m:0003", "\"again\"")];
        var results = await Kv.SetManyJsonAsync(Acme, items, null, limit: 5000);

        results.Select(r => r.Seq).Should().Equal(Enumerable.Range(1, 2502).Select(i => seqBefore + i), "one change each, seqs contiguous in the order given");
        for (var i = 0; i < 2500; i++)
        {
            // A live key is updated (version 2); a new, expired or deleted one is created: version 1, or 2 over the expired entry.
            var (created, version) = (i % 4) switch { 0 => (true, 1L), 1 => (false, 2L), 2 => (true, 2L), _ => (true, 1L) };
            (results[i].Created, results[i].Version).Should().Be((created, version), $"key {keys[i]}");
        }
        (results[2500].Created, results[2500].Version, results[2501].Created, results[2501].Version).Should().Be((false, 3L, false, 2L));
        var changes = (await _engine.Store.ReadChangesAsync(seqBefore, 100_000)).ToList();
        changes.Select(c => c.EntityId).Should().Equal([.. keys, "m:0001", "m:0003"]);
        changes.Should().OnlyContain(c => c.Op == ChangeRecord.Upsert && c.Tenant == "acme");

        var read = new List<KvLookup>();
        foreach (var chunk in keys.Chunk(1000))
        {
            read.AddRange(await Kv.GetManyAsync(Acme, chunk));
        }
        read.Select(r => r.Value!.Value.ToString()).Should().Equal(keys.Select((_, i) => i switch { 1 or 3 => "again", _ => i.ToString(System.Globalization.CultureInfo.InvariantCulture) }));
        read.Should().OnlyContain(r => r.TtlSeconds == 0 && r.ExpiresAt == null, "the MSET gave every key no expiry");
        (await Kv.GetAsync(Globex, "m:0001")).Value.GetInt64().Should().Be(9, "another tenant's key of the same name stays");
        // New and deleted keys come back; an expired key too where only live keys are counted (PostgreSQL counts its row,
        // which stays until the sweeper takes it, and the write updates in place).
        (await KeyCountAsync()).Should().Be(countsBefore + 625 + 625 + (Backend == Backend.Postgres ? 0 : 625));

        // Each key's history goes on from where it was: the live and expired keys' first writes, the deleted key's delete.
        (await Kv.GetHistoryAsync(Acme, "m:0001")).Items.Select(h => (h.Event, h.Version, h.Value?.ToString()))
            .Should().Equal((KvEvents.Created, 1L, "live"), (KvEvents.Updated, 2L, "1"), (KvEvents.Updated, 3L, "again"));
        (await Kv.GetHistoryAsync(Acme, "m:0002")).Items.Select(h => (h.Event, h.Version))
            .Should().Equal((KvEvents.Created, 1L), (KvEvents.Created, 2L));
        var deleted = (await Kv.GetHistoryAsync(Acme, "m:0003")).Items;
        deleted.Select(h => (h.Event, h.Version)).Should().Equal((KvEvents.Created, 1L), (KvEvents.Deleted, 1L), (KvEvents.Created, 1L), (KvEvents.Updated, 2L));
        deleted.Select(h => h.Seq).Should().Equal(deleted[0].Seq, deleted[1].Seq, seqBefore + 4, seqBefore + 2502);
        (await Kv.GetHistoryAsync(Acme, "m:2496")).Items.Select(h => h.Event).Should().Equal(KvEvents.Created);

        // A deleted key written again is deleted again as one.
        (await Kv.DeleteKeysAsync(Acme, ["m:0003", "m:0007"])).Should().Be(2);
        (await Kv.GetHistoryAsync(Acme, "m:0003")).Items.Select(h => h.Event).Should().EndWith([KvEvents.Updated, KvEvents.Deleted]);
        if (_engine.Store is Engram.Core.Storage.Postgres.PostgresMemoryStore postgres)
        {
            // Change log, kept counts, and each key in one of kv_entries and kv_deleted with its own history head.
            (await postgres.CheckIntegrityAsync()).Problems.Should().BeEmpty();
        }
    }

    [Fact]
    public async Task ATransaction_OfSetsAndDeletesOfTheSameKeys_AppliesThemInOrder_WithHistoryAndLog()
    {
        var store = (IKeyValueStore)_engine.Store;
        const WriteDurability Full = WriteDurability.Full; // acknowledged once in the log (a relaxed write reaches SQLite's log later)
        await store.SetManyKvAsync(Acme, [new KvWrite("x:b", "1", null), new KvWrite("x:c", "1", Kv.NowMs + 1000), new KvWrite("x:e", "1", null)], Full);
        _clock.Advance(TimeSpan.FromSeconds(2)); // x:c has expired
        var seqBefore = (await _engine.Store.ReadChangesAsync(0, 100_000)).Max(c => c.Seq);

        // Deletes of distinct keys in a row (x:b, x:c, x:e) share a statement on PostgreSQL; a key's second delete, a SET
        // between, or a delete of a key set before it in the step, each starts another.
        var deleted = await store.TransactKvAsync(Acme, ["x:a", "x:b", "x:c", "x:d", "x:e"], t =>
        {
            List<Task<bool>> outcomes = [];
            t.SetKvAsync(Acme, new KvWrite("x:a", "1", null), Full);
            outcomes.Add(t.DeleteKvAsync(Acme, "x:a", Full));
            t.SetKvAsync(Acme, new KvWrite("x:a", "2", null), Full);
            outcomes.Add(t.DeleteKvAsync(Acme, "x:b", Full));
            outcomes.Add(t.DeleteKvAsync(Acme, "x:c", Full));
            outcomes.Add(t.DeleteKvAsync(Acme, "x:e", Full));
            outcomes.Add(t.DeleteKvAsync(Acme, "x:b", Full));
            t.SetKvAsync(Acme, new KvWrite("x:d", "3", null), Full);
            outcomes.Add(t.DeleteKvAsync(Acme, "x:d", Full));
            outcomes.Add(t.DeleteKvAsync(Acme, "x:a", Full));
            t.SetKvAsync(Acme, new KvWrite("x:b", "4", null), Full);
            return outcomes.Select(o => o.Result).ToArray();
        }, Full);

        deleted.Should().Equal(true, true, false, true, false, true, true);
        var changes = (await _engine.Store.ReadChangesAsync(seqBefore, 100)).ToList();
        changes.Select(c => (c.EntityId, c.Op)).Should().Equal(
            ("x:a", ChangeRecord.Upsert), ("x:a", ChangeRecord.Delete), ("x:a", ChangeRecord.Upsert), ("x:b", ChangeRecord.Delete),
            ("x:e", ChangeRecord.Delete), ("x:d", ChangeRecord.Upsert), ("x:d", ChangeRecord.Delete), ("x:a", ChangeRecord.Delete), ("x:b", ChangeRecord.Upsert));
        changes.Select(c => c.Seq).Should().Equal(Enumerable.Range(1, 9).Select(i => seqBefore + i));
        (await store.GetKvHistoryAsync(Acme, "x:a", 20, null, 100)).Items.Select(h => (h.Event, h.Version, h.ValueJson))
            .Should().Equal((KvEvents.Created, 1L, "1"), (KvEvents.Deleted, 1L, null), (KvEvents.Created, 1L, "2"), (KvEvents.Deleted, 1L, null));
        (await store.GetKvHistoryAsync(Acme, "x:b", 20, null, 100)).Items.Select(h => h.Event)
            .Should().Equal(KvEvents.Created, KvEvents.Deleted, KvEvents.Created);
        (await store.GetManyKvAsync(Acme, ["x:a", "x:b", "x:c", "x:d", "x:e"])).Select(e => e?.ValueJson).Should().Equal(null, "4", null, null, null);
        if (_engine.Store is Engram.Core.Storage.Postgres.PostgresMemoryStore postgres)
        {
            (await postgres.CheckIntegrityAsync()).Problems.Should().BeEmpty();
        }
    }

    [Fact]
    public async Task TheSweeper_DeletesExpiredKeysOfEveryTenant_EachWithItsOwnHistory()
    {
        for (var i = 0; i < 1200; i++)
        {
            await Kv.SetAsync(i % 2 == 0 ? Acme : Globex, $"t:{i:D4}", Json(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), 5);
        }
        await Kv.SetAsync(Acme, "t:live", Json("1"), 100);
        _clock.Advance(TimeSpan.FromSeconds(5));
        var store = (IKeyValueStore)_engine.Store;
        (await store.DeleteExpiredKvAsync(1000)).Should().Be(1000);
        (await store.DeleteExpiredKvAsync(1000)).Should().Be(200);
        (await store.DeleteExpiredKvAsync(1000)).Should().Be(0);
        foreach (var (caller, key) in new[] { (Acme, "t:0000"), (Globex, "t:1199") })
        {
            var history = (await Kv.GetHistoryAsync(caller, key)).Items;
            history.Select(h => (h.Event, h.Actor)).Should().Equal((KvEvents.Created, "test"), (KvEvents.Expired, "system:ttl-sweeper"));
        }
        (await Kv.GetAsync(Acme, "t:live")).Value.GetInt64().Should().Be(1);
        (await KeyCountAsync()).Should().Be(1);
    }

    /// <summary>
    /// The keys the store's kept counts hold, on PostgreSQL, whose triggers count every write as it commits (deletes of
    /// many keys in one statement trigger); SQLite's counts follow its tables, which its write-behind reaches later, so
    /// there the count is the live keys counted.
    /// </summary>
    private async Task<long> KeyCountAsync()
    {
        if (Backend == Backend.Postgres)
        {
            return (await _engine.Store.ReadCountsAsync()).KvKeys;
        }
        long n = 0;
        foreach (var caller in new[] { Acme, Globex })
        {
            n += (await Kv.CountAsync(caller)).Keys;
        }
        return n;
    }

    [Fact]
    public async Task Incr_FromManyConcurrentCallers_GivesExactlyTheSum()
    {
        var tasks = Enumerable.Range(0, 16).Select(c => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                await Kv.IncrementAsync(Acme, "n", 2);
            }
        }));
        await Task.WhenAll(tasks);
        (await Kv.GetAsync(Acme, "n")).Value.GetInt64().Should().Be(16 * 50 * 2);
        // Every increment is in the key's history chain, none lost or crossed under concurrency.
        var history = new List<KvHistoryItem>();
        string? cursor = null;
        do
        {
            var page = await Kv.GetHistoryAsync(Acme, "n", 300, cursor);
            history.InsertRange(0, page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        history.Select(h => h.Version).Should().Equal(Enumerable.Range(1, 800).Select(v => (long)v));
        history.Select(h => h.Value!.Value.GetInt64()).Should().Equal(Enumerable.Range(1, 800).Select(v => v * 2L));
    }

    [Fact]
    public async Task Data_SurvivesReopen()
    {
        await Kv.SetAsync(Acme, "durable", Json("{\"a\":1}"), 0);
        await _engine.DisposeAsync();
        _engine = EngramEngine.Open(Data.Value, clock: _clock);
        (await Kv.GetAsync(Acme, "durable")).Value.GetProperty("a").GetInt64().Should().Be(1);
    }

    [Fact]
    public async Task Sweeper_DeletesExpiredKeysInTheBackground()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var server = await EngramServer.StartAsync(Backend, configure: o => o.SweepIntervalSeconds = 1, clock: clock);
        (await server.Client.PutAsync("/v1/kv/tmp", new StringContent("""{"value":1,"ttl_seconds":5}""", System.Text.Encoding.UTF8, "application/json")))
            .StatusCode.Should().Be(HttpStatusCode.Created);
        clock.Advance(TimeSpan.FromSeconds(6));
        var deadline = DateTime.UtcNow.AddSeconds(15);
        List<JsonElement> history;
        do
        {
            await Task.Delay(200);
            history = [.. (await (await server.Client.GetAsync("/v1/kv/tmp?history=true")).JsonAsync()).GetProperty("items").EnumerateArray()];
        }
        while (history.Count < 2 && DateTime.UtcNow < deadline);
        history.Select(h => h.GetProperty("event").GetString()).Should().Equal("created", "expired");
    }
}
