using System.Collections.Concurrent;
using System.Text.Json.Nodes;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// Every write the barrage had accepted, read from the answers: memories created or changed, keys
/// written, entities and relations created. After the barrage the store must hold exactly the seeded
/// data plus these, and nothing else.
/// </summary>
internal sealed class WriteLedger
{
    public ConcurrentDictionary<string, string> Memories { get; } = new(StringComparer.Ordinal);

    public ConcurrentDictionary<string, string> Keys { get; } = new(StringComparer.Ordinal);

    public ConcurrentDictionary<string, string> Entities { get; } = new(StringComparer.Ordinal);

    public ConcurrentDictionary<string, string> Relations { get; } = new(StringComparer.Ordinal);

    public int Accepted => _accepted;

    private int _accepted;

    /// <summary>Records what a 2xx answer to a write says it wrote (memory ids, keys, entity names, relations).</summary>
    public void Record(Probe probe, HostileAnswer answer)
    {
        Interlocked.Increment(ref _accepted);
        JsonObject? json;
        try
        {
            json = answer.Body.Length == 0 ? null : JsonNode.Parse(answer.Body) as JsonObject;
        }
        catch (System.Text.Json.JsonException)
        {
            return;
        }
        if (json is null)
        {
            return;
        }
        if (json["id"] is JsonValue id && json.ContainsKey("content"))
        {
            Memories.TryAdd((string)id!, probe.Label);
        }
        foreach (var result in (json["results"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if ((string?)result["status"] == "created" && result["id"] is JsonValue created)
            {
                Memories.TryAdd((string)created!, probe.Label);
            }
            if ((string?)result["event"] == "ADD" && result["id"] is JsonValue added)
            {
                Memories.TryAdd(Engram.Core.Common.Ulid.FromAny((string)added!), probe.Label); // the mem0-compatible add (UUID ids)
            }
        }
        if (json["key"] is JsonValue key && !json.ContainsKey("found"))
        {
            Keys.TryAdd((string)key!, probe.Label);
        }
        foreach (var item in (json["items"] as JsonArray ?? []).OfType<JsonObject>().Where(i => !i.ContainsKey("found")))
        {
            if (item["key"] is JsonValue itemKey)
            {
                Keys.TryAdd((string)itemKey!, probe.Label);
            }
        }
        foreach (var entity in (json["entities"] as JsonArray ?? []).OfType<JsonObject>())
        {
            Entities.TryAdd((string)entity["name"]!, probe.Label);
        }
        foreach (var relation in (json["relations"] as JsonArray ?? []).OfType<JsonObject>())
        {
            Relations.TryAdd($"{(string)relation["from"]!}|{(string)relation["relation_type"]!}|{(string)relation["to"]!}", probe.Label);
        }
    }

    /// <summary>Differences between the snapshots that accepted writes do not explain; empty when the store is as it should be.</summary>
    public IEnumerable<string> Unexplained(StoreSnapshot before, StoreSnapshot after)
    {
        foreach (var problem in Compare("memory", before.Memories, after.Memories, Memories))
        {
            yield return problem;
        }
        foreach (var problem in Compare("key", before.Keys, after.Keys, Keys))
        {
            yield return problem;
        }
        foreach (var problem in Compare("entity", before.Entities, after.Entities, Entities))
        {
            yield return problem;
        }
        foreach (var problem in Compare("relation", before.Relations, after.Relations, Relations))
        {
            yield return problem;
        }
    }

    private static IEnumerable<string> Compare(string kind, IReadOnlyDictionary<string, string> before, IReadOnlyDictionary<string, string> after,
        ConcurrentDictionary<string, string> written)
    {
        foreach (var (id, text) in before)
        {
            if (!after.TryGetValue(id, out var now))
            {
                yield return $"{kind} {id} was lost";
            }
            else if (now != text && !written.ContainsKey(id))
            {
                yield return $"{kind} {id} changed with no accepted write: {Cut(text)} -> {Cut(now)}";
            }
        }
        foreach (var id in after.Keys.Where(id => !before.ContainsKey(id) && !written.ContainsKey(id)))
        {
            yield return $"{kind} {id} appeared with no accepted write: {Cut(after[id])}";
        }
    }

    private static string Cut(string text) => text.Length > 200 ? text[..200] + "…" : text;
}
