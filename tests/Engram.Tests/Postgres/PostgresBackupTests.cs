using System.Net;
using Engram.Tests.Cli;
using Engram.Tests.Operations;
using Engram.Tests.Support;

namespace Engram.Tests.Postgres;

/// <summary>
/// Export, import, backup, verify and restore on a PostgreSQL store (issue 15): through the real CLI with
/// <c>--store</c>, and over HTTP on a PostgreSQL-backed server. A logical backup restores into an empty
/// database or a new folder, record for record; a damaged one is refused.
/// </summary>
public sealed class PostgresBackupTests
{
    private static async Task<List<string>> ExportAsync(string folder, params string[] location)
    {
        var file = Path.Combine(folder, $"export-{Guid.NewGuid():N}.jsonl");
        var result = await CliProcess.RunAsync(["export", .. location, "--out", file, "--json"]);
        result.ExitCode.Should().Be(0, result.ToString());
        return [.. File.ReadAllLines(file).Skip(1)];
    }

    [Fact]
    public async Task A_logical_backup_of_a_postgres_store_verifies_and_restores_into_postgres_and_sqlite_record_for_record()
    {
        using var temp = new TempDirectory();
        var url = await PostgresServer.NewDatabaseUrlAsync();
        var (server, _) = await ExportImportTests.SeedAsync(url);
        await server.DisposeAsync();
        var original = await ExportAsync(temp.Path, "--store", url);
        original.Should().HaveCount(22);

        var file = Path.Combine(temp.Path, "pg.engram-backup");
        var made = await CliProcess.RunAsync(["backup", "--store", url, "--out", file, "--json"]);
        made.ExitCode.Should().Be(0, made.ToString());
        var manifest = made.Json().GetProperty("manifest");
        manifest.GetProperty("content").GetString().Should().Be("engram-export");
        manifest.GetProperty("counts").GetProperty("memories").GetInt64().Should().Be(10);

        var verified = await CliProcess.RunAsync(["backup", "verify", file, "--json"]);
        verified.ExitCode.Should().Be(0, verified.ToString());
        verified.Json().GetProperty("ok").GetBoolean().Should().BeTrue();

        var empty = await PostgresServer.NewDatabaseUrlAsync();
        var intoPostgres = await CliProcess.RunAsync(["restore", file, "--store", empty, "--json"]);
        intoPostgres.ExitCode.Should().Be(0, intoPostgres.ToString());
        (await ExportAsync(temp.Path, "--store", empty)).Should().Equal(original);
        var again = await CliProcess.RunAsync(["restore", file, "--store", empty]);
        again.ExitCode.Should().Be(1, "the database holds data now: " + again);
        again.Stderr.Should().Contain("holds data already");

        var folder = Path.Combine(temp.Path, "restored");
        var intoFolder = await CliProcess.RunAsync(["restore", file, "--data", folder, "--json"]);
        intoFolder.ExitCode.Should().Be(0, intoFolder.ToString());
        (await ExportAsync(temp.Path, "--data", folder)).Should().Equal(original);

        // One byte changed in the payload: the checksum says so, and nothing is restored.
        var damaged = Path.Combine(temp.Path, "damaged.engram-backup");
        var bytes = await File.ReadAllBytesAsync(file);
        bytes[^10] ^= 0xFF;
        await File.WriteAllBytesAsync(damaged, bytes);
        var refused = await CliProcess.RunAsync(["backup", "verify", damaged]);
        refused.ExitCode.Should().Be(1, refused.ToString());
        refused.Stderr.Should().Contain("SHA-256");
        var untouched = await PostgresServer.NewDatabaseUrlAsync();
        (await CliProcess.RunAsync(["restore", damaged, "--store", untouched])).ExitCode.Should().Be(1);
        (await ExportAsync(temp.Path, "--store", untouched)).Should().BeEmpty();

        // An export of the PostgreSQL store imports into another one through --store.
        var exportFile = Path.Combine(temp.Path, "all.jsonl");
        (await CliProcess.RunAsync(["export", "--store", url, "--out", exportFile])).ExitCode.Should().Be(0);
        var imported = await CliProcess.RunAsync(["import", "--store", untouched, "--in", exportFile, "--json"]);
        imported.ExitCode.Should().Be(0, imported.ToString());
        (await ExportAsync(temp.Path, "--store", untouched)).Should().Equal(original);
    }

    [Fact]
    public async Task A_postgres_backed_server_exports_and_makes_verified_backups_over_http()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        var (server, key) = await ExportImportTests.SeedAsync(url);
        await using (server)
        {
            var admin = server.ClientWithKey(key);
            using var export = await admin.GetAsync("/v1/admin/export?all_tenants=true");
            export.StatusCode.Should().Be(HttpStatusCode.OK, await export.Content.ReadAsStringAsync());
            (await export.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().HaveCount(23);

            var created = await admin.PostAsync("/v1/admin/backups", null);
            created.StatusCode.Should().Be(HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
            var body = await created.JsonAsync();
            body.GetProperty("verified").GetString().Should().Be("ok");
            body.GetProperty("manifest").GetProperty("content").GetString().Should().Be("engram-export");
            var name = body.GetProperty("name").GetString()!;
            var verified = await admin.PostAsync($"/v1/admin/backups/{name}/verify", null);
            verified.StatusCode.Should().Be(HttpStatusCode.OK, await verified.Content.ReadAsStringAsync());
            (await verified.JsonAsync()).GetProperty("ok").GetBoolean().Should().BeTrue();
        }
    }
}
