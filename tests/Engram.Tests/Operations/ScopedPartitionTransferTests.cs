using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Transfer;
using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>
/// A scoped key's key-value entries and graph live in a partition of its tenant (<c>tenant␟user_id=…</c>, see
/// <see cref="ScopeGuard.Partition"/>), and they are the tenant's data: the tenant's export (HTTP and CLI) holds them, an
/// export of every tenant imports them back (the scoped key reads them there), migrate and a logical backup carry them,
/// a tenant whose name a LIKE would read as a pattern (<c>acm_</c>) pulls in nothing of another, and an import refuses a
/// tenant the store could not have made. Both stores, a real server, the real CLI.
/// </summary>
public sealed class ScopedPartitionTransferTests
{
    private const char Sep = ScopeGuard.PartitionSeparator;
    private const string Alice = "acme\u001fuser_id=alice";
    private const string BobAtX = "acme\u001fuser_id=bob\u001fagent_id=x";

    private static string[] At(StoreLocation location) => location.Backend == Backend.Sqlite ? ["--data", location.Value] : ["--store", location.Value];

    private static async Task<HttpClient> KeyAsync(EngramServer server, string tenant, Role role, KeyScope? scope = null) =>
        server.ClientWithKey(await server.CreateKeyAsync(tenant, role, scope));

