using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// Data seeded before a barrage and everything needed to prove the barrage changed none of it: a
/// snapshot of every memory, key and graph fact, compared after the barrage with what accepted writes
/// (the <see cref="WriteLedger"/>) explain, and SQLite's integrity check.
/// </summary>
internal sealed class SeededStore
{
    /// <summary>Memory fields a read may change (access tracking): left out of the comparison.</summary>
    private static readonly string[] Volatile = ["last_accessed_at", "access_count"];

    public required IReadOnlyDictionary<string, string> Values { get; init; }

    public static async Task<SeededStore> SeedAsync(EngramServer server)
    {
        var alice = await server.CreateAsync(new
        {
            content = "Alice prefers dark mode in every editor",
            type = "preference",
            user_id = "seed-alice",
            tags = new[] { "ui" },
            entities = new[] { "Alice" },
            metadata = new { app = "vscode" },
        });
        await server.CreateAsync(new { content = "Bob owns the billing service; 100% of invoices go through it", user_id = "seed-bob", tags = new[] { "ops", "billing" }, entities = new[] { "Billing" } });
        await server.CreateAsync(new { content = "seed_1 row: underscore and [brackets] and a * star", user_id = "seed-carol", agent_id = "agent-7", session_id = "s1", @namespace = "ns" });
        var scratch = await server.CreateAsync(new { content = "scratch memory the barrage may patch", user_id = "scratch" });

        foreach (var (key, value) in new[] { ("seed:a", "{\"n\":1}"), ("seed-1", "\"dash\""), ("seedX1", "[1,2]"), ("seed:counter", "5"), ("seed/with/slash", "null"), ("app:session:42", "{\"s\":true}") })
        {
            var put = await server.SendJsonAsync("PUT", "/v1/kv/" + key, "{\"value\":" + value + ",\"ttl_seconds\":0}");
            put.StatusCode.Should().Be(HttpStatusCode.Created, await put.Content.ReadAsStringAsync());
        }
        (await server.PostJsonAsync("/v1/graph/entities",
            """{"entities":[{"name":"Alice","entity_type":"person","observations":["prefers dark mode"]},{"name":"Billing","entity_type":"service"},{"name":"Carol","entity_type":"person"}]}"""))
            .StatusCode.Should().Be(HttpStatusCode.OK);
        (await server.PostJsonAsync("/v1/graph/relations", """{"relations":[{"from":"Alice","to":"Billing","relation_type":"works_on"}]}"""))
            .StatusCode.Should().Be(HttpStatusCode.OK);

        return new SeededStore
        {
            Values = new Dictionary<string, string>
            {
                ["$memory"] = alice.GetProperty("id").GetString()!,
                ["$scratch"] = scratch.GetProperty("id").GetString()!,
                ["$absent"] = "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            },
        };
    }

    /// <summary>Every memory (without access tracking), key with its value, entity and relation, as canonical JSON text by identity.</summary>
    public static async Task<StoreSnapshot> SnapshotAsync(EngramServer server)
    {
        var memories = new Dictionary<string, string>(StringComparer.Ordinal);
        string? cursor = null;
        do
        {
            var page = await GetJsonAsync(server, "/v1/memories?limit=1000" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            foreach (var item in page["items"]!.AsArray())
            {
                var memory = item!.AsObject();
                foreach (var field in Volatile)
                {
                    memory.Remove(field);
                }
                memories[(string)memory["id"]!] = memory.ToJsonString();
            }
            cursor = (string?)page["next_cursor"];
        }
        while (cursor is not null);

        var keys = new List<string>();
        cursor = null;
        do
        {
            var page = await GetJsonAsync(server, "/v1/kv?limit=1000" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            keys.AddRange(page["items"]!.AsArray().Select(i => i is JsonObject o ? (string)o["key"]! : (string)i!));
            cursor = (string?)page["next_cursor"];
        }
        while (cursor is not null);
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var chunk in keys.Chunk(500))
        {
            var response = await server.PostJsonAsync("/v1/kv/mget", JsonSerializer.Serialize(new { keys = chunk }));
            var items = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["items"]!.AsArray();
            for (var i = 0; i < chunk.Length; i++)
            {
                values[chunk[i]] = items[i]!["value"]?.ToJsonString() ?? "null";
            }
        }

        var graph = await GetJsonAsync(server, "/v1/graph?include_invalid=true");
        var entities = graph["entities"]!.AsArray().ToDictionary(e => (string)e!["name"]!, e => e!.ToJsonString(), StringComparer.Ordinal);
        var relations = graph["relations"]!.AsArray().ToDictionary(
            r => $"{(string)r!["from"]!}|{(string)r["relation_type"]!}|{(string)r["to"]!}", r => r!.ToJsonString(), StringComparer.Ordinal);
        return new StoreSnapshot(memories, values, entities, relations);
    }

    public static Task<string> IntegrityCheckAsync(EngramServer server) =>
        ((SqliteMemoryStore)server.Services.GetRequiredService<IMemoryStore>()).IntegrityCheckAsync();

    private static async Task<JsonNode> GetJsonAsync(EngramServer server, string path)
    {
        var response = await server.Client.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, $"{path}: {text}");
        return JsonNode.Parse(text)!;
    }
}

/// <summary>The store's contents by identity: memory id, key, entity name, relation (from|type|to).</summary>
internal sealed record StoreSnapshot(
    IReadOnlyDictionary<string, string> Memories,
    IReadOnlyDictionary<string, string> Keys,
    IReadOnlyDictionary<string, string> Entities,
    IReadOnlyDictionary<string, string> Relations)
{
    public string Counts => $"{Memories.Count} memories, {Keys.Count} keys, {Entities.Count} entities, {Relations.Count} relations";
}
