using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Core.Memories;
using Engram.Core.Storage;
using Engram.Core.Storage.Postgres;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;
using Npgsql;

namespace Engram.Tests.Graph;

/// <summary>
/// The schema migration that brings graph entity names to NFC (SqliteGraphNameMigration, PostgresGraphNameMigration).
/// A store written before it holds names as they were sent: the tests write such rows through the store itself (which
/// takes names as given; only the service normalizes), set the schema back to the version before the migration and
/// open the store again, which runs it. The PostgreSQL run derives from this class (PostgresConformanceTests).
/// </summary>
public class GraphNameMigrationTests : IAsyncLifetime
{
    protected virtual Backend Backend => Backend.Sqlite;

    private static readonly Caller Acme = new("acme", "tester");
    private static readonly Caller Other = new("other", "tester");
    private static readonly string JoseNfc = "Jos\u00e9";
    private static readonly string JoseNfd = "Jose\u0301";
    private static readonly string ZoeNfd = "Zoe\u0308";
    private static readonly string ElNfd = "E\u0301l";

    private StoreLocation _location = null!;
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public async Task InitializeAsync() => _location = await StoreLocation.CreateAsync(Backend);

    public Task DisposeAsync()
    {
        _location.Dispose();
        return Task.CompletedTask;
    }

    private static EntityDraft Draft(string name, string type, params string[] observations) =>
        new(name, type, observations.Select(o => new Observation { Content = o }).ToList());

    private static Relation Rel(string from, string type, string to) => new() { From = from, To = to, RelationType = type };

    [Fact]
    public async Task Names_not_in_NFC_are_renamed_or_merged_with_their_observations_relations_and_history()
    {
        JoseNfd.Should().NotBe(JoseNfc).And.Be(JoseNfc.Normalize(NormalizationForm.FormD));
        await using (var store = _location.Open(_clock))
        {
            var graph = (IGraphStore)store;
            await graph.CreateEntitiesAsync(Acme, [Draft(JoseNfc, "person", "likes tea", "spelled precomposed"), Draft("Ann", "person")]);
            _clock.Advance(TimeSpan.FromMinutes(1));
            await graph.CreateEntitiesAsync(Acme, [Draft(JoseNfd, "human", "likes tea", "spelled decomposed"), Draft(ZoeNfd, "person", "only decomposed"), Draft(ElNfd, "place")]);
            await graph.CreateRelationsAsync(Acme,
            [
                Rel(JoseNfc, "knows", "Ann"),
                Rel(JoseNfd, "knows", "Ann"),   // the same triple once merged: dropped
                Rel(JoseNfd, "likes", "Ann"),   // moves to José
                Rel(JoseNfd, "self", JoseNfd),  // a self-relation stays one
                Rel(JoseNfc, "twin", JoseNfd),  // both become José-twin-José: the older is kept
                Rel(JoseNfd, "twin", JoseNfc),
                Rel("Ann", "knows", ZoeNfd),
            ]);
            await graph.DeleteEntitiesAsync(Acme, [ElNfd]);
            await graph.CreateEntitiesAsync(Other, [Draft(JoseNfd, "person", "another tenant's")]);
        }

        await RewindBeforeNfcAsync();

        await using (var store = _location.Open(_clock))
        {
            var service = new GraphService((IGraphStore)store, _clock);
            var whole = await service.ReadGraphAsync(Acme);
            whole.Entities.Select(e => e.Name).Should().BeEquivalentTo([JoseNfc, "Ann", "Zo\u00eb"]);
            var jose = whole.Entities.Single(e => e.Name == JoseNfc);
            jose.EntityType.Should().Be("person", "the entity already under the NFC name keeps its type");
            jose.Observations.Should().Equal("likes tea", "spelled precomposed", "spelled decomposed");
            whole.Relations.Select(r => (r.From, r.RelationType, r.To)).Should().BeEquivalentTo(
            [
                (JoseNfc, "knows", "Ann"), (JoseNfc, "likes", "Ann"), (JoseNfc, "self", JoseNfc), (JoseNfc, "twin", JoseNfc), ("Ann", "knows", "Zo\u00eb"),
            ]);

            // Reached under either spelling, since the service normalizes what it is given.
            (await service.NeighborsAsync(Acme, JoseNfd)).Entities.Select(e => e.Name).Should().BeEquivalentTo([JoseNfc, "Ann"]);
            var history = (await service.GetHistoryAsync(Acme, JoseNfd)).Items;
            history.Count(h => h.Event == GraphEvents.EntityCreated).Should().Be(2, "both spellings' histories read as one");
            (await service.GetHistoryAsync(Acme, "\u00c9l")).Items.Select(h => h.Event).Should().Contain(GraphEvents.EntityDeleted, "a deleted entity's history is re-keyed too");

            // The search index, built from the change log, finds the merged and the renamed entity and not the old names.
            (await service.SearchAsync(Acme, "decomposed")).Entities.Select(e => e.Name).Should().BeEquivalentTo([JoseNfc, "Zo\u00eb"]);

            // The other tenant's entity is renamed in its own graph, not merged into acme's.
            var other = await service.ReadGraphAsync(Other);
            other.Entities.Should().ContainSingle().Which.Observations.Should().Equal("another tenant's");
            other.Entities[0].Name.Should().Be(JoseNfc);

            var counts = await store.ReadCountsAsync();
            counts.GraphEntities.Should().Be(4, "acme's José, Ann, Zoë and the other tenant's José");
            counts.GraphRelations.Should().Be(5);
        }
    }

