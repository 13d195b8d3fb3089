using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Engram.Core.Operations;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;
using Xunit.Abstractions;

namespace Engram.Tests.Operations;

/// <summary>
/// The restore drill: a backup made on a real server while memories, key-value entries and graph entities keep
/// being written, restored into a new folder, holds exactly what was committed up to its manifest's sequence
/// number (every acknowledged write at or below it, with its content; none above it), and the restored store
/// opens, rebuilds its indexes and serves.
/// </summary>
public sealed class BackupDrillTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Backup_during_concurrent_writes_restores_exactly_what_was_committed_up_to_the_manifest_seq()
    {
        using var data = new TempDirectory();
        using var restored = new TempDirectory();
        var memories = new ConcurrentBag<(string Id, string Content)>();
        var keys = new ConcurrentBag<(string Key, string Value)>();
        var entities = new ConcurrentBag<string>();
        string backupFile;
        BackupManifest manifest;
        int ackedDuringBackup;
        await using (var server = await EngramServer.StartAsync(data.Path))
        {
            // A store large enough that the copy takes a while: 40 batches of 50 memories.
            for (var b = 0; b < 40; b++)
            {
                var items = Enumerable.Range(0, 50).Select(i => new { content = $"seed memory {b}-{i} about orchids and the billing system {Guid.NewGuid():N}" });
                (await server.PostJsonAsync("/v1/memories/batch", JsonSerializer.Serialize(new { items }))).StatusCode.Should().Be(HttpStatusCode.OK);
            }
            using var stop = new CancellationTokenSource();
            var writers = new[]
            {
                Task.Run(async () =>
                {
                    for (var n = 0; !stop.IsCancellationRequested; n++)
                    {
                        var content = $"drill memory {n} {Guid.NewGuid():N}";
                        var response = await server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content }));
                        response.StatusCode.Should().Be(HttpStatusCode.Created);
                        memories.Add(((await response.JsonAsync()).GetProperty("id").GetString()!, content));
                    }
                }),
                Task.Run(async () =>
                {
                    for (var n = 0; !stop.IsCancellationRequested; n++)
                    {
                        var (key, value) = ($"drill:{n}", $"value-{n}-{Guid.NewGuid():N}");
                        var response = await server.Client.PutAsync("/v1/kv/" + key,
                            new StringContent(JsonSerializer.Serialize(new { value, ttl_seconds = 0 }), System.Text.Encoding.UTF8, "application/json"));
                        response.StatusCode.Should().Be(HttpStatusCode.Created);
                        keys.Add((key, value));
                    }
                }),
                Task.Run(async () =>
                {
                    for (var n = 0; !stop.IsCancellationRequested; n++)
                    {
                        var name = $"DrillEntity{n}";
                        var response = await server.PostJsonAsync("/v1/graph/entities",
                            JsonSerializer.Serialize(new { entities = new[] { new { name, entity_type = "drill", observations = new[] { $"seen {n}" } } } }));
                        response.StatusCode.Should().Be(HttpStatusCode.OK);
                        entities.Add(name);
                    }
                }),
            };
            while (memories.Count < 20 || keys.Count < 20 || entities.Count < 20)
            {
                await Task.Delay(20);
            }
            var before = memories.Count + keys.Count + entities.Count;
            var created = await server.Client.PostAsync("/v1/admin/backups", null);
            created.StatusCode.Should().Be(HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
            ackedDuringBackup = memories.Count + keys.Count + entities.Count - before;
            var body = await created.JsonAsync();
            body.GetProperty("verified").GetString().Should().Be("ok");
            var name = body.GetProperty("name").GetString()!;
            // Writes go on after the snapshot too.
            var atBackup = memories.Count;
            while (memories.Count < atBackup + 20)
            {
                await Task.Delay(20);
            }
            await stop.CancelAsync();
            await Task.WhenAll(writers);
            backupFile = Path.Combine(data.Path, "backups", name);
            manifest = BackupFile.ReadManifest(backupFile);
            body.GetProperty("manifest").GetProperty("last_seq").GetInt64().Should().Be(manifest.LastSeq);
        }
        output.WriteLine($"backup at seq {manifest.LastSeq}; {ackedDuringBackup} writes acknowledged while it ran; " +
            $"{memories.Count} memories, {keys.Count} keys, {entities.Count} entities written in all");

        var verification = StoreBackup.Restore(backupFile, restored.Path, force: false);
        verification.Ok.Should().BeTrue(string.Join("; ", verification.Problems));
        var m = manifest.LastSeq;
        var source = Path.Combine(data.Path, SqliteMemoryStore.FileName);
        var copy = Path.Combine(restored.Path, SqliteMemoryStore.FileName);
        Rows(source, "SELECT max(seq) FROM changelog").Single().Should().NotBe(m.ToString(System.Globalization.CultureInfo.InvariantCulture), "writes went on past the snapshot");

        // The logs and histories (the full content of every change) up to the manifest's seq are exactly the source's, and nothing beyond.
        foreach (var table in new[] { "changelog", "memory_history", "kv_history", "graph_history" })
        {
            TableRows(copy, table, "1 ORDER BY seq, rowid").Should().Equal(TableRows(source, table, $"seq <= {m} ORDER BY seq, rowid"), table);
        }
        foreach (var (table, order) in new[] { ("memories", "rid"), ("kv_entries", "tenant, key") })
        {
            TableRows(copy, table, $"1 ORDER BY {order}").Should().Equal(TableRows(source, table, $"seq <= {m} ORDER BY {order}"), table);
        }
        Rows(copy, "SELECT count(*) FROM memories").Single().Should().Be(manifest.Counts["memories"].ToString(System.Globalization.CultureInfo.InvariantCulture));

        // Every acknowledged write: present with its content when its seq is at or below the manifest's, absent above.
        await using var again = await EngramServer.StartAsync(restored.Path);
        var (present, absent) = (0, 0);
        foreach (var (id, content) in memories)
        {
            var seq = long.Parse(Rows(source, $"SELECT seq FROM memory_history WHERE memory_id = '{id}' AND version = 1").Single(), System.Globalization.CultureInfo.InvariantCulture);
            var response = await again.Client.GetAsync($"/v1/memories/{id}");
            if (seq <= m)
            {
                response.StatusCode.Should().Be(HttpStatusCode.OK, $"memory {id} (seq {seq}) was committed before the snapshot");
                (await response.JsonAsync()).GetProperty("content").GetString().Should().Be(content);
                present++;
            }
            else
            {
                response.StatusCode.Should().Be(HttpStatusCode.NotFound, $"memory {id} (seq {seq}) came after the snapshot");
                absent++;
            }
        }
        foreach (var (key, value) in keys)
        {
            var seq = long.Parse(Rows(source, $"SELECT seq FROM kv_history WHERE value = '\"{value}\"'").Single(), System.Globalization.CultureInfo.InvariantCulture);
            var response = await again.Client.GetAsync($"/v1/kv/{key}");
            if (seq <= m)
            {
                response.StatusCode.Should().Be(HttpStatusCode.OK, $"key {key} (seq {seq}) was committed before the snapshot");
                (await response.JsonAsync()).GetProperty("value").GetString().Should().Be(value);
            }
            else
            {
                response.StatusCode.Should().Be(HttpStatusCode.NotFound, $"key {key} (seq {seq}) came after the snapshot");
            }
        }
        foreach (var name in entities)
        {
            var seq = long.Parse(Rows(source, $"SELECT min(seq) FROM graph_history WHERE entity_name = '{name}'").Single(), System.Globalization.CultureInfo.InvariantCulture);
            var nodes = await (await again.Client.GetAsync($"/v1/graph/nodes?names={name}")).JsonAsync();
            nodes.GetProperty("entities").GetArrayLength().Should().Be(seq <= m ? 1 : 0, $"entity {name} has seq {seq}");
        }
        present.Should().BeGreaterThan(0);
        absent.Should().BeGreaterThan(0);

        // The restored store rebuilt its indexes (no snapshot came with the backup) and searches.
        var found = await again.SearchAsync(new { query = "orchids billing", k = 5 });
        found.Should().HaveCount(5);
        var stats = await (await again.Client.GetAsync("/v1/stats")).JsonAsync();
        stats.GetProperty("index").GetProperty("documents").GetInt64().Should().Be(manifest.Counts["memories"]);
        stats.GetProperty("index").GetProperty("applied_seq").GetInt64().Should().BeGreaterThanOrEqualTo(m);
    }

    [Fact]
    public async Task A_flipped_byte_or_a_truncated_file_is_detected_by_verify_and_refused_by_restore()
    {
        using var data = new TempDirectory();
        using var files = new TempDirectory();
        await using (var server = await EngramServer.StartAsync(data.Path))
        {
            for (var i = 0; i < 50; i++)
            {
                (await server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = $"memory {i} {Guid.NewGuid():N}" }))).EnsureSuccessStatusCode();
            }
        }
        var good = Path.Combine(files.Path, "good" + BackupFile.Extension);
        var manifest = StoreBackup.Create(Path.Combine(data.Path, SqliteMemoryStore.FileName), good, BackupKinds.Manual, TimeProvider.System);
        manifest.Counts["memories"].Should().Be(50);
        StoreBackup.Verify(good).Ok.Should().BeTrue();
        var bytes = await File.ReadAllBytesAsync(good);
        var headLength = bytes.Length - (int)manifest.PayloadBytes;

        var cases = new (string Name, byte[] Content, string Problem)[]
        {
            ("payload-flip", Flip(bytes, headLength + (int)manifest.PayloadBytes / 2), "SHA-256"),
            ("manifest-flip", Flip(bytes, headLength - 10), "manifest"),
            ("truncated", bytes[..(bytes.Length - 100)], "truncated"),
            ("head-only", bytes[..20], "too short"),
            ("empty", [], "too short"),
        };
        foreach (var (name, content, problem) in cases)
        {
            var path = Path.Combine(files.Path, name + BackupFile.Extension);
            await File.WriteAllBytesAsync(path, content);
            var verification = StoreBackup.Verify(path);
            verification.Ok.Should().BeFalse(name);
            string.Join("; ", verification.Problems).Should().Contain(problem, name);

            var target = Path.Combine(files.Path, "restore-" + name);
            StoreBackup.Restore(path, target, force: false).Ok.Should().BeFalse(name);
            File.Exists(Path.Combine(target, SqliteMemoryStore.FileName)).Should().BeFalse($"nothing is restored from {name}");
            Directory.GetFiles(target).Should().BeEmpty("no temporary file is left behind");
        }
    }

    private static byte[] Flip(byte[] bytes, int at)
    {
        var copy = (byte[])bytes.Clone();
        copy[at] ^= 0x5A;
        return copy;
    }

    /// <summary>The rows of <paramref name="table"/> matching <paramref name="where"/>, each as one string of every column, quoted by SQLite.</summary>
    private static List<string> TableRows(string database, string table, string where)
    {
        var columns = Rows(database, $"SELECT name FROM pragma_table_info('{table}')");
        return Rows(database, $"SELECT {string.Join(" || '|' || ", columns.Select(c => $"quote({c})"))} FROM {table} WHERE {where}");
    }

    /// <summary>The first column of every row of a query, as text.</summary>
    private static List<string> Rows(string database, string sql)
    {
        using var connection = SqliteConnection.Open(database, readOnly: true, create: false);
        using var statement = connection.Prepare(sql);
        var rows = new List<string>();
        while (statement.Step())
        {
            rows.Add(statement.GetText(0));
        }
        return rows;
    }
}
