using System.Text;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Operations;
using Engram.Core.Search;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Core.Storage.Transfer;
using Engram.Tests.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>
/// Stored embedding vectors travel with the data (export format 3): <c>engram migrate</c> and logical backups always
/// carry them, an export does when asked, so the target's index reads them instead of embedding the corpus again (hours
/// with a transformer model at 1M memories). Real SQLite files and a real PostgreSQL server; the model is
/// <see cref="CountingEmbedder"/>, which counts every text it embeds.
/// </summary>
public sealed class VectorTransferTests : IDisposable
{
    private const int Count = 12;
    private static readonly Caller Me = Caller.Default("test");
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Folder(string name) => Path.Combine(_dir.Path, name);

    /// <summary>A SQLite store of <see cref="Count"/> memories, one of them updated, every current version embedded and stored.</summary>
    private async Task<(string Folder, CountingEmbedder Embedder)> SeededAsync()
    {
        var folder = Folder("source");
        var embedder = new CountingEmbedder("counting-v1");
        await using (var engine = EngramEngine.OpenSqlite(folder, embedder: embedder))
        {
            await engine.EnsureIndexedAsync();
            var items = Enumerable.Range(0, Count)
                .Select(i => (NewMemory?)new NewMemory { Content = $"note {i} on {(i % 2 == 0 ? "the garden shed" : "the travel budget")}", UserId = "ann" }).ToList();
            var created = await engine.Memories.CreateBatchAsync(Me, items);
            await PersistedVectorTests.SettleAsync(engine);
            await engine.Memories.UpdateAsync(Me, created[0].Id!, new MemoryPatch { Content = "note 0, rewritten: the shed needs a new roof" });
            await PersistedVectorTests.SettleAsync(engine);
            embedder.Documents.Should().Be(Count + 1, "each memory once, and the update's new version");
            (await engine.Store.CountVectorRowsAsync()).Should().BeGreaterThanOrEqualTo(Count);
        }
        embedder.Reset();
        return (folder, embedder);
    }

    /// <summary>Opens the store with the same model, builds its index from scratch and embeds whatever has no stored vector; how many texts that took.</summary>
    private static async Task<int> EmbeddedOnOpenAsync(string location, CountingEmbedder embedder)
    {
        embedder.Reset();
        await using var engine = EngramEngine.Open(location, embedder: embedder);
        (await engine.EnsureIndexedAsync()).Source.Should().NotBe("snapshot");
        await PersistedVectorTests.SettleAsync(engine);
        engine.Index.VectorCount.Should().Be(Count);
        var found = await engine.Search.SearchAsync(Me, new SearchRequest { Query = "roof of the shed", K = 3 });
        found.Results.Should().NotBeEmpty();
        return embedder.Documents;
    }

    [Fact]
    public async Task Migrate_to_postgres_and_a_logical_backup_back_to_sqlite_embed_nothing_again()
    {
        var (source, embedder) = await SeededAsync();
        var url = await PostgresServer.NewDatabaseUrlAsync();
        await using (var from = SqliteMemoryStore.Open(source))
        await using (var to = StoreFactory.Open(url))
        {
            var report = await StoreMigration.RunAsync(from, to, new MigrationOptions());
            report.Ok.Should().BeTrue(string.Join("; ", report.Differences));
            report.Kinds[ExportKinds.Vector].Imported.Should().Be(Count, "one vector row per current memory version; the replaced version's row stays behind");
            (await to.CountVectorRowsAsync()).Should().Be(Count);
        }
        (await EmbeddedOnOpenAsync(url, embedder)).Should().Be(0, "the target reads the migrated vectors");

        var backup = Path.Combine(_dir.Path, "pg.backup");
        await using (var store = StoreFactory.Open(url))
        {
            var manifest = await LogicalBackup.CreateAsync(store, backup, "manual", TimeProvider.System);
            manifest.Counts["vectors"].Should().Be(Count);
        }
        var verified = StoreBackup.Verify(backup);
        verified.Ok.Should().BeTrue(string.Join("; ", verified.Problems));
        var restored = Folder("restored");
        await using (var target = SqliteMemoryStore.Open(restored))
        {
            var result = await LogicalBackup.RestoreAsync(backup, target);
            result.Ok.Should().BeTrue(string.Join("; ", result.Problems));
            (await target.CountVectorRowsAsync()).Should().Be(Count);
        }
        (await EmbeddedOnOpenAsync(restored, embedder)).Should().Be(0, "the restored store reads the backed-up vectors");

        // Without the vectors (as an export without --vectors), the same store embeds everything again: what the above saves.
        var plain = Folder("plain");
        await using (var from = SqliteMemoryStore.Open(source))
        await using (var to = SqliteMemoryStore.Open(plain))
        {
            var export = new MemoryStream();
            await StoreExport.WriteAsync(from, export, null, TimeProvider.System);
            export.Position = 0;
            (await StoreImport.ReadAsync(to, export, continueOnError: false)).Failed.Should().Be(0);
        }
        (await EmbeddedOnOpenAsync(plain, embedder)).Should().Be(Count);
    }