    [Fact]
    public async Task After_the_migration_both_spellings_name_one_entity()
    {
        await using var store = _location.Open(_clock);
        var service = new GraphService((IGraphStore)store, _clock);
        await service.CreateEntitiesAsync(Acme, [new NewEntity { Name = JoseNfc, EntityType = "person", Observations = ["first"] }]);
        (await service.CreateEntitiesAsync(Acme, [new NewEntity { Name = JoseNfd, EntityType = "person", Observations = ["second"] }]))
            .Should().BeEmpty("the decomposed spelling names the entity that exists");
        await service.AddObservationsAsync(Acme, [new ObservationAddition { EntityName = JoseNfd, Contents = ["added decomposed"] }]);
        await service.CreateEntitiesAsync(Acme, [new NewEntity { Name = "Ann", EntityType = "person" }]);
        await service.CreateRelationsAsync(Acme, [new NewRelation { From = JoseNfd, To = "Ann", RelationType = "knows" }]);

        var whole = await service.ReadGraphAsync(Acme);
        whole.Entities.Select(e => e.Name).Should().Equal(JoseNfc, "Ann");
        whole.Entities[0].Observations.Should().Equal("first", "added decomposed");
        whole.Relations.Should().ContainSingle().Which.From.Should().Be(JoseNfc);
        (await service.PathAsync(Acme, JoseNfd, "Ann")).Relations.Should().ContainSingle();
        (await service.OpenNodesAsync(Acme, [JoseNfd])).Entities.Should().ContainSingle();
        (await service.DeleteEntitiesAsync(Acme, [JoseNfd])).Should().Be(1);
        (await service.ReadGraphAsync(Acme)).Relations.Should().BeEmpty();
    }

