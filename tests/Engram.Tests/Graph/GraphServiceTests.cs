using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Graph;

/// <summary>The graph facade over a real SQLite file: tenancy, validity with a manual clock, history, search.</summary>
public class GraphServiceTests : IAsyncLifetime
{
    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class (tests/Engram.Tests/Postgres).</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private static readonly Caller Alice = new("tenant-a", "alice");
    private static readonly Caller Bob = new("tenant-b", "bob");

    private StoreLocation? _location;

    private StoreLocation Data => _location ??= StoreLocation.Create(Backend);
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private IMemoryStore _store = null!;
    private GraphService _graph = null!;

    public Task InitializeAsync()
    {
        _store = Data.Open(_clock);
        _graph = new GraphService((IGraphStore)_store, _clock);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        _location?.Dispose();
    }

    private static NewEntity Person(string name, params string[] observations) =>
        new() { Name = name, EntityType = "person", Observations = observations.Select(o => (ObservationInput?)o).ToList() };

    private static NewRelation Rel(string from, string type, string to) => new() { From = from, To = to, RelationType = type };

    [Fact]
    public async Task A_hubs_neighbourhood_stops_at_its_limit_keeps_only_relations_among_what_it_returns_and_says_it_was_cut()
    {
        // A hub related to 30 leaves, each leaf to one further node: depth 1 holds 30 entities, depth 2 holds 60.
        await _graph.CreateEntitiesAsync(Alice, [Person("hub"), .. Enumerable.Range(0, 30).SelectMany(i => new[] { Person($"leaf{i:00}"), Person($"far{i:00}") })]);
        await _graph.CreateRelationsAsync(Alice, [.. Enumerable.Range(0, 30).Select(i => Rel("hub", "has", $"leaf{i:00}"))]);
        await _graph.CreateRelationsAsync(Alice, [.. Enumerable.Range(0, 30).Select(i => Rel($"leaf{i:00}", "knows", $"far{i:00}"))]);

        var whole = await _graph.NeighborsAsync(Alice, "hub", depth: 2);
        (whole.Entities.Count, whole.Relations.Count, whole.Truncated).Should().Be((61, 60, false));

        var cut = await _graph.NeighborsAsync(Alice, "hub", depth: 2, limit: 40);
        cut.Truncated.Should().BeTrue();
        cut.Entities.Should().HaveCount(41, "the start and 40 others");
        cut.Entities.Select(e => e.Name).Should().Contain([.. Enumerable.Range(0, 30).Select(i => $"leaf{i:00}")], "the first hop is reached first");
        var names = cut.Entities.Select(e => e.Name).ToHashSet();
        cut.Relations.Should().OnlyContain(r => names.Contains(r.From) && names.Contains(r.To), "no relation points outside the answer");
        cut.Relations.Should().HaveCount(40);

        var exact = await _graph.NeighborsAsync(Alice, "hub", limit: 30);
        (exact.Entities.Count, exact.Truncated).Should().Be((31, false), "exactly the limit is not a cut");
        (await _graph.NeighborsAsync(Alice, "hub", limit: 29)).Truncated.Should().BeTrue();

        foreach (var bad in new[] { 0, -1, GraphService.MaxNeighborLimit + 1 })
        {
            (await FluentActions.Awaiting(() => _graph.NeighborsAsync(Alice, "hub", limit: bad)).Should().ThrowAsync<ValidationException>())
                .Which.Field.Should().Be("limit");
        }
    }

    [Fact]
    public async Task An_entitys_history_comes_in_pages_oldest_first_and_the_cursor_continues_without_gaps_or_repeats()
    {
        await _graph.CreateEntitiesAsync(Alice, [Person("Ada"), Person("Other")]);
        for (var i = 0; i < 12; i++)
        {
            await _graph.AddObservationsAsync(Alice, [new ObservationAddition { EntityName = "Ada", Contents = [$"fact {i}"] }]);
            await _graph.AddObservationsAsync(Alice, [new ObservationAddition { EntityName = "Other", Contents = [$"noise {i}"] }]);
        }
        var whole = (await _graph.GetHistoryAsync(Alice, "Ada")).Items;
        whole.Should().HaveCount(13);

        var paged = new List<GraphHistoryEntry>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await _graph.GetHistoryAsync(Alice, "Ada", limit: 5, cursor: cursor);
            page.Items.Count.Should().BeLessThanOrEqualTo(5);
            paged.AddRange(page.Items);
            cursor = page.NextCursor;
            pages++;
        }
        while (cursor is not null);
        pages.Should().Be(3);
        paged.Select(h => h.Seq).Should().Equal(whole.Select(h => h.Seq));
        (await _graph.GetHistoryAsync(Alice, "Ada", limit: 13)).NextCursor.Should().BeNull("a page that ends the history has no cursor");

