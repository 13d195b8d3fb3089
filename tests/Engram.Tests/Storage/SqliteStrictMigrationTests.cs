using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Embeddings;
using Engram.Core.Graph;
using Engram.Core.KeyValue;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.Storage;

/// <summary>
/// Schema version 8 rebuilds every table as STRICT. These tests write a version-7 file through the
/// real store (as the release before it did), migrate it, and compare every row, index and answer.
/// </summary>
public sealed class SqliteStrictMigrationTests : IDisposable
{
    private const int PreviousVersion = 7;
    private const int StrictVersion = 8;
    private const int SqliteConstraintDatatype = 19 | (12 << 8); // SQLITE_CONSTRAINT_DATATYPE, 3.37+

    private static readonly Caller Alice = new("default", "test");
    private static readonly Caller Bob = new("team-b", "test");
    private static readonly DateTimeOffset Start = new(2026, 12, 2, 9, 0, 0, TimeSpan.Zero);

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Folder(string name) => Path.Combine(_dir.Path, name);

    private static string DbPath(string folder) => Path.Combine(folder, SqliteMemoryStore.FileName);

    [Fact]
    public void The_engine_is_SQLite_3_53_or_newer()
    {
        using var c = SqliteConnection.Open(Path.Combine(_dir.Path, "v.db"));
        var version = Version.Parse(c.ScalarText("select sqlite_version()")!);
        version.Should().BeGreaterThanOrEqualTo(new Version(3, 53), "STRICT tables and the rest of this schema need it");
        SqliteConnection.Version.Should().Be(version.ToString());
    }

    [Fact]
    public async Task A_version_7_file_keeps_every_row_rowid_index_and_answer_when_its_tables_become_strict()
    {
        var folder = Folder("old");
        var clock = new ManualClock(Start);
        string answersBefore;
        await using (var old = new EngramEngine(SqliteMemoryStore.OpenAtSchemaVersion(folder, PreviousVersion, clock), new MemoryLimits(), new SearchOptions(),
                         BuiltinEmbeddingProvider.Default, clock))
        {
            await WriteEverythingAsync(old, clock);
            using (var c = SqliteConnection.Open(DbPath(folder), create: false))
            {
                SqliteSchema.CurrentVersion(c).Should().Be(PreviousVersion);
                // A change log whose newest entry is gone: its AUTOINCREMENT counter is above max(seq),
                // and the rebuilt table must not hand that number out again.
                c.ExecuteNonQuery("DELETE FROM changelog WHERE seq = (SELECT max(seq) FROM changelog)");
            }
            answersBefore = await AnswersAsync(old);
        }
        var rowsBefore = Rows(folder);
        var indexesBefore = Indexes(folder);
        var tablesBefore = Tables(folder);
        var counterBefore = ChangelogCounter(folder);
        tablesBefore.Should().OnlyContain(t => !t.Strict);

        // Up to version 8 only: later versions add tables of their own (9: API keys, audit log), tested on their own.
        await using (var migrated = new EngramEngine(SqliteMemoryStore.OpenAtSchemaVersion(folder, StrictVersion, clock), new MemoryLimits(), new SearchOptions(),
                         BuiltinEmbeddingProvider.Default, clock))
        {
            using (var c = SqliteConnection.Open(DbPath(folder), create: false))
            {
                SqliteSchema.CurrentVersion(c).Should().Be(StrictVersion);
                c.ScalarText("PRAGMA integrity_check").Should().Be("ok");
                c.ScalarText("PRAGMA foreign_key_check").Should().BeNull();
            }
            Rows(folder).Should().Equal(rowsBefore, "every row of every table is copied with its rowid and storage class");
            Indexes(folder).Should().Equal(indexesBefore, "every index is recreated as it was");
            Tables(folder).Should().Equal(tablesBefore.Select(t => t with { Strict = true }), "every table is STRICT and keeps WITHOUT ROWID");
            ChangelogCounter(folder).Should().Be(counterBefore);
            (await AnswersAsync(migrated)).Should().Be(answersBefore);
            // Metadata filters read the binary copy the rebuild computed for every old row (the old
            // schema has none, so these are checked against the metadata each memory returns).
            var all = (await migrated.Store.ListAsync(Alice, MemoryFilter.None, 100, null)).Items;
            foreach (var (key, value) in new[] { ("a", "x1"), ("z", "4"), ("price", "1.5"), ("nested.k", "x") })
            {
                var expected = all.Where(m => MetadataValue(m.Metadata, key) == value).Select(m => m.Id).ToList();
                var found = (await migrated.Store.ListAsync(Alice, new MemoryFilter { Metadata = new Dictionary<string, string> { [key] = value } }, 100, null)).Items;
                found.Select(m => m.Id).Should().Equal(expected, $"metadata {key} = {value}");
            }
            all.Count(m => MetadataValue(m.Metadata, "a") == "x1").Should().BeGreaterThan(0);

            // The migrated file takes writes; sequence numbers keep rising past the old counter.
            var next = await migrated.Memories.CreateAsync(Alice, new NewMemory { Content = "after the migration", Tags = ["red"] });
            next.Seq.Should().BeGreaterThan(counterBefore);
            var history = (await migrated.KeyValue.GetHistoryAsync(Alice, "counter")).Items.Count;
            await migrated.KeyValue.SetAsync(Alice, "counter", Json("43"), null);
            (await migrated.KeyValue.GetHistoryAsync(Alice, "counter")).Items.Should().HaveCount(history + 1, "the chain goes on from the copied rows");
        }
    }