    [Fact]
    public async Task An_export_carries_vectors_only_when_asked_and_an_import_takes_each_once()
    {
        var (source, embedder) = await SeededAsync();
        await using var from = SqliteMemoryStore.Open(source);

        var plain = new MemoryStream();
        await StoreExport.WriteAsync(from, plain, null, TimeProvider.System);
        var plainLines = Encoding.UTF8.GetString(plain.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        plainLines.Should().NotContain(l => l.Contains("\"kind\":\"vector\"", StringComparison.Ordinal));
        JsonDocument.Parse(plainLines[0]).RootElement.GetProperty("counts").TryGetProperty("vectors", out _).Should().BeFalse();

        var withVectors = new MemoryStream();
        var summary = await StoreExport.WriteAsync(from, withVectors, null, TimeProvider.System, vectors: true);
        summary.Counts.Vectors.Should().Be(Count);
        var lines = Encoding.UTF8.GetString(withVectors.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var header = JsonDocument.Parse(lines[0]).RootElement;
        header.GetProperty("format_version").GetInt32().Should().Be(3);
        header.GetProperty("counts").GetProperty("vectors").GetInt64().Should().Be(Count);
        var vectorLines = lines.Where(l => l.Contains("\"kind\":\"vector\"", StringComparison.Ordinal)).ToList();
        vectorLines.Should().HaveCount(Count);
        lines[^Count..].Should().Equal(vectorLines, "vectors come last, after the memories they belong to");
        var first = JsonDocument.Parse(vectorLines[0]).RootElement;
        first.GetProperty("model").GetString().Should().Be("counting-v1");
        first.GetProperty("dims").GetInt32().Should().Be(16);
        Convert.FromBase64String(first.GetProperty("vectors").GetString()!).Should().HaveCount(16 * sizeof(float));

        var target = Folder("imported");
        await using (var to = SqliteMemoryStore.Open(target))
        {
            withVectors.Position = 0;
            var report = await StoreImport.ReadAsync(to, withVectors, continueOnError: false);
            report.Kinds[ExportKinds.Vector].Imported.Should().Be(Count);
            withVectors.Position = 0;
            var again = await StoreImport.ReadAsync(to, withVectors, continueOnError: false);
            again.Kinds[ExportKinds.Vector].Imported.Should().Be(0);
            again.Kinds[ExportKinds.Vector].Skipped.Should().Be(Count);
            (await to.CountVectorRowsAsync()).Should().Be(Count);

            // The imported rows are the source's, float for float.
            var keys = (await to.ListAsync(Me, new MemoryFilter(), 100, null)).Items.Select(m => new VectorKey(Me.Tenant, m.Id, m.Version)).ToList();
            var copied = await to.GetVectorsAsync(keys, "counting-v1");
            var original = await from.GetVectorsAsync(keys, "counting-v1");
            copied.Should().HaveCount(Count);
            copied.Select(v => (v.Key, v.Values)).Should().BeEquivalentTo(original.Select(v => (v.Key, v.Values)));
        }
        (await EmbeddedOnOpenAsync(target, embedder)).Should().Be(0);
    }

    [Theory]
    [InlineData("\"dims\":0", "dims")]
    [InlineData("\"dims\":99999", "dims")]
    [InlineData("\"count\":0", "count")]
    [InlineData("\"vectors\":\"AAAA\"", "holds 3 bytes; 1 x 4 float32 values are 16")]
    [InlineData("\"vectors\":\"not base64!\"", "base64")]
    [InlineData("\"vectors\":12", "base64")]
    [InlineData("NAN", "finite")]
    [InlineData("ZEROS", "all zeros")]
    public async Task A_bad_vector_record_is_refused_with_the_field_named(string change, string expected)
    {
        var good = new float[] { 0.5f, -0.25f, 1f, 0f };
        var values = change switch
        {
            "NAN" => [0.5f, float.NaN, 1f, 0f],
            "ZEROS" => new float[4],
            _ => good,
        };
        var fields = new Dictionary<string, string>
        {
            ["dims"] = "\"dims\":4",
            ["count"] = "\"count\":1",
            ["vectors"] = $"\"vectors\":\"{Convert.ToBase64String(SqliteMemoryStore.Encode(values))}\"",
        };
        var name = change.Split(':')[0].Trim('"');
        if (fields.ContainsKey(name))
        {
            fields[name] = change;
        }
        var record = $"{{\"kind\":\"vector\",\"tenant\":\"default\",\"memory_id\":\"mem_x\",\"version\":1,\"model\":\"m\",{string.Join(',', fields.Values)}}}";
        var file = "{\"kind\":\"header\",\"format\":\"engram-export\",\"format_version\":3,\"engram_version\":\"0\",\"schema_version\":11," +
            "\"created_at\":\"2026-01-01T00:00:00.000Z\",\"tenant\":null,\"last_seq\":0,\"counts\":{\"memories\":0,\"kv\":0,\"entities\":0,\"relations\":0,\"vectors\":1}}\n" +
            record + "\n";
        await using var store = SqliteMemoryStore.Open(Folder("bad"));
        var report = await StoreImport.ReadAsync(store, new MemoryStream(Encoding.UTF8.GetBytes(file)), continueOnError: true);
        report.Kinds[ExportKinds.Vector].Failed.Should().Be(1);
        report.Errors.Should().ContainSingle().Which.Message.Should().Contain(expected);
        (await store.CountVectorRowsAsync()).Should().Be(0);
    }

    [Fact]
    public async Task A_vector_of_a_memory_version_that_is_not_in_the_store_is_skipped()
    {
        var vector = Convert.ToBase64String(SqliteMemoryStore.Encode([0.5f, -0.25f, 1f, 0.125f]));
        var file = "{\"kind\":\"header\",\"format\":\"engram-export\",\"format_version\":3,\"engram_version\":\"0\",\"schema_version\":11," +
            "\"created_at\":\"2026-01-01T00:00:00.000Z\",\"tenant\":null,\"last_seq\":0,\"counts\":{\"memories\":0,\"kv\":0,\"entities\":0,\"relations\":0,\"vectors\":1}}\n" +
            $"{{\"kind\":\"vector\",\"tenant\":\"default\",\"memory_id\":\"mem_missing\",\"version\":1,\"model\":\"m\",\"dims\":4,\"count\":1,\"vectors\":\"{vector}\"}}\n";
        await using var store = SqliteMemoryStore.Open(Folder("orphan"));
        var report = await StoreImport.ReadAsync(store, new MemoryStream(Encoding.UTF8.GetBytes(file)), continueOnError: false);
        report.Kinds[ExportKinds.Vector].Skipped.Should().Be(1);
        report.Failed.Should().Be(0);
        (await store.CountVectorRowsAsync()).Should().Be(0, "no row may outlive (or precede) its memory");
    }
}