    /// <summary>
    /// The second run of the same migration (schema 16 on SQLite, 10 on PostgreSQL): names stored with a byte order mark or
    /// a zero-width space merge into the entity that looks the same, and a name of invisible characters only, which would
    /// become blank, stays as stored and still reads.
    /// </summary>
    [Fact]
    public async Task Names_with_invisible_characters_are_merged_into_the_name_they_look_like()
    {
        await using (var store = _location.Open(_clock))
        {
            var graph = (IGraphStore)store;
            await graph.CreateEntitiesAsync(Acme, [Draft("Alice", "person", "plain"), Draft("Bob", "person")]);
            _clock.Advance(TimeSpan.FromMinutes(1));
            await graph.CreateEntitiesAsync(Acme, [Draft("\uFEFFAlice", "person", "pasted from a file"), Draft("Al\u200Bice", "human", "zero-width inside"),
                Draft("\u200B", "thing", "invisible only"), Draft("\U0001F468\u200D\U0001F4BB", "emoji")]);
            await graph.CreateRelationsAsync(Acme, [Rel("Al\u200Bice", "knows", "Bob"), Rel("\uFEFFAlice", "knows", "Bob")]);
        }

        await RewindAsync(Backend == Backend.Sqlite ? SqliteSchema.GraphNamesWithoutInvisible : PostgresSchema.GraphNamesWithoutInvisible);

        await using (var store = _location.Open(_clock))
        {
            var service = new GraphService((IGraphStore)store, _clock);
            var whole = await service.ReadGraphAsync(Acme);
            whole.Entities.Select(e => e.Name).Should().BeEquivalentTo(["Alice", "Bob", "\u200B", "\U0001F468\u200D\U0001F4BB"],
                "the emoji's joiner is part of it, and a blank name is left as it was");
            var alice = whole.Entities.Single(e => e.Name == "Alice");
            alice.EntityType.Should().Be("person");
            alice.Observations.Should().Equal("plain", "pasted from a file", "zero-width inside");
            whole.Relations.Select(r => (r.From, r.RelationType, r.To)).Should().Equal(("Alice", "knows", "Bob"));
            (await service.OpenNodesAsync(Acme, ["Al\u200Bice"])).Entities.Should().ContainSingle().Which.Name.Should().Be("Alice");
        }
    }

    /// <summary>
    /// Schema 17 on SQLite, 11 on PostgreSQL: what the name migration left with invisible characters. The service folds
    /// entity and relation types and memory entity names it is given, so a type or entity key stored with one could no
    /// longer be named by any request: "works\u200B_at" could not be deleted, "Al\u200Bice" not filtered by.
    /// </summary>
    [Fact]
    public async Task Types_and_memory_entity_keys_with_invisible_characters_are_folded()
    {
        string memoryId;
        await using (var store = _location.Open(_clock))
        {
            var graph = (IGraphStore)store;
            await graph.CreateEntitiesAsync(Acme, [Draft("Alice", "per\u200Bson"), Draft("Bob", "person"), Draft("Cy", "\u200B")]);
            await graph.CreateRelationsAsync(Acme,
            [
                Rel("Alice", "works\u200B_at", "Bob"), // its folded triple exists (the next row): dropped
                Rel("Alice", "works_at", "Bob"),
                Rel("Bob", "\uFEFFknows", "Alice"),   // retyped
                Rel("Bob", "kno\u2060ws", "Alice"),   // folds to the triple the row before takes: dropped, the lower id wins
                Rel("Cy", "\u2060", "Bob"),            // invisible only: stays as stored
            ]);
            await graph.CreateEntitiesAsync(Other, [Draft("Alice", "person"), Draft("Bob", "person")]);
            await graph.CreateRelationsAsync(Other, [Rel("Alice", "works\u200B_at", "Bob")]);
            var memories = new MemoryService((IMemoryStore)store, new Engram.Core.Configuration.MemoryLimits(), _clock);
            memoryId = (await memories.CreateAsync(Acme, new NewMemory { Content = "met at the fair", Entities = ["Alice", "Bob"] })).Memory.Id;
        }
        // A memory written before names were folded: its spelling and its key as the earlier release stored them.
        await ExecuteAsync("UPDATE memories SET entities = '[\"Al\u200Bice\",\"Bob\"]'");
        await ExecuteAsync("UPDATE memory_entities SET name_key = 'al\u200Bice' WHERE name_key = 'alice'");
        long head;
        await using (var store = _location.Open(_clock))
        {
            (await store.ListAsync(Acme, new MemoryFilter { Entity = "Alice" }, 10, null)).Items.Should().BeEmpty("the old key is not folded yet");
            head = await store.GetLastSeqAsync();
        }

        await RewindAsync(Backend == Backend.Sqlite ? SqliteSchema.TypesAndEntityKeysWithoutInvisible : PostgresSchema.TypesAndEntityKeysWithoutInvisible);

        await using (var store = _location.Open(_clock))
        {
            var service = new GraphService((IGraphStore)store, _clock);
            var whole = await service.ReadGraphAsync(Acme);
            whole.Entities.Select(e => (e.Name, e.EntityType)).Should().BeEquivalentTo([("Alice", "person"), ("Bob", "person"), ("Cy", "\u200B")]);
            whole.Relations.Select(r => (r.From, r.RelationType, r.To)).Should().BeEquivalentTo(
                [("Alice", "works_at", "Bob"), ("Bob", "knows", "Alice"), ("Cy", "\u2060", "Bob")]);
            (await service.ReadGraphAsync(Other)).Relations.Should().ContainSingle().Which.RelationType.Should().Be("works_at", "each tenant's relations fold in its own graph");
            (await service.DeleteRelationsAsync(Acme, [new NewRelation { From = "Bob", To = "Alice", RelationType = "\uFEFFknows" }]))
                .Should().Be(1, "a request naming the old spelling reaches the folded relation");

            foreach (var filter in (string[])["Alice", "al\u200Bice", "ALICE"])
            {
                (await store.ListAsync(Acme, new MemoryFilter { Entity = filter }, 10, null)).Items.Should().ContainSingle()
                    .Which.Entities.Should().Equal(["Al\u200Bice", "Bob"], "the memory keeps its spelling");
            }
            (await store.ListAsync(Acme, new MemoryFilter { Entity = "Bob" }, 10, null)).Items.Should().ContainSingle();

            var changes = (await store.ReadChangesAsync(head, 100)).Select(c => (c.Entity, c.EntityId, c.Op)).ToList();
            changes.Should().Contain((ChangeRecord.MemoryEntity, memoryId, ChangeRecord.Upsert), "search indexes re-read the memory's entities");
            changes.Should().Contain((GraphChangeKinds.Entity, "Alice", ChangeRecord.Upsert));
            changes.Should().Contain((GraphChangeKinds.Relation, "Bob\u001fknows\u001fAlice", ChangeRecord.Upsert));
            changes.Should().Contain((GraphChangeKinds.Relation, "Alice\u001fworks\u200B_at\u001fBob", ChangeRecord.Delete));
        }
    }

