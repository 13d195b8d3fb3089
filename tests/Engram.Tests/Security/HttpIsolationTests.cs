using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Tests.Support;
using FluentAssertions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using Xunit.Abstractions;

namespace Engram.Tests.Security;

/// <summary>
/// Tenant and scope isolation over the real server with real API keys: three tenants, each with an
/// admin, an unscoped writer, writers scoped to user alice, user bob and agent agentx, and a read key
/// scoped to alice. Every record carries a token naming its owner; every response every caller gets
/// is scanned for the tokens that caller must not see, every guessed id of another tenant or scope
/// must be a 404, writes aimed at them must change nothing, and every route of the server must have
/// been called (a route added later fails this test until it is added here).
/// </summary>
public sealed class HttpIsolationTests(ITestOutputHelper output)
{
    private static readonly string[] Tenants = ["t1", "t2", "t3"];

    /// <summary>Memory scopes: "all" is unscoped; agentx is an agent_id scope, the others user_id scopes.</summary>
    private static readonly string[] Scopes = ["all", "alice", "bob", "agentx"];

    private readonly List<(string Method, string Path)> _sent = [];
    private int _checkedResponses;

    private sealed record Actor(string Name, string Tenant, string Scope, Role Role, HttpClient Client);

    private static string MemoryToken(string tenant, string scope) => $"zzm{tenant}{scope}zz";

    private static string KvToken(string tenant, string partition) => $"zzk{tenant}{partition}zz";

    private static string GraphToken(string tenant, string partition) => $"zzg{tenant}{partition}zz";

    private static string KeyNameToken(string tenant, string name) => $"zzn{tenant}{name}zz";

    private static KeyScope? KeyScopeOf(string scope) => scope switch
    {
        "all" => null,
        "agentx" => new KeyScope(null, "agentx"),
        _ => new KeyScope(scope, null),
    };

    private static object ScopeFields(string scope) => scope switch
    {
        "all" => new { },
        "agentx" => new { agent_id = "agentx" },
        _ => (object)new { user_id = scope },
    };

    /// <summary>A memory of (tenant, scope) is visible to callers of the tenant that are unscoped or have that scope.</summary>
    private static bool SeesMemory(Actor a, string tenant, string scope) => a.Tenant == tenant && (a.Scope == "all" || a.Scope == scope);

    /// <summary>Key-value entries and graph records live in the partition of the caller that wrote them.</summary>
    private static bool SeesPartition(Actor a, string tenant, string partition) => a.Tenant == tenant && a.Scope == partition;