    [Fact]
    public async Task Key_value_writes_a_crashed_version_7_process_left_unfolded_replay_after_the_migration()
    {
        var clock = new ManualClock(Start);
        var crashImage = Folder("crash");
        Directory.CreateDirectory(crashImage);
        await using (var old = new EngramEngine(SqliteMemoryStore.OpenAtSchemaVersion(Folder("old"), PreviousVersion, clock), new MemoryLimits(),
                         new SearchOptions(), BuiltinEmbeddingProvider.Default, clock))
        {
            for (var i = 0; i < 50; i++)
            {
                await old.KeyValue.SetAsync(Alice, $"k{i % 10}", Json($"{{\"n\":{i}}}"), i % 3 == 0 ? 600 : null);
            }
            await old.KeyValue.DeleteAsync(Alice, "k9");
            // What a kill -9 leaves: the committed file, with the states waiting in memory never folded into kv_entries.
            using var c = SqliteConnection.Open(DbPath(Folder("old")), create: false);
            c.ExecuteNonQuery("VACUUM INTO ?1", DbPath(crashImage));
        }
        long watermarkBefore;
        using (var c = SqliteConnection.Open(DbPath(crashImage), create: false))
        {
            watermarkBefore = c.ScalarInt64("SELECT CAST(value AS INTEGER) FROM store_meta WHERE key = 'kv_folded_hid'")!.Value;
            c.ScalarInt64("SELECT max(hid) FROM kv_history").Should().BeGreaterThan(watermarkBefore, "history rows lie above the watermark");
        }

        await using (var reopened = EngramEngine.OpenSqlite(crashImage, clock: clock))
        {
            for (var k = 0; k < 9; k++)
            {
                var last = Enumerable.Range(0, 50).Last(i => i % 10 == k);
                (await reopened.KeyValue.GetAsync(Alice, $"k{k}")).Value.GetRawText().Should().Be($"{{\"n\":{last}}}");
            }
            var missing = () => reopened.KeyValue.GetAsync(Alice, "k9");
            await missing.Should().ThrowAsync<NotFoundException>();
            (await reopened.KeyValue.GetHistoryAsync(Alice, "k0")).Items.Should().HaveCount(5, "five sets, none lost to the rebuild");
        }
        using (var c = SqliteConnection.Open(DbPath(crashImage), create: false))
        {
            SqliteSchema.CurrentVersion(c).Should().Be(SqliteSchema.LatestVersion);
            c.ScalarText("SELECT typeof(value) FROM store_meta WHERE key = 'kv_folded_hid'").Should().Be("text");
            c.ScalarInt64("SELECT CAST(value AS INTEGER) FROM store_meta WHERE key = 'kv_folded_hid'")
                .Should().Be(c.ScalarInt64("SELECT max(hid) FROM kv_history"), "the replay after the migration moved the watermark to the newest row");
        }
    }