    /// <summary>
    /// Schema 18 on SQLite, 12 on PostgreSQL: memory tags stored before writes folded invisible characters out of them.
    /// Filters compare the folded tag, so "Dr\u2060aft" would be found by no filter, nor named again. The migration
    /// stores what a write of the same tags stores now: each folded, case kept, one that folds to nothing dropped, one that
    /// folds into an earlier tag dropped, the order kept.
    /// </summary>
    [Fact]
    public async Task Memory_tags_with_invisible_characters_are_folded_as_a_write_would_store_them()
    {
        string tagged, emoji;
        await using (var store = _location.Open(_clock))
        {
            var memories = new MemoryService((IMemoryStore)store, new Engram.Core.Configuration.MemoryLimits(), _clock);
            tagged = (await memories.CreateAsync(Acme, new NewMemory { Content = "call the bank", Tags = ["urgent"] })).Memory.Id;
            emoji = (await memories.CreateAsync(Acme, new NewMemory { Content = "pair programming", Tags = ["\U0001F468\u200D\U0001F4BB"] })).Memory.Id;
        }
        // As an earlier release stored them: the tags as sent, trimmed and without repeats (the JSON with escapes, as the
        // serializer's default writes it; the index rows as text).
        string[] old = ["urgent\u200B", "draft", "\uFEFFdraft", "\u200B", "Dr\u2060aft", "urgent"];
        await ExecuteAsync($"UPDATE memories SET tags = '{JsonSerializer.Serialize(old)}' WHERE id = '{tagged}'");
        await ExecuteAsync($"DELETE FROM memory_tags WHERE rid = (SELECT rid FROM memories WHERE id = '{tagged}')");
        foreach (var tag in old)
        {
            await ExecuteAsync($"INSERT INTO memory_tags(rid, tag) SELECT rid, '{tag}' FROM memories WHERE id = '{tagged}'");
        }
        long head;
        await using (var store = _location.Open(_clock))
        {
            (await store.GetAsync(Acme, tagged))!.Tags.Should().Equal(old);
            (await store.ListAsync(Acme, new MemoryFilter { Tags = ["Draft"] }, 10, null)).Items.Should().BeEmpty("the old tag is not folded yet");
            head = await store.GetLastSeqAsync();
        }

        await RewindAsync(Backend == Backend.Sqlite ? SqliteSchema.TagsWithoutInvisible : PostgresSchema.TagsWithoutInvisible);

        await using (var store = _location.Open(_clock))
        {
            var memories = new MemoryService((IMemoryStore)store, new Engram.Core.Configuration.MemoryLimits(), _clock);
            var memory = await memories.GetAsync(Acme, tagged);
            memory.Tags.Should().Equal(["urgent", "draft", "Draft"], "what a write of the old tags stores now");
            memory.Version.Should().Be(1, "no caller changed the memory");
            (await memories.GetHistoryAsync(Acme, tagged)).Should().ContainSingle("history keeps what was written");

            foreach (var filter in (string[])["urgent", "draft", "Draft", "Dr\u2060aft", "\uFEFFurgent"])
            {
                (await memories.ListAsync(Acme, new MemoryFilter { Tags = [filter] })).Items.Should().ContainSingle()
                    .Which.Id.Should().Be(tagged, "the filter {0} is folded as the stored tag was", filter);
            }
            (await store.ListAsync(Acme, new MemoryFilter { Tags = ["Draft", "urgent"] }, 10, null)).Items.Should().ContainSingle()
                .Which.Id.Should().Be(tagged, "the index rows are re-keyed");
            (await store.ListAsync(Acme, new MemoryFilter { Tags = ["\u200B"] }, 10, null)).Items.Should().BeEmpty("the tag that folded to nothing is gone");
            (await memories.ListAsync(Acme, new MemoryFilter { Tags = ["\u200B"] })).Items.Should().BeEmpty("a filter of invisible characters only stays a filter");
            (await memories.GetAsync(Acme, emoji)).Tags.Should().Equal(["\U0001F468\u200D\U0001F4BB"], "the joiner inside an emoji is kept");

            var changes = (await store.ReadChangesAsync(head, 100)).Select(c => (c.Entity, c.EntityId, c.Op)).ToList();
            changes.Should().Equal([(ChangeRecord.MemoryEntity, tagged, ChangeRecord.Upsert)], "search indexes re-read the changed memory, and only it");
        }
    }