    [Fact]
    public async Task No_caller_sees_changes_counts_or_deletes_anything_of_another_tenant_or_scope()
    {
        // The chat routes (issue 16) need a model: this one answers with everything it was sent, so a memory of another
        // tenant or scope put in a prompt shows up in the answer, where the token scan finds it.
        await using var model = await FakeChatModel.StartAsync();
        model.Responder = request => FakeReply.Text(request.AllText);
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Llm.BaseUrl = model.BaseUrl;
            o.Llm.Model = "fake";
        });
        var actors = new List<Actor>();
        foreach (var tenant in Tenants)
        {
            foreach (var (name, scope, role) in new[] { ("admin", "all", Role.Admin), ("writer", "all", Role.Write), ("alice", "alice", Role.Write),
                ("bob", "bob", Role.Write), ("agentx", "agentx", Role.Write), ("reader", "alice", Role.Read) })
            {
                var key = await server.CreateKeyAsync(tenant, role, KeyScopeOf(scope), KeyNameToken(tenant, name));
                actors.Add(new Actor($"{tenant}/{name}", tenant, scope, role, server.ClientWithKey(key)));
            }
        }

        // Seed: the unscoped writer writes one memory per scope; every scoped writer writes one more without
        // naming its scope (the key stamps it). Every writer (one per partition) sets key-value entries and a graph.
        var memoryIds = new List<(string Id, string Tenant, string Scope)>();
        foreach (var tenant in Tenants)
        {
            var writer = actors.Single(a => a.Name == $"{tenant}/writer");
            foreach (var scope in Scopes)
            {
                var body = Merge(ScopeFields(scope), new { content = $"orchid note {MemoryToken(tenant, scope)}", entities = new[] { "Shared" } });
                memoryIds.Add((await CreateMemoryAsync(writer, body), tenant, scope));
            }
            foreach (var scoped in actors.Where(a => a.Tenant == tenant && a.Scope != "all" && a.Role == Role.Write))
            {
                var id = await CreateMemoryAsync(scoped, new { content = $"orchid own {MemoryToken(tenant, scoped.Scope)}", entities = new[] { "Shared" } });
                memoryIds.Add((id, tenant, scoped.Scope));
            }
            foreach (var partitionWriter in actors.Where(a => a.Tenant == tenant && a.Role == Role.Write))
            {
                var token = KvToken(tenant, partitionWriter.Scope);
                await ExpectAsync(partitionWriter, "PUT", $"/v1/kv/k/{token}", new { value = new { v = token }, ttl_seconds = 0 }, 201);
                await ExpectAsync(partitionWriter, "PUT", "/v1/kv/common", new { value = token, ttl_seconds = 0 }, 201);
                await ExpectAsync(partitionWriter, "POST", "/v1/kv/mset", new { items = new[] { new { key = $"m/{token}", value = (object)token } } }, 200);
                await ExpectAsync(partitionWriter, "POST", $"/v1/kv/n/{token}/incr", new { by = 2 }, 200);
                var g = GraphToken(tenant, partitionWriter.Scope);
                await ExpectAsync(partitionWriter, "POST", "/v1/graph/entities", new { entities = new[] { new { name = g, entity_type = "thing", observations = new[] { g } }, new { name = "Shared", entity_type = "thing", observations = new[] { "shared " + g } } } }, 200);
                await ExpectAsync(partitionWriter, "POST", "/v1/graph/relations", new { relations = new[] { new { from = g, to = "Shared", relation_type = "part_of" } } }, 200);
                await ExpectAsync(partitionWriter, "POST", "/v1/graph/observations", new { observations = new[] { new { entity_name = g, contents = new[] { "more " + g } } } }, 200);
            }
        }
        var kvTokens = Tenants.SelectMany(t => Scopes.Select(s => (Tenant: t, Partition: s))).ToList();
        var before = await SnapshotAsync(actors);

        foreach (var a in actors)
        {
            await ReadPassAsync(a, memoryIds, kvTokens);
        }
        foreach (var a in actors)
        {
            await WritePassAsync(a, actors, memoryIds, kvTokens);
        }
        (await SnapshotAsync(actors)).Should().Equal(before, "no caller changed anything outside its own tenant and scope");

        // Bulk deletes: a scoped key deletes only its scope, never another tenant's or scope's memories.
        var t1Alice = actors.Single(a => a.Name == "t1/alice");
        await ExpectAsync(actors.Single(a => a.Name == "t1/bob"), "DELETE", "/v1/memories?user_id=alice&confirm=true", null, 403);
        await ExpectAsync(actors.Single(a => a.Name == "t1/reader"), "DELETE", "/v1/memories?confirm=true", null, 403);
        using (var deleted = await SendAsync(t1Alice, "DELETE", "/v1/memories?confirm=true", null))
        {
            deleted.StatusCode.Should().Be(HttpStatusCode.OK);
            JsonDocument.Parse(await deleted.Content.ReadAsStringAsync()).RootElement.GetProperty("deleted").GetInt32().Should().Be(2);
        }
        await ExpectAsync(actors.Single(a => a.Name == "t2/writer"), "DELETE", "/v1/memories?user_id=alice&confirm=true", null, 200);
        var after = await SnapshotAsync(actors);
        after["t1/admin memories"].Should().Be(before["t1/admin memories"] - 2);
        after["t2/admin memories"].Should().Be(before["t2/admin memories"] - 2);
        after["t3/admin memories"].Should().Be(before["t3/admin memories"], "bulk deletes never cross a tenant");
        after["t1/bob memories"].Should().Be(before["t1/bob memories"]);
        after["t3/alice memories"].Should().Be(before["t3/alice memories"]);

        // The same keys over MCP (/mcp): every tool answer is scanned like a REST body (McpPassAsync).
        var remaining = memoryIds.Where(m => !(m.Tenant is "t1" or "t2" && m.Scope == "alice")).ToList();
        foreach (var a in actors)
        {
            await McpPassAsync(a, server, remaining);
        }

        // Every route of the server was exercised by some caller above.
        var routes = Routes(server);
        var covered = _sent.Select(r => Match(routes, r.Method, r.Path)).OfType<string>().ToHashSet();
        routes.Select(r => r.Name).Except(covered).Should().BeEmpty("every route must be part of the isolation matrix");
        output.WriteLine($"{Tenants.Length} tenants x {actors.Count / Tenants.Length} keys (admin, writer, alice, bob, agentx, read-only alice) x {routes.Count} routes; " +
            $"{_sent.Count} requests, {_checkedResponses} response bodies scanned for {Tenants.Length * (Scopes.Length * 3 + 1)} owner tokens");
    }

    private async Task ReadPassAsync(Actor a, List<(string Id, string Tenant, string Scope)> memoryIds, List<(string Tenant, string Partition)> partitions)
    {
        var visible = memoryIds.Where(m => SeesMemory(a, m.Tenant, m.Scope)).Select(m => m.Id).ToHashSet();
        await ReadAsync(a, "/health", 200);
        await ReadAsync(a, "/health/live", 200);
        await ReadAsync(a, "/health/ready", 200);
        await ReadAsync(a, "/openapi/v1.json", 200);
        var stats = await ReadAsync(a, "/v1/stats", 200);
        stats.GetProperty("memories").GetProperty("total").GetInt64().Should().Be(visible.Count, $"{a.Name} counts only what it sees");

        // Scope counts come from the index, confined like a search: they add up to what the caller sees.
        var scopes = (await ReadAsync(a, "/v1/scopes", 200)).GetProperty("items").EnumerateArray().ToList();
        scopes.Where(s => s.GetProperty("field").GetString() == "user_id").Sum(s => s.GetProperty("memories").GetInt32())
            .Should().BeLessThanOrEqualTo(visible.Count, $"{a.Name} counts only the scopes of what it sees");

        var list = await ReadAsync(a, "/v1/memories?limit=100", 200);
        list.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Should().BeEquivalentTo(visible, $"{a.Name} lists what it sees");
        // A filter on another kind of scope field only narrows (agentx's user_id=alice finds alice's memories of agentx): allowed.
        await ReadAsync(a, "/v1/memories?user_id=alice", a.Scope is "bob" ? 403 : 200);
        var search = await SendCheckedAsync(a, "POST", "/v1/search", new { query = "orchid note own", k = 100 }, 200);
        search.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString())
            .Should().BeSubsetOf(visible, $"{a.Name} finds only what it sees");
        foreach (var (id, tenant, scope) in memoryIds)
        {
            var status = SeesMemory(a, tenant, scope) ? 200 : 404;
            await ReadAsync(a, $"/v1/memories/{id}", status);
            await ReadAsync(a, $"/v1/memories/{id}/history", status);
            await ReadAsync(a, $"/v1/memories/{id}/links", status); // reflections (issue 16)
        }
        await ReadAsync(a, "/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV", 404); // no such job (ExtractionTests: jobs are tenant- and scope-confined)
        (await ReadAsync(a, "/v1/memories?duplicate_of=*", 200)).GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetString())
            .Should().BeSubsetOf(visible);

        await Mem0ReadPassAsync(a, memoryIds, visible);

        var own = KvToken(a.Tenant, a.Scope);
        var keys = await ReadAsync(a, "/v1/kv?pattern=*&limit=1000", 200);
        keys.GetProperty("items").EnumerateArray().Select(k => k.GetProperty("key").GetString())
            .Should().BeEquivalentTo([$"k/{own}", $"m/{own}", $"n/{own}", "common"], $"{a.Name} lists its own partition");
        (await ReadAsync(a, "/v1/kv/common", 200)).GetProperty("value").GetString().Should().Be(own);
        await ReadAsync(a, "/v1/kv/common?history=true", 200);
        foreach (var (tenant, partition) in partitions)
        {
            await ReadAsync(a, $"/v1/kv/k/{KvToken(tenant, partition)}", SeesPartition(a, tenant, partition) ? 200 : 404);
        }
        await SendCheckedAsync(a, "POST", "/v1/kv/mget", new { keys = partitions.Select(p => $"k/{KvToken(p.Tenant, p.Partition)}").ToArray() }, 200);

        var graph = await ReadAsync(a, "/v1/graph", 200);
        graph.GetProperty("entities").EnumerateArray().Select(e => e.GetProperty("name").GetString())
            .Should().BeEquivalentTo([GraphToken(a.Tenant, a.Scope), "Shared"], $"{a.Name} reads its own graph");
        await ReadAsync(a, "/v1/graph/search?query=zz", 200);
        await ReadAsync(a, "/v1/graph/search?query=shared", 200);
        await ReadAsync(a, "/v1/graph/nodes?" + string.Join('&', partitions.Select(p => "names=" + GraphToken(p.Tenant, p.Partition))), 200);
        foreach (var (tenant, partition) in partitions)
        {
            var g = GraphToken(tenant, partition);
            var status = SeesPartition(a, tenant, partition) ? 200 : 404;
            await ReadAsync(a, $"/v1/graph/entities/{g}/neighbors", status);
            await ReadAsync(a, $"/v1/graph/entities/{g}/history", status);
            await ReadAsync(a, $"/v1/graph/path?from={g}&to=Shared", status);
        }
        // Chat with memory (issue 16): the prompt holds only what the caller sees (the fake model echoes it into the answer).
        var chat = await SendCheckedAsync(a, "POST", "/v1/chat", new { messages = new[] { new { role = "user", content = "orchid note own" } }, k = 100 }, 200);
        chat.GetProperty("memories").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Should().BeSubsetOf(visible, $"{a.Name} chats with what it sees");
        await SendCheckedAsync(a, "POST", "/v1/chat", new { messages = new[] { new { role = "user", content = "orchid note own" } }, k = 100, user_id = "alice", lens = "valence" },
            a.Scope is "bob" ? 403 : 200);
        var proxied = await SendCheckedAsync(a, "POST", "/v1/chat/completions", new { model = "any", messages = new[] { new { role = "user", content = "orchid note own" } } }, 200);
        proxied.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString().Should().Contain("orchid", $"{a.Name} gets its memories through the proxy");
        await SendCheckedAsync(a, "POST", "/v1/chat/completions", new { messages = new[] { new { role = "user", content = "orchid note own" } }, user = "bob" }, 200);
        await ReadAsync(a, "/v1/models", 200);
        // The Telegram webhook (issue 19): public (Telegram sends no key), and 404 on a server whose bot is not in webhook mode.
        await SendCheckedAsync(a, "POST", "/v1/telegram/webhook", new { update_id = 1 }, 404);

        var linked = await ReadAsync(a, "/v1/graph/entities/Shared/memories", 200);
        linked.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Should().BeEquivalentTo(visible);

        var admin = a.Role == Role.Admin ? 200 : 403;
        await ReadAsync(a, "/v1/admin/keys", admin);
        await ReadAsync(a, "/v1/admin/audit?limit=1000", admin);
        // /metrics: store-wide figures (counts, sizes, no tenant's content), so admins only; Prometheus text, not JSON.
        if (a.Role == Role.Admin)
        {
            using var metrics = await SendAsync(a, "GET", "/metrics", null);
            var text = await metrics.Content.ReadAsStringAsync();
            ((int)metrics.StatusCode).Should().Be(200, text);
            AssertNoForeignTokens(a, text, "GET /metrics", "/metrics");
        }
        else
        {
            await ExpectAsync(a, "GET", "/metrics", null, 403);
        }
        // Server-wide operations (issue 14): admins only; they reveal no tenant's content (largest_tenants names tenants: admins operate the server).
        await ReadAsync(a, "/v1/admin/memory", admin);
        await ReadAsync(a, "/v1/admin/readonly", admin);
        await ExportPassAsync(a, memoryIds);
        await UiPassAsync(a, memoryIds, partitions);
    }

    /// <summary>
    /// The web UI (issue 18) with the same keys in the header: every page is scanned like a REST body (HTML, so not parsed),
    /// hidden memories and graph entities are 404s, admin pages need an unscoped admin; every form post without the page's
    /// antiforgery token is refused (415 without a form body) after the role check (403 below the route's role).
    /// </summary>
    private async Task UiPassAsync(Actor a, List<(string Id, string Tenant, string Scope)> memoryIds, List<(string Tenant, string Partition)> partitions)
    {
        var admin = a.Role == Role.Admin ? 200 : 403;
        var list = await UiAsync(a, "GET", "/ui/memories?limit=100", 200);
        foreach (var (id, tenant, scope) in memoryIds)
        {
            var status = SeesMemory(a, tenant, scope) ? 200 : 404;
            var page = await UiAsync(a, "GET", $"/ui/memories/{id}", status);
            if (status == 200)
            {
                list.Should().Contain(MemoryToken(tenant, scope), $"{a.Name} sees its memories in the UI listing");
                page.Should().Contain(MemoryToken(tenant, scope));
            }
        }
        foreach (var path in new[] { "/ui", "/ui/login", "/ui/search?q=orchid+note+own&k=100", "/ui/graph", "/ui/kv?pattern=*", "/ui/kv?key=common", "/ui/scopes" })
        {
            await UiAsync(a, "GET", path, 200);
        }
        (await UiAsync(a, "GET", "/ui/kv?key=common", 200)).Should().Contain(KvToken(a.Tenant, a.Scope));
        foreach (var (tenant, partition) in partitions)
        {
            await UiAsync(a, "GET", $"/ui/graph?entity={GraphToken(tenant, partition)}", SeesPartition(a, tenant, partition) ? 200 : 404);
        }
        await UiAsync(a, "GET", "/ui/assets/app.0000000000000000.css", 404);
        await UiAsync(a, "GET", "/ui/admin", admin);
        await ExportPassAsync(a, memoryIds, "/ui/admin/export");
        var someId = memoryIds[0].Id;
        foreach (var (path, role) in new[]
        {
            ("/ui/login", (Role?)null), ("/ui/logout", Role.Read), ("/ui/memories", Role.Write), ("/ui/memories/bulk-delete", Role.Write),
            ($"/ui/memories/{someId}", Role.Write), ($"/ui/memories/{someId}/delete", Role.Write), ("/ui/admin/keys", Role.Admin),
            ("/ui/admin/keys/absent/revoke", Role.Admin), ("/ui/admin/keys/absent/rotate", Role.Admin), ("/ui/admin/readonly", Role.Admin),
            ("/ui/admin/backups", Role.Admin), ("/ui/admin/backups/absent/verify", Role.Admin),
        })
        {
            await UiAsync(a, "POST", path, role is null || a.Role >= role ? 415 : 403);
        }
    }

    private async Task<string> UiAsync(Actor a, string method, string path, int status)
    {
        using var response = await SendAsync(a, method, path, null);
        var text = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).Should().Be(status, $"{a.Name} {method} {path} answered {text}");
        AssertNoForeignTokens(a, text, $"{method} {path}", path);
        _checkedResponses++;
        return text;
    }

    /// <summary>
    /// The export (JSON Lines, not one document): an unscoped admin key gets its tenant's records, its scoped keys'
    /// partitions (key-value entries, graphs) included, since they are the tenant's data, and nothing of another tenant
    /// (scanned like every body); every other key is refused. The same at the web UI's <c>/ui/admin/export</c>.
    /// </summary>
    private async Task ExportPassAsync(Actor a, List<(string Id, string Tenant, string Scope)> memoryIds, string path = "/v1/admin/export")
    {
        using var response = await SendAsync(a, "GET", path, null);
        var text = await response.Content.ReadAsStringAsync();
        var allowed = a.Role == Role.Admin && a.Scope == "all";
        ((int)response.StatusCode).Should().Be(allowed ? 200 : 403, $"{a.Name} GET {path} answered {text}");
        if (!allowed)
        {
            AssertNoForeignTokens(a, text, "GET " + path, path);
        }
        _checkedResponses++;
        if (allowed)
        {
            foreach (var tenant in Tenants.Where(t => t != a.Tenant))
            {
                foreach (var token in new[] { "zzm", "zzk", "zzg", "zzn" })
                {
                    text.Should().NotContain(token + tenant, $"{a.Name}'s export holds nothing of {tenant}");
                }
            }
            foreach (var scope in Scopes)
            {
                text.Should().Contain(KvToken(a.Tenant, scope), $"{a.Name}'s export holds the {scope} partition's keys")
                    .And.Contain(GraphToken(a.Tenant, scope), "and its graph");
            }
            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            lines[0].GetProperty("tenant").GetString().Should().Be(a.Tenant);
            lines.Skip(1).Select(l => l.GetProperty("tenant").GetString()!)
                .Should().OnlyContain(t => t == a.Tenant || t.StartsWith(a.Tenant + ScopeGuard.PartitionSeparator, StringComparison.Ordinal));
            lines.Where(l => l.GetProperty("kind").GetString() == "memory").Select(l => l.GetProperty("id").GetString())
                .Should().Contain(memoryIds.Where(m => m.Tenant == a.Tenant).Select(m => m.Id));
            text.Should().NotContain("egm_", "an export never holds API keys");
        }
    }

    private async Task WritePassAsync(Actor a, List<Actor> actors, List<(string Id, string Tenant, string Scope)> memoryIds, List<(string Tenant, string Partition)> partitions)
    {
        var writes = a.Role >= Role.Write;
        var hidden = writes ? 404 : 403;
        foreach (var (id, tenant, scope) in memoryIds.Where(m => !SeesMemory(a, m.Tenant, m.Scope)))
        {
            await ExpectAsync(a, "PATCH", $"/v1/memories/{id}", new { importance = 0.9, content = "overwritten" }, hidden);
            await ExpectAsync(a, "DELETE", $"/v1/memories/{id}", null, hidden);
        }
        foreach (var (tenant, partition) in partitions.Where(p => !SeesPartition(a, p.Tenant, p.Partition)))
        {
            var k = KvToken(tenant, partition);
            await ExpectAsync(a, "POST", $"/v1/kv/k/{k}/expire", new { ttl_seconds = 1 }, hidden);
            await ExpectAsync(a, "DELETE", $"/v1/kv/k/{k}", null, hidden);
            await ExpectAsync(a, "POST", "/v1/kv/cleanup", new { pattern = $"*{k}*" }, writes ? 200 : 403, body => (writes ? body.GetProperty("deleted").GetInt32() : 0).Should().Be(0));
            var g = GraphToken(tenant, partition);
            await ExpectAsync(a, "POST", "/v1/graph/observations", new { observations = new[] { new { entity_name = g, contents = new[] { "planted" } } } }, hidden);
            await ExpectAsync(a, "POST", "/v1/graph/observations/delete", new { deletions = new[] { new { entity_name = g, observations = new[] { g } } } }, writes ? 200 : 403);
            await ExpectAsync(a, "POST", "/v1/graph/relations/delete", new { relations = new[] { new { from = g, to = "Shared", relation_type = "part_of" } } }, writes ? 200 : 403);
            await ExpectAsync(a, "POST", "/v1/graph/entities/delete", new { entity_names = new[] { g } }, writes ? 200 : 403);
        }

        await Mem0WritePassAsync(a, memoryIds);

        // Naming another scope in a write or a filter is refused for scoped keys (and every write for read keys).
        static bool SameField(string x, string y) => (x == "agentx") == (y == "agentx");
        foreach (var scope in Scopes.Where(s => s != "all" && a.Scope != "all" && s != a.Scope && SameField(s, a.Scope)))
        {
            await ExpectAsync(a, "POST", "/v1/memories", Merge(ScopeFields(scope), new { content = "planted " + scope }), 403);
            await ExpectAsync(a, "GET", "/v1/memories?" + (scope == "agentx" ? "agent_id=agentx" : "user_id=" + scope), null, 403);
            await ExpectAsync(a, "POST", "/v1/search", new { query = "orchid", filters = ScopeFields(scope) }, 403);
            if (writes)
            {
                // A batch with one item outside the scope is refused whole: nothing of it is stored.
                await ExpectAsync(a, "POST", "/v1/memories/batch", new { items = new[] { new { content = "planted batch ok" }, Merge(ScopeFields(scope), new { content = "planted batch " + scope }) } }, 403);
            }
        }
        // Reflections (issue 16): a dry run over the caller's own scopes (writes nothing); read keys are refused.
        await ExpectAsync(a, "POST", "/v1/reflect", new { duplicates_only = true, dry_run = true }, writes ? 200 : 403);
        foreach (var scope in Scopes.Where(s => s != "all" && a.Scope != "all" && s != a.Scope && SameField(s, a.Scope)))
        {
            await ExpectAsync(a, "POST", "/v1/reflect", Merge(ScopeFields(scope), new { duplicates_only = true, dry_run = true }), 403);
        }
        if (!writes)
        {
            await ExpectAsync(a, "POST", "/v1/memories", new { content = "planted by a reader" }, 403);
            await ExpectAsync(a, "PUT", "/v1/kv/planted", new { value = 1 }, 403);
        }

        // Admin routes: other tenants' keys are as unknown as missing ones; non-admins are refused.
        var foreignKey = await ForeignKeyIdAsync(actors, a.Tenant);
        await ExpectAsync(a, "DELETE", $"/v1/admin/keys/{foreignKey}", null, a.Role == Role.Admin ? 404 : 403);
        await ExpectAsync(a, "POST", $"/v1/admin/keys/{foreignKey}/rotate", null, a.Role == Role.Admin ? 404 : 403);
        await ExpectAsync(a, "POST", "/v1/admin/cache/cleanup", null, a.Role == Role.Admin ? 200 : 403);
        await ExpectAsync(a, "POST", "/v1/admin/gc", null, a.Role == Role.Admin ? 200 : 403);
        await ExpectAsync(a, "POST", "/v1/admin/readonly", new { enabled = false }, a.Role == Role.Admin ? 200 : 403);
        // Alerts and memory-event webhooks (issue 19) are server-wide: admin keys only (no alert or delivery exists here).
        await ReadAsync(a, "/v1/admin/alerts", a.Role == Role.Admin ? 200 : 403);
        await ReadAsync(a, "/v1/admin/webhooks/deliveries?state=dead", a.Role == Role.Admin ? 200 : 403);
        await ExpectAsync(a, "POST", "/v1/admin/webhooks/deliveries/absent-delivery/retry", null, a.Role == Role.Admin ? 404 : 403);
        // Backups (issue 14) are server-wide: admin keys only. The admin makes one and verifies it.
        await ReadAsync(a, "/v1/admin/backups", a.Role == Role.Admin ? 200 : 403);
        if (a.Role == Role.Admin)
        {
            var backup = await SendCheckedAsync(a, "POST", "/v1/admin/backups", null, 201);
            await SendCheckedAsync(a, "POST", $"/v1/admin/backups/{backup.GetProperty("name").GetString()}/verify", null, 200);
        }
        else
        {
            await ExpectAsync(a, "POST", "/v1/admin/backups", null, 403);
            await ExpectAsync(a, "POST", "/v1/admin/backups/engram-absent.engram-backup/verify", null, 403);
        }
        if (a.Role != Role.Admin)
        {
            await ExpectAsync(a, "POST", "/v1/admin/keys", new { role = "admin" }, 403);
            await ExpectAsync(a, "GET", "/v1/memories", null, 403, extraHeader: ("X-Engram-Tenant", "t3"));
        }
    }

    /// <summary>
    /// One caller over MCP with its own key, through the official client: it reads every memory by id (a
    /// foreign one is "not found", exactly as a missing id), may not write outside its scope or with a read
    /// key, and every listing tool the server offers answers only what the caller sees. Every HTTP exchange
    /// is recorded for the route check and its body scanned for foreign tokens (<see cref="McpRecorder"/>).
    /// </summary>
    private async Task McpPassAsync(Actor a, EngramServer server, List<(string Id, string Tenant, string Scope)> memoryIds)
    {
        var key = a.Client.DefaultRequestHeaders.Authorization!.Parameter!;
        var http = new HttpClient(new McpRecorder(this, a)) { BaseAddress = server.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var transport = new ModelContextProtocol.Client.HttpClientTransport(new ModelContextProtocol.Client.HttpClientTransportOptions
        {
            Endpoint = new Uri(server.BaseAddress, "/mcp"),
            TransportMode = ModelContextProtocol.Client.HttpTransportMode.StreamableHttp,
        }, http, ownsHttpClient: true);
        await using var client = await ModelContextProtocol.Client.McpClient.CreateAsync(transport);
        var tools = (await client.ListToolsAsync()).Select(t => t.Name).ToHashSet();

        foreach (var (id, tenant, scope) in memoryIds)
        {
            var got = await client.CallAsync("memory_get", $$"""{"id":"{{id}}"}""");
            if (SeesMemory(a, tenant, scope))
            {
                got.Structured().GetProperty("content").GetString().Should().Contain(MemoryToken(tenant, scope), $"{a.Name} reads its own memory over MCP");
            }
            else
            {
                got.IsError.Should().BeTrue($"{a.Name} must not read {tenant}/{scope} over MCP");
                got.Text().Should().StartWith("not found");
            }
        }
        if (a.Role < Role.Write)
        {
            (await client.CallAsync("memory_store", """{"content":"planted by a reader over mcp"}""")).Text().Should().StartWith("forbidden");
        }
        foreach (var other in Scopes.Where(s => s is not "all" and not "agentx" && a.Scope is not "all" and not "agentx" && s != a.Scope))
        {
            var planted = await client.CallAsync("memory_store", $$"""{"content":"planted over mcp","user_id":"{{other}}"}""");
            planted.IsError.Should().BeTrue($"{a.Name} may not write into {other}'s scope over MCP");
            planted.Text().Should().StartWith("forbidden");
        }
        // The listing tools the server offers (added beside memory_get): answers scanned by the recorder.
        foreach (var (tool, arguments) in new[]
        {
            ("memory_search", """{"query":"orchid note own","k":100}"""), ("memory_list", "{}"), ("memory_stats", "{}"),
            ("read_graph", "{}"), ("search_nodes", """{"query":"zz"}"""), ("kv_list", "{}"), ("kv_get", """{"key":"common"}"""),
        })
        {
            if (tools.Contains(tool))
            {
                var result = await client.CallAsync(tool, arguments);
                result.IsError.Should().NotBe(true, $"{a.Name} {tool}: {result.Text()}");
            }
        }
    }

    /// <summary>Records every MCP HTTP exchange of one caller as a sent request and scans its answer for foreign tokens.</summary>
    private sealed class McpRecorder(HttpIsolationTests test, Actor actor) : DelegatingHandler(new HttpClientHandler())
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var sent = request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken);
            test._sent.Add((request.Method.Method, request.RequestUri!.AbsolutePath));
            var response = await base.SendAsync(request, cancellationToken);
            await response.Content.LoadIntoBufferAsync(cancellationToken);
            AssertNoForeignTokens(actor, await response.Content.ReadAsStringAsync(cancellationToken), $"MCP {request.Method} {request.RequestUri.AbsolutePath}", sent);
            test._checkedResponses++;
            return response;
        }
    }

    /// <summary>What each caller sees (memories, keys, graph entities): equal before and after the write pass.</summary>
    private async Task<Dictionary<string, int>> SnapshotAsync(List<Actor> actors)
    {
        var counts = new Dictionary<string, int>();
        foreach (var a in actors)
        {
            counts[$"{a.Name} memories"] = (await ReadAsync(a, "/v1/memories?limit=1000", 200)).GetProperty("items").GetArrayLength();
            counts[$"{a.Name} kv"] = (await ReadAsync(a, "/v1/kv?limit=1000", 200)).GetProperty("items").GetArrayLength();
            var graph = await ReadAsync(a, "/v1/graph", 200);
            counts[$"{a.Name} graph"] = graph.GetProperty("entities").EnumerateArray().Sum(e => 1 + e.GetProperty("observations").GetArrayLength())
                + graph.GetProperty("relations").GetArrayLength();
        }
        return counts;
    }

    /// <summary>
    /// The mem0-compatible API (issue 17) with the same keys: every listing, search and entity list holds only what the
    /// caller sees, ids are UUIDs of the same memories, and a foreign memory is as unknown as a missing one.
    /// </summary>
    private async Task Mem0ReadPassAsync(Actor a, List<(string Id, string Tenant, string Scope)> memoryIds, HashSet<string> visible)
    {
        var visibleUuids = visible.Select(Ulid.ToUuid).ToHashSet();
        (await ReadAsync(a, "/v1/ping/", 200)).GetProperty("org_id").GetString().Should().Be(a.Tenant);
        var page = await SendCheckedAsync(a, "POST", "/v3/memories/?page=1&page_size=1000", new { filters = new { } }, 200);
        page.GetProperty("count").GetInt32().Should().Be(visible.Count, $"{a.Name} counts what it sees through the mem0 API");
        page.GetProperty("results").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Should().BeEquivalentTo(visibleUuids);
        var listed = await SendCheckedAsync(a, "POST", "/v2/memories/", new { }, 200);
        listed.GetProperty("results").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Should().BeEquivalentTo(visibleUuids);
        foreach (var path in new[] { "/v3/memories/search/", "/v2/memories/search/", "/v1/memories/search/" })
        {
            var found = await SendCheckedAsync(a, "POST", path, new { query = "orchid note own", top_k = 100, filters = new { OR = new object[] { new { user_id = "*" }, new { agent_id = "*" }, new { NOT = new { user_id = "*" } } } } }, 200);
            found.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Should().BeSubsetOf(visibleUuids, $"{a.Name} finds only what it sees ({path})");
        }
        var entities = await ReadAsync(a, "/v1/entities/", 200);
        entities.GetProperty("results").EnumerateArray().Select(e => e.GetProperty("name").GetString())
            .Should().BeSubsetOf(a.Scope == "all" ? ["alice", "bob", "agentx"] : [a.Scope]);
        foreach (var (id, tenant, scope) in memoryIds)
        {
            var status = SeesMemory(a, tenant, scope) ? 200 : 404;
            await ReadAsync(a, $"/v1/memories/{Ulid.ToUuid(id)}/", status);
            await ReadAsync(a, $"/v1/memories/{Ulid.ToUuid(id)}/history/", status);
        }
        await ReadAsync(a, $"/v1/event/{Guid.NewGuid()}/", 404);
    }

    private async Task Mem0WritePassAsync(Actor a, List<(string Id, string Tenant, string Scope)> memoryIds)
    {
        var writes = a.Role >= Role.Write;
        var hidden = writes ? 404 : 403;
        foreach (var (id, _, _) in memoryIds.Where(m => !SeesMemory(a, m.Tenant, m.Scope)))
        {
            var uuid = Ulid.ToUuid(id);
            await ExpectAsync(a, "PUT", $"/v1/memories/{uuid}/", new { text = "overwritten" }, hidden);
            await ExpectAsync(a, "DELETE", $"/v1/memories/{uuid}/", null, hidden);
            await ExpectAsync(a, "PUT", "/v1/batch/", new { memories = new[] { new { memory_id = uuid, text = "overwritten" } } }, hidden);
            await ExpectAsync(a, "DELETE", "/v1/batch/", new { memories = new[] { new { memory_id = uuid } } }, hidden);
        }
        // Deleting an entity or everything of a kind reaches only the caller's tenant and scope: one nobody has.
        // (an agent-scoped key may narrow by user: it reaches only its agent's memories, none of them zz-nobody's)
        var scopedElsewhere = a.Scope is "alice" or "bob";
        await ExpectAsync(a, "DELETE", "/v2/entities/user/zz-nobody/", null, writes && !scopedElsewhere ? 200 : 403);
        await ExpectAsync(a, "DELETE", "/v1/entities/user/zz-nobody/", null, writes && !scopedElsewhere ? 200 : 403);
        await ExpectAsync(a, "DELETE", "/v1/memories/?user_id=zz-nobody", null, writes && !scopedElsewhere ? 200 : 403);
        if (!writes)
        {
            await ExpectAsync(a, "POST", "/v3/memories/add/", new { messages = "planted by a reader", infer = false }, 403);
            await ExpectAsync(a, "POST", "/v1/memories/", new { messages = new[] { new { role = "user", content = "planted by a reader" } }, infer = false }, 403);
        }
        foreach (var scope in Scopes.Where(s => s != "all" && a.Scope != "all" && s != a.Scope && ((s == "agentx") == (a.Scope == "agentx"))))
        {
            var field = scope == "agentx" ? "agent_id" : "user_id";
            var body = new Dictionary<string, object> { ["messages"] = "planted " + scope, ["infer"] = false, [field] = scope };
            await ExpectAsync(a, "POST", "/v3/memories/add/", body, 403);
            await ExpectAsync(a, "POST", "/v3/memories/search/", new { query = "orchid", filters = new Dictionary<string, string> { [field] = scope } }, 403);
            await ExpectAsync(a, "POST", "/v3/memories/", new { filters = new Dictionary<string, string> { [field] = scope } }, 403);
        }
    }

    private async Task<string> ForeignKeyIdAsync(List<Actor> actors, string tenant)
    {
        var other = actors.First(a => a.Tenant != tenant && a.Role == Role.Admin);
        var keys = await ReadAsync(other, "/v1/admin/keys", 200);
        return keys.GetProperty("items")[0].GetProperty("id").GetString()!;
    }

    private async Task<string> CreateMemoryAsync(Actor a, object body) =>
        (await SendCheckedAsync(a, "POST", "/v1/memories", body, 201)).GetProperty("id").GetString()!;

    private Task<JsonElement> ReadAsync(Actor a, string path, int status) => SendCheckedAsync(a, "GET", path, null, status);

    private async Task ExpectAsync(Actor a, string method, string path, object? body, int status, Action<JsonElement>? check = null,
        (string Name, string Value)? extraHeader = null)
    {
        var json = await SendCheckedAsync(a, method, path, body, status, extraHeader);
        check?.Invoke(json);
    }

    /// <summary>Sends, asserts the status, and scans the body for every token <paramref name="a"/> must not see.</summary>
    private async Task<JsonElement> SendCheckedAsync(Actor a, string method, string path, object? body, int status, (string Name, string Value)? extraHeader = null)
    {
        using var response = await SendAsync(a, method, path, body, extraHeader);
        var text = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).Should().Be(status, $"{a.Name} {method} {path} answered {text}");
        // A problem body may echo what the caller itself sent (a key name it guessed); that is not a leak.
        AssertNoForeignTokens(a, text, $"{method} {path}", path + (body is null ? "" : JsonSerializer.Serialize(body)));
        _checkedResponses++;
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task<HttpResponseMessage> SendAsync(Actor a, string method, string path, object? body, (string Name, string Value)? extraHeader = null)
    {
        _sent.Add((method, path.Split('?')[0]));
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        }
        if (extraHeader is { } header)
        {
            request.Headers.Add(header.Name, header.Value);
        }
        return await a.Client.SendAsync(request);
    }

    private static void AssertNoForeignTokens(Actor a, string text, string where, string sent)
    {
        void Refuse(string token, string what)
        {
            if (!sent.Contains(token, StringComparison.Ordinal))
            {
                text.Should().NotContain(token, $"{a.Name} must not see {what} ({where})");
            }
        }

        foreach (var tenant in Tenants)
        {
            foreach (var scope in Scopes)
            {
                if (!SeesMemory(a, tenant, scope))
                {
                    Refuse(MemoryToken(tenant, scope), $"{tenant}'s {scope} memories");
                }
                if (!SeesPartition(a, tenant, scope))
                {
                    Refuse(KvToken(tenant, scope), $"{tenant}/{scope} key-value entries");
                    Refuse(GraphToken(tenant, scope), $"{tenant}/{scope} graph");
                }
            }
            // Key names are not secret inside a tenant (history records "key:<name>" as the actor); across tenants they are.
            if (a.Tenant != tenant)
            {
                Refuse($"zzn{tenant}", $"{tenant}'s key names");
            }
        }
    }

    private static object Merge(object scope, object rest)
    {
        var merged = JsonSerializer.SerializeToNode(rest)!.AsObject();
        foreach (var (key, value) in JsonSerializer.SerializeToNode(scope)!.AsObject())
        {
            merged[key] = value?.DeepClone();
        }
        return merged;
    }

    private sealed record Route(string Name, string Method, TemplateMatcher Matcher, int Literals);

    private static List<Route> Routes(EngramServer server) =>
        server.Services.GetServices<EndpointDataSource>().SelectMany(s => s.Endpoints).OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(method =>
            {
                var template = TemplateParser.Parse(e.RoutePattern.RawText!.TrimEnd('/'));
                var name = e.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName ?? e.DisplayName ?? e.RoutePattern.RawText!;
                return new Route(name, method, new TemplateMatcher(template, []), template.Segments.Count(s => s.IsSimple && s.Parts[0].IsLiteral));
            }))
            .ToList();

    /// <summary>The route a request reached: among the templates that match, the one with the most literal segments.</summary>
    private static string? Match(List<Route> routes, string method, string path) =>
        routes.Where(r => r.Method == method && r.Matcher.TryMatch(path.TrimEnd('/'), [])).MaxBy(r => r.Literals)?.Name;
}