    [Theory]
    [InlineData("UPDATE memories SET created_at = 'yesterday'")]
    [InlineData("UPDATE memories SET importance = 'high'")]
    [InlineData("UPDATE memory_tags SET rid = 'one'")]
    [InlineData("UPDATE kv_entries SET version = 'v2'")]
    [InlineData("UPDATE kv_history SET at = x'00'")]
    [InlineData("UPDATE changelog SET at = 'now'")]
    [InlineData("UPDATE graph_relations SET weight = 'heavy'")]
    public async Task A_value_of_the_wrong_type_is_refused_by_the_engine(string sql)
    {
        var folder = Folder("typed");
        var clock = new ManualClock(Start);
        await using (var engine = EngramEngine.OpenSqlite(folder, clock: clock))
        {
            await WriteEverythingAsync(engine, clock);
        }
        using var c = SqliteConnection.Open(DbPath(folder), create: false);
        var write = () => c.ExecuteNonQuery(sql);
        write.Should().Throw<SqliteException>().Which.ResultCode.Should().Be(SqliteConstraintDatatype);
        // A value that converts without loss is still taken, as the column's type.
        c.ExecuteNonQuery("UPDATE memories SET access_count = '7' WHERE rid = (SELECT min(rid) FROM memories)");
        c.ScalarText("SELECT typeof(access_count) FROM memories WHERE rid = (SELECT min(rid) FROM memories)").Should().Be("integer");
    }

    [Fact]
    public async Task Metadata_filters_read_the_binary_copy_while_reads_return_the_text_as_given()
    {
        var folder = Folder("jsonb");
        await using var engine = EngramEngine.OpenSqlite(folder);
        const string given = "{ \"b\": 1.50, \"a\" : \"x\", \"n\": {\"k\": 1e3}, \"big\": 12345678901234567890, \"e\": \"caf\\u00e9\" }";
        var id = (await engine.Memories.CreateAsync(Alice, new NewMemory { Content = "with metadata", Metadata = Json(given) })).Memory.Id;
        await engine.Memories.CreateAsync(Alice, new NewMemory { Content = "other", Metadata = Json("{\"a\":\"y\",\"b\":2}") });

        (await engine.Store.GetAsync(Alice, id))!.Metadata.GetRawText().Should().Be(given, "the text is stored and returned as given");
        foreach (var (key, value) in new[] { ("b", "1.5"), ("a", "x"), ("n.k", "1000"), ("e", "café") })
        {
            (await Matching(key, value)).Should().Equal([id], $"{key} = {value}");
        }
        (await Matching("a", "z")).Should().BeEmpty();

        await engine.Memories.UpdateAsync(Alice, id, new MemoryPatch { Metadata = new(Json("{\"a\":\"z\"}")) });
        (await Matching("a", "z")).Should().Equal([id], "the binary copy follows an update");
        (await Matching("a", "x")).Should().BeEmpty();
        using var c = SqliteConnection.Open(DbPath(folder), create: false);
        c.ScalarInt64("SELECT count(*) FROM memories WHERE typeof(metadata_jsonb) <> 'blob' OR json(metadata_jsonb) <> json(metadata)").Should().Be(0);

        async Task<List<string>> Matching(string key, string value) =>
            (await engine.Store.ListAsync(Alice, new MemoryFilter { Metadata = new Dictionary<string, string> { [key] = value } }, 10, null))
            .Items.Select(m => m.Id).ToList();
    }