    [Fact]
    public void A_name_longer_in_NFC_is_measured_after_normalizing()
    {
        // U+0958 (DEVANAGARI LETTER QA) is a composition exclusion: NFC writes it as two characters.
        var name = new string('\u0958', 200);
        name.Normalize(NormalizationForm.FormC).Length.Should().Be(400);
        FluentActions.Invoking(() => GraphValidator.Name(name, "name")).Should().Throw<ValidationException>()
            .WithMessage("*400 characters; at most 256*");
    }

    /// <summary>Sets the schema back to the version before the NFC migration, so the next open runs it.</summary>
    private Task RewindBeforeNfcAsync() => RewindAsync(Backend == Backend.Sqlite ? SqliteSchema.GraphNamesInNfc : PostgresSchema.GraphNamesInNfc);

    /// <summary>Runs a statement on the store's database directly (rows as an earlier release wrote them).</summary>
    private async Task ExecuteAsync(string sql)
    {
        if (Backend == Backend.Sqlite)
        {
            using var c = SqliteConnection.Open(Path.Combine(_location.Value, SqliteMemoryStore.FileName), readOnly: false, create: false);
            c.Execute(sql);
            return;
        }
        await using var connection = new NpgsqlConnection(PostgresUrl.ToConnectionString(_location.Value));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Sets the schema back to the version before <paramref name="version"/>, so the next open runs its migration and the later ones.</summary>
    private async Task RewindAsync(int version)
    {
        if (Backend == Backend.Sqlite)
        {
            using var c = SqliteConnection.Open(Path.Combine(_location.Value, SqliteMemoryStore.FileName), readOnly: false, create: false);
            c.ExecuteNonQuery("DELETE FROM schema_version WHERE version >= ?1", version);
            return;
        }
        await using var connection = new NpgsqlConnection(PostgresUrl.ToConnectionString(_location.Value));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DELETE FROM schema_version WHERE version >= {version}", connection);
        await command.ExecuteNonQueryAsync();
    }
}