        foreach (var bad in new[] { "x", "-3", "0", "1.5" })
        {
            (await FluentActions.Awaiting(() => _graph.GetHistoryAsync(Alice, "Ada", cursor: bad)).Should().ThrowAsync<ValidationException>())
                .Which.Field.Should().Be("cursor");
        }
        (await FluentActions.Awaiting(() => _graph.GetHistoryAsync(Alice, "Ada", limit: GraphService.MaxHistoryLimit + 1)).Should().ThrowAsync<ValidationException>())
            .Which.Field.Should().Be("limit");
        var past = await _graph.GetHistoryAsync(Alice, "Ada", cursor: long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture));
        (past.Items.Count, past.NextCursor).Should().Be((0, (string?)null), "past the end is an empty page, not a 404");
    }

    [Fact]
    public async Task A_relation_of_the_longest_names_and_type_under_the_longest_scope_is_stored_once()
    {
        // Random 3-byte characters (no compression helps): two 256-character scope values make the partition ~1.6 KB of
        // UTF-8, the names 768 bytes each and the type 384. PostgreSQL's unique B-tree over the whole triple took at most
        // 2,704 bytes and answered 500; the triple is unique on hashes of its parts there now.
        var random = new Random(48);
        string Text(int length) => string.Concat(Enumerable.Range(0, length).Select(_ => (char)random.Next(0x4E00, 0x9FFF)));
        var scoped = new Caller("tenant-a", "agent", Role.Write, new KeyScope(Text(256), Text(256)));
        var (from, to, type) = (Text(GraphValidator.MaxNameLength), Text(GraphValidator.MaxNameLength), Text(GraphValidator.MaxTypeLength));
        await _graph.CreateEntitiesAsync(scoped, [Person(from), Person(to)]);

        (await _graph.CreateRelationsAsync(scoped, [Rel(from, type, to)])).Should().ContainSingle();
        (await _graph.CreateRelationsAsync(scoped, [Rel(from, type, to)])).Should().BeEmpty("the same triple is a duplicate");
        (await _graph.CreateRelationsAsync(scoped, [Rel(to, type, from)])).Should().ContainSingle("the reverse is another triple");
        (await _graph.NeighborsAsync(scoped, from)).Relations.Should().HaveCount(2);
        (await _graph.DeleteRelationsAsync(scoped, [Rel(from, type, to)])).Should().Be(1);
        (await _graph.ReadGraphAsync(scoped)).Relations.Should().ContainSingle().Which.From.Should().Be(to);
        (await _graph.ReadGraphAsync(Alice)).Entities.Should().BeEmpty("a scoped key's graph is its own");
    }

    [Fact]
    public async Task OtherTenants_SeeNothing_AndCannotRelateDeleteOrObserveAcrossTenants()
    {
        await _graph.CreateEntitiesAsync(Alice, [Person("Ada", "writes programs"), Person("Charles")]);
        await _graph.CreateRelationsAsync(Alice, [Rel("Ada", "knows", "Charles")]);

        (await _graph.ReadGraphAsync(Bob)).Entities.Should().BeEmpty();
        (await _graph.SearchAsync(Bob, "programs")).Entities.Should().BeEmpty();
        (await _graph.OpenNodesAsync(Bob, ["Ada"])).Entities.Should().BeEmpty();
        await FluentActions.Awaiting(() => _graph.NeighborsAsync(Bob, "Ada")).Should().ThrowAsync<NotFoundException>();
        await FluentActions.Awaiting(() => _graph.PathAsync(Bob, "Ada", "Charles")).Should().ThrowAsync<NotFoundException>();
        await FluentActions.Awaiting(() => _graph.GetHistoryAsync(Bob, "Ada")).Should().ThrowAsync<NotFoundException>();
        await FluentActions.Awaiting(() => _graph.AddObservationsAsync(Bob, [new ObservationAddition { EntityName = "Ada", Contents = ["hijacked"] }]))
            .Should().ThrowAsync<NotFoundException>();
        // Bob has his own Ada; a relation from it to Alice's Charles must not be possible.
        await _graph.CreateEntitiesAsync(Bob, [Person("Ada")]);
        (await FluentActions.Awaiting(() => _graph.CreateRelationsAsync(Bob, [Rel("Ada", "knows", "Charles")])).Should().ThrowAsync<ValidationException>())
            .Which.Field.Should().Be("relations[0].to");
        (await _graph.DeleteEntitiesAsync(Bob, ["Charles"])).Should().Be(0);
        (await _graph.DeleteRelationsAsync(Bob, [Rel("Ada", "knows", "Charles")])).Should().Be(0);
        (await _graph.DeleteObservationsAsync(Bob, [new ObservationDeletion { EntityName = "Ada", Observations = ["writes programs"] }])).Should().Be(0);
        (await _graph.DeleteEntitiesAsync(Bob, ["Ada"])).Should().Be(1);
        // The index itself filters by tenant before its top-k cut: Alice's stronger match must not take Bob's only slot.
        await _graph.CreateEntitiesAsync(Bob, [Person("Bobby", "sometimes reads about programs among many other long and unrelated hobbies and pastimes")]);
        (await _graph.SearchAsync(Bob, "programs", limit: 1)).Entities.Select(e => e.Name).Should().Equal("Bobby");

        var alices = await _graph.ReadGraphAsync(Alice);
        alices.Entities.Select(e => e.Name).Should().Equal("Ada", "Charles");
        alices.Entities[0].Observations.Should().Equal("writes programs");
        alices.Relations.Should().ContainSingle();
    }

    [Fact]
    public async Task ValidityWindows_HideEndedFacts_UnlessIncludeInvalid()
    {
        var now = _clock.GetUtcNow();
        await _graph.CreateEntitiesAsync(Alice,
        [
            new NewEntity
            {
                Name = "Ada", EntityType = "person",
                Observations = ["likes tea", new ObservationInput("lives in London", ValidTo: now.AddDays(10))],
            },
            Person("Acme"), Person("Initech"),
        ]);
        await _graph.CreateRelationsAsync(Alice,
        [
            new NewRelation { From = "Ada", To = "Acme", RelationType = "works_at", ValidTo = now.AddDays(10), Weight = 0.5 },
            new NewRelation { From = "Ada", To = "Initech", RelationType = "works_at", ValidFrom = now.AddDays(10) },
        ]);

        var before = await _graph.ReadGraphAsync(Alice);
        before.Entities.Single(e => e.Name == "Ada").Observations.Should().Equal("likes tea", "lives in London");
        before.Relations.Select(r => r.To).Should().Equal("Acme");
        (await _graph.SearchAsync(Alice, "London")).Entities.Select(e => e.Name).Should().Equal("Ada");

        _clock.Advance(TimeSpan.FromDays(11));

        var after = await _graph.ReadGraphAsync(Alice);
        after.Entities.Single(e => e.Name == "Ada").Observations.Should().Equal("likes tea");
        after.Relations.Select(r => r.To).Should().Equal("Initech");
        (await _graph.SearchAsync(Alice, "London")).Entities.Should().BeEmpty("the observation stopped holding, with no write in between");
        (await _graph.NeighborsAsync(Alice, "Ada")).Entities.Select(e => e.Name).Should().BeEquivalentTo(["Ada", "Initech"]);

        var all = await _graph.ReadGraphAsync(Alice, includeInvalid: true);
        var ada = all.Entities.Single(e => e.Name == "Ada");
        ada.Observations.Should().Equal("likes tea");
        ada.InvalidObservations!.Select(o => (o.Content, o.Valid)).Should().Equal(("lives in London", false));
        all.Relations.Select(r => (r.To, r.Valid)).Should().BeEquivalentTo([("Acme", false), ("Initech", true)]);
        all.Relations.Single(r => r.To == "Acme").Weight.Should().Be(0.5);
        (await _graph.NeighborsAsync(Alice, "Ada", includeInvalid: true)).Entities.Should().HaveCount(3);
    }

    [Fact]
    public async Task History_RecordsEveryChangeWithItsActor_AndOutlivesTheEntity()
    {
        await _graph.CreateEntitiesAsync(Alice, [Person("Ada", "first"), Person("Charles")]);
        await _graph.CreateRelationsAsync(Alice, [Rel("Charles", "mentors", "Ada")]);
        await _graph.AddObservationsAsync(new Caller("tenant-a", "agent-7"), [new ObservationAddition { EntityName = "Ada", Contents = ["second", "first"] }]);
        await _graph.DeleteObservationsAsync(Alice, [new ObservationDeletion { EntityName = "Ada", Observations = ["first"] }]);
        await _graph.DeleteEntitiesAsync(Alice, ["Ada"]);

        var history = (await _graph.GetHistoryAsync(Alice, "Ada")).Items;
        history.Select(h => h.Event).Should().Equal(
            GraphEvents.EntityCreated, GraphEvents.RelationCreated, GraphEvents.ObservationAdded,
            GraphEvents.ObservationDeleted, GraphEvents.RelationDeleted, GraphEvents.EntityDeleted);
        history[2].Actor.Should().Be("agent-7");
        history[2].Changes.GetProperty("observations").EnumerateArray().Select(o => o.GetProperty("content").GetString()).Should().Equal("second");
        history[^1].Changes.GetProperty("observations").GetArrayLength().Should().Be(1);
        history.Select(h => h.Seq).Should().BeInAscendingOrder();
        (await _graph.ReadGraphAsync(Alice)).Relations.Should().BeEmpty();
    }

    [Fact]
    public async Task Search_RanksByBm25_OverNamesTypesAndObservations_AndFollowsChanges()
    {
        await _graph.CreateEntitiesAsync(Alice,
        [
            Person("Grace Hopper", "invented the compiler", "admiral in the navy"),
            Person("Linus", "wrote a kernel", "mentions compiler once"),
            new NewEntity { Name = "COBOL", EntityType = "language", Observations = ["designed for business"] },
        ]);
        await _graph.CreateRelationsAsync(Alice, [Rel("Grace Hopper", "designed", "COBOL"), Rel("Linus", "ignores", "COBOL")]);

        var hits = await _graph.SearchAsync(Alice, "Grace compiler");
        hits.Entities.Select(e => e.Name).Should().Equal("Grace Hopper", "Linus");
        hits.Relations.Should().BeEmpty("no relation joins the two hits");
        (await _graph.SearchAsync(Alice, "language")).Entities.Select(e => e.Name).Should().Equal("COBOL");
        var withRelation = await _graph.SearchAsync(Alice, "navy business");
        withRelation.Relations.Select(r => r.RelationType).Should().Equal("designed");

        await _graph.AddObservationsAsync(Alice, [new ObservationAddition { EntityName = "Linus", Contents = ["lives in Portland"] }]);
        (await _graph.SearchAsync(Alice, "Portland")).Entities.Select(e => e.Name).Should().Equal("Linus");
        await _graph.DeleteEntitiesAsync(Alice, ["Linus"]);
        (await _graph.SearchAsync(Alice, "Portland kernel")).Entities.Should().BeEmpty();
        (await _graph.SearchAsync(Alice, "zebra")).Entities.Should().BeEmpty();
    }

    [Fact]
    public async Task AStoreReopenedOnTheSameFile_KeepsTheGraph()
    {
        await _graph.CreateEntitiesAsync(Alice, [Person("Ada", "durable fact")]);
        await _store.DisposeAsync();
        _store = Data.Open(_clock);
        _graph = new GraphService((IGraphStore)_store, _clock);
        (await _graph.ReadGraphAsync(Alice)).Entities.Single().Observations.Should().Equal("durable fact");
        (await _graph.SearchAsync(Alice, "durable")).Entities.Should().ContainSingle();
    }

    [Fact]
    public async Task Validation_NamesTheField()
    {
        async Task<string> FieldOf(Func<Task> act) =>
            (await FluentActions.Awaiting(act).Should().ThrowAsync<ValidationException>()).Which.Field;

        (await FieldOf(() => _graph.CreateEntitiesAsync(Alice, []))).Should().Be("entities");
        (await FieldOf(() => _graph.CreateEntitiesAsync(Alice, [new NewEntity { Name = " ", EntityType = "x" }]))).Should().Be("entities[0].name");
        (await FieldOf(() => _graph.CreateEntitiesAsync(Alice, [new NewEntity { Name = new string('n', 257), EntityType = "x" }]))).Should().Be("entities[0].name");
        // Characters are code points: 257 emoji are refused, 256 (512 UTF-16 units) are a name.
        var emoji = string.Concat(Enumerable.Repeat("\U0001F600", 256));
        (await FieldOf(() => _graph.CreateEntitiesAsync(Alice, [new NewEntity { Name = emoji + "\U0001F600", EntityType = "x" }]))).Should().Be("entities[0].name");
        (await FieldOf(() => _graph.CreateEntitiesAsync(Alice, [new NewEntity { Name = "a", EntityType = new string('t', 129) }]))).Should().Be("entities[0].entity_type");
        (await FieldOf(() => _graph.CreateEntitiesAsync(Alice, [Person("a", new string('o', 4097))]))).Should().Be("entities[0].observations[0]");
        (await FieldOf(() => _graph.CreateEntitiesAsync(Alice, Enumerable.Range(0, 1001).Select(i => (NewEntity?)Person($"p{i}")).ToList()))).Should().Be("entities");
        (await FieldOf(() => _graph.CreateRelationsAsync(Alice, [new NewRelation { From = "a", To = "b" }]))).Should().Be("relations[0].relation_type");
        (await FieldOf(() => _graph.NeighborsAsync(Alice, "a", depth: 6))).Should().Be("depth");
        (await FieldOf(() => _graph.SearchAsync(Alice, " "))).Should().Be("query");
        (await _graph.ReadGraphAsync(Alice)).Entities.Should().BeEmpty();
        await _graph.CreateEntitiesAsync(Alice, [new NewEntity { Name = emoji, EntityType = string.Concat(Enumerable.Repeat("\U0001F600", 128)) }]);
        (await _graph.ReadGraphAsync(Alice)).Entities.Single().Name.Should().Be(emoji);
    }
}