    /// <summary>Memories (tags, entities, metadata, history, a deletion), key-value state and the graph, over two tenants.</summary>
    private static async Task WriteEverythingAsync(EngramEngine engine, ManualClock clock)
    {
        var ids = new List<string>();
        for (var i = 0; i < 12; i++)
        {
            var caller = i % 4 == 3 ? Bob : Alice;
            var written = await engine.Memories.CreateAsync(caller, new NewMemory
            {
                Content = $"memory number {i} about Ada and the engine",
                Tags = i % 2 == 0 ? ["red", $"t{i}"] : ["blue"],
                Entities = i % 3 == 0 ? ["Ada Lovelace", "Babbage"] : null,
                Metadata = Json($"{{\"z\":{i},\"a\":\"x{i % 3}\",\"price\":1.50,\"big\":12345678901234567890,\"nested\":{{\"k\":[1,2.0,\"3\"]}}}}"),
                UserId = i % 2 == 0 ? "u1" : null,
                Importance = i / 12.0,
                Valence = i % 5 == 0 ? -0.5 : null,
                TtlSeconds = i == 5 ? 3600 : null,
                ValidFrom = i == 6 ? Start.AddDays(-1) : null,
            });
            ids.Add(written.Memory.Id);
            clock.Advance(TimeSpan.FromSeconds(1));
        }
        await engine.Memories.UpdateAsync(Alice, ids[0], new MemoryPatch { Content = "memory number 0, updated", Tags = new(["green"]), Entities = new(["Ada"]) });
        await engine.Memories.DeleteAsync(Alice, ids[1]);

        await engine.KeyValue.SetAsync(Alice, "counter", Json("41"), null);
        await engine.KeyValue.SetAsync(Alice, "counter", Json("42"), null);
        await engine.KeyValue.SetAsync(Alice, "doc", Json("{\"b\":1,\"a\":[true,null,1.0]}"), 600);
        await engine.KeyValue.SetAsync(Alice, "gone", Json("\"bye\""), null);
        await engine.KeyValue.DeleteAsync(Alice, "gone");
        await engine.KeyValue.SetAsync(Bob, "counter", Json("1"), null);
        await engine.KeyValue.ExpireAsync(Alice, "counter", 3600);
        await engine.KeyValue.ExpireAsync(Alice, "counter", 0);

        await engine.Graph.CreateEntitiesAsync(Alice, [
            new NewEntity { Name = "Zed", EntityType = "person", Observations = ["last created first"] },
            new NewEntity { Name = "Ada", EntityType = "person", Observations = ["wrote the first program", new ObservationInput("old fact", Start.AddYears(-1), Start)] },
            new NewEntity { Name = "Engine", EntityType = "machine" },
            new NewEntity { Name = "Temp", EntityType = "thing" },
        ]);
        await engine.Graph.CreateRelationsAsync(Alice, [new NewRelation { From = "Ada", To = "Engine", RelationType = "programmed" },
            new NewRelation { From = "Temp", To = "Ada", RelationType = "mentions" }]);
        await engine.Graph.DeleteEntitiesAsync(Alice, ["Temp"]);
        await engine.Graph.CreateEntitiesAsync(Bob, [new NewEntity { Name = "Ada", EntityType = "person" }]);
    }