    private static async Task SendAsync(HttpClient client, string method, string path, object body)
    {
        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path) { Content = JsonContent.Create(body) });
        response.IsSuccessStatusCode.Should().BeTrue($"{method} {path}: {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>
    /// In acme: alice's key (user_id=alice) writes two keys (one of three parts, stored with its partition inserted, one
    /// set twice for a history) and a graph of two entities and a relation; bob's (user_id=bob, agent_id=x) a key; the
    /// unscoped admin a key and a memory. In acm_ (which the LIKE pattern 'acm_␟%' would read as acme's partitions' prefix)
    /// and acme-eu, an alice key writes a key and an entity of its own.
    /// </summary>
    private static async Task SeedAsync(EngramServer server)
    {
        var alice = await KeyAsync(server, "acme", Role.Write, new KeyScope("alice", null));
        await SendAsync(alice, "PUT", "/v1/kv/pref", new { value = new { theme = "dark" } });
        await SendAsync(alice, "PUT", "/v1/kv/pref", new { value = new { theme = "light" } });
        await SendAsync(alice, "PUT", "/v1/kv/app:session:1", new { value = "open" });
        await SendAsync(alice, "POST", "/v1/graph/entities", new
        {
            entities = new[]
            {
                new { name = "Alice", entity_type = "person", observations = new[] { "likes tea" } },
                new { name = "Initech", entity_type = "org", observations = Array.Empty<string>() },
            },
        });
        await SendAsync(alice, "POST", "/v1/graph/relations", new { relations = new[] { new { from = "Alice", to = "Initech", relation_type = "works_at" } } });
        var bob = await KeyAsync(server, "acme", Role.Write, new KeyScope("bob", "x"));
        await SendAsync(bob, "PUT", "/v1/kv/pref", new { value = "bob's" });
        var admin = await KeyAsync(server, "acme", Role.Admin);
        await SendAsync(admin, "PUT", "/v1/kv/pref", new { value = "tenant-wide" });
        await SendAsync(admin, "POST", "/v1/memories", new { content = "Alice likes tea", user_id = "alice" });
        foreach (var neighbour in new[] { "acm_", "acme-eu" })
        {
            var other = await KeyAsync(server, neighbour, Role.Write, new KeyScope("alice", null));
            await SendAsync(other, "PUT", "/v1/kv/pref", new { value = "zzforeign " + neighbour });
            await SendAsync(other, "POST", "/v1/graph/entities", new { entities = new[] { new { name = "Zzforeign " + neighbour, entity_type = "thing" } } });
        }
    }

    private static List<JsonNode> Parse(IEnumerable<string> lines) => [.. lines.Select(l => JsonNode.Parse(l)!)];

    private static string TenantOf(JsonNode record) => record["tenant"]!.GetValue<string>();

    private static string KindOf(JsonNode record) => record["kind"]!.GetValue<string>();

    private static async Task<string[]> AdminExportAsync(EngramServer server, string tenant)
    {
        var admin = await KeyAsync(server, tenant, Role.Admin);
        return (await admin.GetStringAsync("/v1/admin/export")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private static async Task<List<string>> CliExportAsync(string folder, StoreLocation location, params string[] more)
    {
        var file = Path.Combine(folder, $"export-{Guid.NewGuid():N}.jsonl");
        var result = await CliProcess.RunAsync(["export", .. At(location), "--out", file, .. more]);
        result.ExitCode.Should().Be(0, result.ToString());
        return [.. File.ReadAllLines(file).Skip(1)];
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task A_tenants_export_holds_its_partitions_and_they_survive_import_migrate_and_backup(Backend backend)
    {
        using var temp = new TempDirectory();
        using var source = await StoreLocation.CreateAsync(backend);
        string[] acme, acmUnderscore;
        await using (var server = await EngramServer.StartAsync(source.Value))
        {
            await SeedAsync(server);
            acme = await AdminExportAsync(server, "acme");
            acmUnderscore = await AdminExportAsync(server, "acm_");
        }

        // GET /v1/admin/export of acme: the tenant and its two partitions, with every key, the graph and its history.
        var header = JsonNode.Parse(acme[0])!;
        var records = Parse(acme.Skip(1));
        records.Select(TenantOf).Distinct().Should().BeEquivalentTo(["acme", Alice, BobAtX]);
        header["counts"]!["kv"]!.GetValue<long>().Should().Be(4, "the header counts what follows");
        header["counts"]!["entities"]!.GetValue<long>().Should().Be(2);
        header["counts"]!["relations"]!.GetValue<long>().Should().Be(1);
        var kv = records.Where(r => KindOf(r) == "kv").Select(r => (TenantOf(r), r["key"]!.GetValue<string>())).ToList();
        // A key of three parts is stored with the caller's tenant inserted, in a partition too (KvService's convention).
        kv.Should().BeEquivalentTo([("acme", "pref"), (Alice, "pref"), (Alice, "app:acme:session:1"), (BobAtX, "pref")]);
        records.Single(r => KindOf(r) == "kv" && TenantOf(r) == Alice && r["key"]!.GetValue<string>() == "pref")["history"]!.AsArray().Should().HaveCount(2);
        records.Where(r => KindOf(r) == "entity").Select(r => (TenantOf(r), r["name"]!.GetValue<string>())).Should().BeEquivalentTo([(Alice, "Alice"), (Alice, "Initech")]);
        records.Single(r => KindOf(r) == "relation")["relation_type"]!.GetValue<string>().Should().Be("works_at");
        TenantOf(records.Single(r => KindOf(r) == "relation")).Should().Be(Alice);
        TenantOf(records.Single(r => KindOf(r) == "memory")).Should().Be("acme", "memories stay in the tenant, with scope fields");
        string.Join("\n", acme).Should().NotContain("zzforeign", "acm_ and acme-eu are other tenants");

        // acm_ is not a pattern: its export holds its own partition and nothing of acme's.
        Parse(acmUnderscore.Skip(1)).Select(TenantOf).Distinct().Should().Equal("acm_" + Sep + "user_id=alice");
        string.Join("\n", acmUnderscore).Should().Contain("zzforeign acm_").And.NotContain("zzforeign acme-eu").And.NotContain("light");

        // engram export --tenant acme writes the same records; a tenant that could be a pattern is no tenant name.
        var cli = await CliExportAsync(temp.Path, source, "--tenant", "acme");
        cli.Should().Equal(acme.Skip(1));
        var pattern = await CliProcess.RunAsync(["export", .. At(source), "--tenant", "acm%", "--out", Path.Combine(temp.Path, "x.jsonl")]);
        pattern.ExitCode.Should().Be(1, pattern.ToString());
        pattern.Stderr.Should().Contain("--tenant must be 1-64 characters");

        // An export of every tenant imports into an empty store of the same backend, record for record.
        var everything = await CliExportAsync(temp.Path, source);
        everything.Select(l => TenantOf(JsonNode.Parse(l)!)).Should().Contain([Alice, BobAtX, "acm_" + Sep + "user_id=alice", "acme-eu" + Sep + "user_id=alice"]);
        var file = Path.Combine(temp.Path, "all.jsonl");
        (await CliProcess.RunAsync(["export", .. At(source), "--out", file])).ExitCode.Should().Be(0);
        using var copy = await StoreLocation.CreateAsync(backend);
        var imported = await CliProcess.RunAsync(["import", .. At(copy), "--in", file, "--json"]);
        imported.ExitCode.Should().Be(0, imported.ToString());
        imported.Json().GetProperty("failed").GetInt64().Should().Be(0);
        (await CliExportAsync(temp.Path, copy)).Should().Equal(everything);

        // A key with alice's scope reads her keys and graph on the imported store; the tenant's unscoped key reads its own.
        await using (var server = await EngramServer.StartAsync(copy.Value))
        {
            var alice = await KeyAsync(server, "acme", Role.Read, new KeyScope("alice", null));
            (await (await alice.GetAsync("/v1/kv/pref")).JsonAsync()).GetProperty("value").GetProperty("theme").GetString().Should().Be("light");
            (await (await alice.GetAsync("/v1/kv/app:session:1")).JsonAsync()).GetProperty("value").GetString().Should().Be("open");
            var graph = await (await alice.GetAsync("/v1/graph")).JsonAsync();
            graph.GetProperty("entities").EnumerateArray().Select(e => e.GetProperty("name").GetString()).Should().BeEquivalentTo(["Alice", "Initech"]);
            graph.GetProperty("relations").EnumerateArray().Single().GetProperty("relation_type").GetString().Should().Be("works_at");
            var tenantWide = await KeyAsync(server, "acme", Role.Read);
            (await (await tenantWide.GetAsync("/v1/kv/pref")).JsonAsync()).GetProperty("value").GetString().Should().Be("tenant-wide");
            var bob = await KeyAsync(server, "acme", Role.Read, new KeyScope("bob", "x"));
            (await (await bob.GetAsync("/v1/kv/pref")).JsonAsync()).GetProperty("value").GetString().Should().Be("bob's");
        }

        if (backend == Backend.Sqlite)
        {
            // engram migrate to PostgreSQL: partitions copied, and counted per store tenant alike on both sides.
            using var migrated = await StoreLocation.CreateAsync(Backend.Postgres);
            var run = await CliProcess.RunAsync(["migrate", "--from", source.Value, "--to", migrated.Value, "--json"]);
            run.ExitCode.Should().Be(0, run.ToString());
            var report = run.Json();
            report.GetProperty("ok").GetBoolean().Should().BeTrue(run.ToString());
            report.GetProperty("refused").GetInt64().Should().Be(0);
            var counts = report.GetProperty("target_counts").GetProperty(Alice);
            counts.GetProperty("kv_entries").GetInt64().Should().Be(2);
            counts.GetProperty("kv_history").GetInt64().Should().Be(3);
            counts.GetProperty("entities").GetInt64().Should().Be(2);
            counts.GetProperty("relations").GetInt64().Should().Be(1);
            (await CliExportAsync(temp.Path, migrated)).Should().Equal(everything);

            // Its summary counts tenants, not store tenants: acme, acm_ and acme-eu, with acme's two partitions and the others' one each.
            var text = await CliProcess.RunAsync(["migrate", "--from", source.Value, "--to", Path.Combine(temp.Path, "sqlite-copy")]);
            text.ExitCode.Should().Be(0, text.ToString());
            text.Stdout.Should().Contain("Counts match for 3 tenants (4 scoped partitions among them): ");
        }
        else
        {
            // A logical backup of the PostgreSQL store verifies and restores into a SQLite folder with the partitions.
            var backup = Path.Combine(temp.Path, "pg.engram-backup");
            var made = await CliProcess.RunAsync(["backup", .. At(source), "--out", backup, "--json"]);
            made.ExitCode.Should().Be(0, made.ToString());
            var verified = await CliProcess.RunAsync(["backup", "verify", backup, "--json"]);
            verified.ExitCode.Should().Be(0, verified.ToString());
            using var restored = await StoreLocation.CreateAsync(Backend.Sqlite);
            var restore = await CliProcess.RunAsync(["restore", backup, "--data", restored.Value, "--json"]);
            restore.ExitCode.Should().Be(0, restore.ToString());
            (await CliExportAsync(temp.Path, restored)).Should().Equal(everything);
        }
    }

    [Fact]
    public async Task On_a_postgres_database_with_a_linguistic_collation_a_tenants_export_still_holds_its_partitions()
    {
        // Production databases mostly take a linguistic collation (the test server's is C), where control characters are
        // ignored: there 'acme␟user_id=alice' sorts after 'acme ', so only a comparison by code point finds the partitions.
        var postgres = await PostgresServer.GetAsync();
        var name = $"engram_icu_{Environment.ProcessId}_{Guid.NewGuid():N}";
        await using (var connection = new Npgsql.NpgsqlConnection(postgres.ConnectionString("postgres") + ";Pooling=false"))
        {
            await connection.OpenAsync();
            await using var create = new Npgsql.NpgsqlCommand(
                $"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'", connection);
            await create.ExecuteNonQueryAsync();
        }
        try
        {
            await using (var connection = new Npgsql.NpgsqlConnection(postgres.ConnectionString(name) + ";Pooling=false"))
            {
                await connection.OpenAsync();
                await using var premise = new Npgsql.NpgsqlCommand("SELECT ('acme' || chr(31) || 'user_id=alice') < 'acme '", connection);
                (await premise.ExecuteScalarAsync()).Should().Be(false, "the database's collation does not order by code point");
            }
            await using var server = await EngramServer.StartAsync(postgres.Url(name));
            await SeedAsync(server);
            var records = Parse((await AdminExportAsync(server, "acme")).Skip(1));
            records.Select(TenantOf).Distinct().Should().BeEquivalentTo(["acme", Alice, BobAtX]);
            records.Count(r => KindOf(r) == "entity").Should().Be(2);
            Parse((await AdminExportAsync(server, "acm_")).Skip(1)).Select(TenantOf).Distinct().Should().Equal("acm_" + Sep + "user_id=alice");
        }
        finally
        {
            Npgsql.NpgsqlConnection.ClearAllPools();
            postgres.DropDatabase(name);
        }
    }

    private const string Time = "2026-01-01T00:00:00.000Z";

    // The tenant and key go in as JSON strings (U+001F escaped, as an export writes it).
    private static string KvLine(string tenant, string key) =>
        $$"""{"kind":"kv","tenant":{{JsonSerializer.Serialize(tenant)}},"key":{{JsonSerializer.Serialize(key)}},"value":"v","expires_at":null,"version":1""" +
        $$""","created_at":"{{Time}}","updated_at":"{{Time}}","history":[]}""";

    private static string MemoryLine(string tenant) =>
        $$"""{"kind":"memory","tenant":{{JsonSerializer.Serialize(tenant)}},"id":"01JQ0000000000000000000001","content":"a memory","importance":0.5""" +
        ""","content_hash":"h","type":"fact","tier":"long_term","valence":null,"tags":[],"metadata":{},"entities":[],"user_id":"alice","agent_id":null""" +
        $$""","session_id":null,"namespace":null,"source":null,"created_at":"{{Time}}","updated_at":"{{Time}}","last_accessed_at":null,"access_count":0""" +
        ""","expires_at":null,"valid_from":null,"valid_to":null,"version":1""" +
        ",\"history\":[{\"event\":\"created\",\"actor\":\"test\",\"at\":\"" + Time + "\",\"version\":1,\"changes\":{}}]}";

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task An_import_takes_the_tenants_the_store_makes_and_refuses_a_forged_one_naming_the_field(Backend backend)
    {
        using var location = await StoreLocation.CreateAsync(backend);
        string[] lines =
        [
            """{"kind":"header","format":"engram-export","format_version":3,"counts":{}}""",
            KvLine(Alice, "ok"),                                        // 2: alice's partition
            KvLine(BobAtX, "ok"),                                       // 3: both parts, in PartitionOf's order
            KvLine(ScopeGuard.InternalPartition("default", "telegram-bot"), "offset:1"), // 4: the bot's reserved partition
            KvLine("acme" + Sep + "bogus", "forged"),                   // 5: no such part
            KvLine("acme" + Sep + "user_id=", "forged"),                // 6: an empty scope value
            KvLine("acme" + Sep + "agent_id=x" + Sep + "user_id=bob", "forged"), // 7: not the order PartitionOf writes
            KvLine("acme" + Sep + "user_id=a\u0001b", "forged"),        // 8: a control character in the value
            KvLine("ac me" + Sep + "user_id=alice", "forged"),          // 9: not a tenant before the separator
            KvLine("acme" + Sep + "user_id=alice" + Sep + "user_id=bob", "forged"), // 10: a part twice
            MemoryLine(Alice),                                          // 11: memories are kept under their tenant
            MemoryLine("acme"),                                         // 12
            KvLine(Alice, "app:acme:session:1"),                        // 13: a key of three parts, as alice's key stores it
            KvLine(Alice, $"app:{Alice}:session:1"),                    // 14: with the partition inserted, no key could name it
        ];
        ImportReport report;
        await using (var store = location.Open())
        {
            using var input = new MemoryStream(Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n"));
            report = await StoreImport.ReadAsync((IStoreTransfer)store, input, continueOnError: true);

            var kv = (IKeyValueStore)store;
            (await kv.GetKvAsync(new Caller(Alice, "test"), "ok")).Should().NotBeNull();
            (await kv.GetKvAsync(new Caller(BobAtX, "test"), "ok")).Should().NotBeNull();
            var partition = ScopeGuard.Enter(new Caller("acme", "test", Role.Read, new KeyScope("alice", null)), Role.Read, "read").Partition();
            (await kv.GetKvAsync(partition, "ok")).Should().NotBeNull("a key with alice's scope reaches the imported partition");
            (await kv.GetKvAsync(partition, KvKeys.ToStored("acme", "app:session:1"))).Should().NotBeNull();
            (await kv.GetKvAsync(new Caller("acme" + Sep + "bogus", "test"), "forged")).Should().BeNull("nothing of a refused record is stored");
        }
        report.Kinds["kv"].Imported.Should().Be(4);
        report.Kinds["memory"].Imported.Should().Be(1);
        report.Errors.Select(e => e.Line).Should().Equal(5, 6, 7, 8, 9, 10, 11, 14);
        report.Errors[^1].Message.Should().Contain("key").And.Contain("control characters");
        foreach (var error in report.Errors.Where(e => e.Kind == "kv" && e.Line < 14))
        {
            error.Message.Should().StartWith("tenant must be a tenant (1-64 characters").And.Contain("scope partitions");
        }
        report.Errors.Single(e => e.Kind == "memory").Message.Should().Contain("'tenant' names the scope partition 'acme\u241fuser_id=alice'")
            .And.Contain("holds only key-value entries and the graph");
    }

    [Fact]
    public void A_store_tenant_is_a_tenant_or_a_partition_as_PartitionOf_makes_it()
    {
        KeyScope[] scopes = [new("alice", null), new(null, "x"), new("bob", "x"), new("a=b,c", "日本 語"), new("u/../v", null)];
        foreach (var scope in scopes)
        {
            ScopeGuard.IsStoreTenant(ScopeGuard.PartitionOf("acme", scope)).Should().BeTrue(scope.ToString());
        }
        foreach (var tenant in new[] { "default", "acme", "a_b", "a.b-c", new string('t', 64) })
        {
            ScopeGuard.IsStoreTenant(tenant).Should().BeTrue(tenant);
        }
        ScopeGuard.IsStoreTenant(ScopeGuard.InternalPartition("default", "telegram-bot")).Should().BeTrue();
        string?[] refused =
        [
            null, "", "a b", "acm%", new string('t', 65), "acme" + Sep, "acme" + Sep + "user_id=alice" + Sep, Sep + "user_id=alice",
            "acme" + Sep + "bogus", "acme" + Sep + "user_id", "acme" + Sep + "agent_id=", "acme" + Sep + "agent_id=x" + Sep + "user_id=bob",
            "acme" + Sep + "user_id=a" + Sep + "agent_id=b" + Sep + "agent_id=c", "acme" + Sep + "engram=", "acme" + Sep + "engram=a b",
            "acme" + Sep + "engram=bot" + Sep + "user_id=alice", "acme" + Sep + "user_id=alice" + Sep + "engram=bot", "acme" + Sep + "user_id=a\u007fb",
        ];
        foreach (var name in refused)
        {
            ScopeGuard.IsStoreTenant(name).Should().BeFalse(name?.Replace(Sep, '\u241f'));
        }
        ScopeGuard.BelongsTo(Alice, "acme").Should().BeTrue();
        ScopeGuard.BelongsTo("acme", "acme").Should().BeTrue();
        ScopeGuard.BelongsTo("acme-eu", "acme").Should().BeFalse();
        ScopeGuard.BelongsTo(Alice, "acm_").Should().BeFalse();
    }
}
