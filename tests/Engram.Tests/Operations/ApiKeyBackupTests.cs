using System.IO.Compression;
using System.Text;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Core.Storage.Transfer;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>
/// A logical backup (what a PostgreSQL-backed server makes) carries the API keys with their hashes and the secret the
/// hashes are keyed with, so a restore gives users back working keys: before, a PostgreSQL store restored from its own
/// backup had no keys at all, and every client was locked out. The web UI's login keys travel the same way. An export
/// never carries either, and an import refuses them.
/// A real PostgreSQL server and real SQLite files.
/// </summary>
public sealed class ApiKeyBackupTests : IDisposable
{
    private static readonly Caller Me = Caller.Default("test");
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_logical_backup_restores_working_keys_on_postgres_and_sqlite_and_revoked_ones_stay_revoked()
    {
        var url = await PostgresServer.NewDatabaseUrlAsync();
        CreatedApiKey admin, writer, revoked;
        await using (var engine = EngramEngine.Open(url))
        {
            await engine.Memories.CreateAsync(Me, new NewMemory { Content = "kept by the backup" });
        }
        await using (var store = StoreFactory.Open(url))
        {
            await using var trail = new AuditTrail((IAuditLog)store);
            var keys = new ApiKeyService((IApiKeyStore)store, trail);
            admin = await keys.CreateAsync(new NewApiKey("default", Role.Admin, Name: "ops"), "test");
            writer = await keys.CreateAsync(new NewApiKey("acme", Role.Write, Name: "swarm"), "test");
            revoked = await keys.CreateAsync(new NewApiKey("acme", Role.Read), "test");
            await keys.RevokeAsync(revoked.Key.Id, null, "test");
            (await keys.AuthenticateAsync(writer.Secret)).Should().NotBeNull();
            // A web UI login key travels with the deployment; an instance's own position does not.
            await ((IStoreTransfer)store).SetMetaAsync(StoreMetaTransfer.UiDataProtectionPrefix + "key-1", "<key id=\"1\" />");
            await ((IStoreTransfer)store).SetMetaAsync("webhooks:state", "{}");
        }

        var backup = Path.Combine(_dir.Path, "pg.backup");
        await using (var store = StoreFactory.Open(url))
        {
            var manifest = await LogicalBackup.CreateAsync(store, backup, "manual", TimeProvider.System);
            manifest.Counts[ApiKeyTransfer.Kind].Should().Be(3);
            manifest.Counts[StoreMetaTransfer.Kind].Should().Be(1);
        }
        var verified = StoreBackup.Verify(backup);
        verified.Ok.Should().BeTrue(string.Join("; ", verified.Problems));

        foreach (var target in new[] { await PostgresServer.NewDatabaseUrlAsync(), Path.Combine(_dir.Path, "restored") })
        {
            await using var store = StoreFactory.Open(target);
            (await LogicalBackup.RestoreAsync(backup, store)).Ok.Should().BeTrue();
            await using var trail = new AuditTrail((IAuditLog)store);
            var keys = new ApiKeyService((IApiKeyStore)store, trail);
            var ops = await keys.AuthenticateAsync(admin.Secret);
            ops.Should().NotBeNull($"the admin key works on the restored {store.Kind} store");
            ops!.Role.Should().Be(Role.Admin);
            ops.Name.Should().Be("ops");
            var swarm = await keys.AuthenticateAsync(writer.Secret);
            swarm.Should().NotBeNull();
            (swarm!.Tenant, swarm.Role).Should().Be(("acme", Role.Write));
            (await keys.AuthenticateAsync(revoked.Secret)).Should().BeNull("a revoked key stays revoked");
            (await keys.ListAsync(null)).Should().HaveCount(3);
            (await store.ReadCountsAsync()).Memories.Values.Sum().Should().Be(1);
            var transfer = (IStoreTransfer)store;
            (await transfer.GetMetaAsync(StoreMetaTransfer.UiDataProtectionPrefix + "key-1")).Should().Be("<key id=\"1\" />", "users stay logged in");
            (await transfer.GetMetaAsync("webhooks:state")).Should().BeNull("the source's delivery position is not the target's");
        }
    }

    [Fact]
    public async Task A_backup_without_keys_has_no_key_line_and_an_import_refuses_one()
    {
        var source = Path.Combine(_dir.Path, "source");
        var backup = Path.Combine(_dir.Path, "plain.backup");
        await using (var engine = EngramEngine.OpenSqlite(source))
        {
            await engine.Memories.CreateAsync(Me, new NewMemory { Content = "no keys here" });
            (await LogicalBackup.CreateAsync(engine.Store, backup, "manual", TimeProvider.System)).Counts[ApiKeyTransfer.Kind].Should().Be(0);
        }
        StoreBackup.Verify(backup).Ok.Should().BeTrue();

        // The keys line of a backup with keys, put into an export and imported: refused, and no key appears.
        await using (var store = SqliteMemoryStore.Open(source))
        {
            await using var trail = new AuditTrail((IAuditLog)store);
            await new ApiKeyService(store, trail).CreateAsync(new NewApiKey("default", Role.Admin), "test");
            await LogicalBackup.CreateAsync(store, backup + "2", "manual", TimeProvider.System);
        }
        var keyLine = PayloadLines(backup + "2").Single(l => l.Contains("\"kind\":\"api_keys\"", StringComparison.Ordinal));
        var export = new MemoryStream();
        await using (var store = SqliteMemoryStore.Open(source))
        {
            await StoreExport.WriteAsync(store, export, null, TimeProvider.System);
        }
        export.Write(Encoding.UTF8.GetBytes(keyLine + "\n"));
        export.Position = 0;
        await using (var target = SqliteMemoryStore.Open(Path.Combine(_dir.Path, "imported")))
        {
            var report = await StoreImport.ReadAsync(target, export, continueOnError: true);
            report.Failed.Should().Be(1);
            report.Errors.Single().Message.Should().Contain("never imported");
            (await target.ListApiKeysAsync(null)).Should().BeEmpty();
        }
    }

    private static List<string> PayloadLines(string backup)
    {
        using var input = File.OpenRead(backup);
        BackupFile.ReadHead(input);
        using var reader = new StreamReader(new GZipStream(input, CompressionMode.Decompress));
        var lines = new List<string>();
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            lines.Add(line);
        }
        return lines;
    }
}