    /// <summary>What the stores answer about everything written, as JSON text.</summary>
    private static async Task<string> AnswersAsync(EngramEngine engine)
    {
        var answers = new List<object?>();
        foreach (var caller in new[] { Alice, Bob })
        {
            var all = await engine.Store.ListAsync(caller, MemoryFilter.None, 100, null);
            answers.Add(all);
            foreach (var memory in all.Items)
            {
                answers.Add(await engine.Store.GetAsync(caller, memory.Id));
                answers.Add(await engine.Memories.GetHistoryAsync(caller, memory.Id));
            }
            answers.Add(await engine.Store.ListAsync(caller, new MemoryFilter { Tags = ["red"] }, 100, null));
            answers.Add(await engine.Store.ListAsync(caller, new MemoryFilter { Entity = "ada lovelace" }, 100, null));
            answers.Add(await engine.KeyValue.ListAsync(caller, "*", 100, null));
            foreach (var key in new[] { "counter", "doc", "gone" })
            {
                answers.Add(await engine.KeyValue.GetManyAsync(caller, [key]));
                try
                {
                    answers.Add(await engine.KeyValue.GetHistoryAsync(caller, key));
                }
                catch (NotFoundException)
                {
                    answers.Add($"no history of {key}");
                }
            }
            answers.Add(await engine.Graph.ReadGraphAsync(caller, includeInvalid: true));
        }
        answers.Add(await engine.Store.ReadChangesAsync(0, 1000));
        return JsonSerializer.Serialize(answers);
    }

    /// <summary>Every row of every table (rowids of rowid tables included), each value with its storage class.</summary>
    private static List<string> Rows(string folder)
    {
        using var c = SqliteConnection.Open(DbPath(folder), create: false);
        var rows = new List<string>();
        foreach (var table in Tables(folder).Select(t => t.Name).Append("sqlite_sequence"))
        {
            var columns = new List<string>();
            using (var info = c.Prepare($"SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))
            {
                while (info.Step())
                {
                    columns.Add(info.GetText(0));
                }
            }
            // sqlite_sequence's own rowids are bookkeeping: the rename keeps the row, not its rowid.
            var hasRowid = table != "sqlite_sequence" && c.ScalarInt64($"SELECT wr FROM pragma_table_list WHERE name = '{table}' AND schema = 'main'") == 0;
            var values = (hasRowid ? columns.Prepend("rowid") : columns).Select(column => $"typeof(\"{column}\") || ':' || quote(\"{column}\")");
            var where = table == "schema_version" ? $" WHERE version <= {PreviousVersion}" : "";
            using var select = c.Prepare($"SELECT {string.Join(" || '|' || ", values)} FROM \"{table}\"{where}");
            while (select.Step())
            {
                rows.Add($"{table}: {select.GetText(0)}");
            }
        }
        rows.Sort(StringComparer.Ordinal);
        return rows;
    }

    private static List<string> Indexes(string folder)
    {
        using var c = SqliteConnection.Open(DbPath(folder), create: false);
        var indexes = new List<string>();
        using var select = c.Prepare("SELECT tbl_name, name, coalesce(sql, 'auto') FROM sqlite_schema WHERE type = 'index' ORDER BY tbl_name, name");
        while (select.Step())
        {
            indexes.Add($"{select.GetText(0)} {select.GetText(1)} {select.GetText(2)}");
        }
        return indexes;
    }

    private sealed record TableShape(string Name, bool WithoutRowid, bool Strict);

    private static List<TableShape> Tables(string folder)
    {
        using var c = SqliteConnection.Open(DbPath(folder), create: false);
        var tables = new List<TableShape>();
        using var select = c.Prepare("SELECT name, wr, strict FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
        while (select.Step())
        {
            tables.Add(new TableShape(select.GetText(0), select.GetInt64(1) == 1, select.GetInt64(2) == 1));
        }
        return tables;
    }

    private static long ChangelogCounter(string folder)
    {
        using var c = SqliteConnection.Open(DbPath(folder), create: false);
        return c.ScalarInt64("SELECT seq FROM sqlite_sequence WHERE name = 'changelog'") ?? 0;
    }

    /// <summary>A top-level metadata value as a listing filter compares it (strings as such, numbers as numbers).</summary>
    private static string? MetadataValue(JsonElement metadata, string key) =>
        !metadata.TryGetProperty(key, out var value) ? null
        : value.ValueKind == JsonValueKind.String ? value.GetString()
        : value.ValueKind == JsonValueKind.Number ? value.GetDouble().ToString(System.Globalization.CultureInfo.InvariantCulture)
        : null;

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();
}
