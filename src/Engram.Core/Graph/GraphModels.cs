using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engram.Core.Graph;

/// <summary>
/// A node of the knowledge graph, as the MCP reference memory server shapes it: a unique name, a type
/// and observations (strings). <see cref="Observations"/> holds the observations valid now; with
/// include_invalid the ones whose validity ended (or has not begun) are listed in
/// <see cref="InvalidObservations"/>, so an MCP client reading plain strings never sees stale facts.
/// </summary>
public sealed record Entity
{
    public required string Name { get; init; }

    public required string EntityType { get; init; }

    public required IReadOnlyList<string> Observations { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<Observation>? InvalidObservations { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>One observation with its validity window (both ends optional).</summary>
public sealed record Observation
{
    public required string Content { get; init; }

    public DateTimeOffset? ValidFrom { get; init; }

    public DateTimeOffset? ValidTo { get; init; }

    /// <summary>Whether the window holds now (set on reads).</summary>
    public bool Valid { get; init; } = true;

    public bool IsValidAt(DateTimeOffset now) =>
        (ValidFrom is null || ValidFrom <= now) && (ValidTo is null || ValidTo > now);
}

/// <summary>A directed edge <c>from -[relation_type]-> to</c>; the triple is unique per tenant.</summary>
public sealed record Relation
{
    public required string From { get; init; }

    public required string To { get; init; }

    public required string RelationType { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Weight { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? ValidFrom { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? ValidTo { get; init; }

    public bool Valid { get; init; } = true;

    public DateTimeOffset CreatedAt { get; init; }

    public bool IsValidAt(DateTimeOffset now) =>
        (ValidFrom is null || ValidFrom <= now) && (ValidTo is null || ValidTo > now);
}

/// <summary>A subgraph: what every read returns (the whole graph, search hits, opened nodes, neighbourhoods, paths).</summary>
public sealed record KnowledgeGraph(IReadOnlyList<Entity> Entities, IReadOnlyList<Relation> Relations)
{
    public static KnowledgeGraph Empty { get; } = new([], []);

    /// <summary>A neighbourhood cut at its limit: more entities lie within the depth (only written when true).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool Truncated { get; init; }
}

/// <summary>A page of an entity's history and the position after its last entry when more follow.</summary>
public sealed record GraphHistoryPage(IReadOnlyList<GraphHistoryEntry> Items, long? Next);

/// <summary>A page of an entity's history, oldest first; <see cref="NextCursor"/> (null: the last page) continues it.</summary>
public sealed record GraphHistoryResult(IReadOnlyList<GraphHistoryEntry> Items, string? NextCursor);

/// <summary>Which relations a subgraph of chosen entities (search hits, opened nodes) carries.</summary>
public enum SubgraphRelations
{
    /// <summary>Only relations with both ends among the entities (REST's search and nodes).</summary>
    Between,

    /// <summary>Every relation with at least one end among them, so a caller sees a node's connections (the MCP reference server's search_nodes and open_nodes).</summary>
    Touching,
}

/// <summary>An entity to create. Observations are strings or <c>{"content","valid_from","valid_to"}</c> objects.</summary>
public sealed record NewEntity
{
    public string? Name { get; init; }

    public string? EntityType { get; init; }

    public IReadOnlyList<ObservationInput?>? Observations { get; init; }
}

/// <summary>A relation to create or delete (on delete only the triple counts).</summary>
public sealed record NewRelation
{
    public string? From { get; init; }

    public string? To { get; init; }

    public string? RelationType { get; init; }

    public double? Weight { get; init; }

    public DateTimeOffset? ValidFrom { get; init; }

    public DateTimeOffset? ValidTo { get; init; }
}

/// <summary>Observations to add to one entity.</summary>
public sealed record ObservationAddition
{
    public string? EntityName { get; init; }

    public IReadOnlyList<ObservationInput?>? Contents { get; init; }
}

/// <summary>Observations to remove from one entity (by content).</summary>
public sealed record ObservationDeletion
{
    public string? EntityName { get; init; }

    public IReadOnlyList<string?>? Observations { get; init; }
}

/// <summary>What <c>add observations</c> did for one entity: the contents it actually added (MCP's addedObservations).</summary>
public sealed record ObservationsAdded(string EntityName, IReadOnlyList<string> AddedObservations);

/// <summary>
/// An observation as written: a bare string (the MCP shape) or an object carrying a validity window.
/// </summary>
[JsonConverter(typeof(ObservationInputConverter))]
public sealed record ObservationInput(string? Content, DateTimeOffset? ValidFrom = null, DateTimeOffset? ValidTo = null)
{
    public static implicit operator ObservationInput(string content) => new(content);
}

internal sealed class ObservationInputConverter : JsonConverter<ObservationInput>
{
    private const string Shape = "an observation is a string or an object with content, valid_from and valid_to";

    public override ObservationInput Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return new ObservationInput(reader.GetString());
        }
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            // Thrown here, not by the nested Deserialize below: that one starts a path of its own and its "could not be
            // converted" came out as "the body must be a JSON object" instead of naming the observation.
            throw new JsonException(Shape);
        }
        var shape = JsonSerializer.Deserialize<ObservationObject>(ref reader, options)
            ?? throw new JsonException(Shape);
        return new ObservationInput(shape.Content, shape.ValidFrom, shape.ValidTo);
    }

    public override void Write(Utf8JsonWriter writer, ObservationInput value, JsonSerializerOptions options)
    {
        if (value.ValidFrom is null && value.ValidTo is null)
        {
            writer.WriteStringValue(value.Content);
            return;
        }
        JsonSerializer.Serialize(writer, new ObservationObject(value.Content, value.ValidFrom, value.ValidTo), options);
    }

    private sealed record ObservationObject(string? Content, DateTimeOffset? ValidFrom, DateTimeOffset? ValidTo);
}

/// <summary>One change of the graph as history records it.</summary>
public sealed record GraphHistoryEntry
{
    public long Seq { get; init; }

    /// <summary>entity_created, entity_deleted, observation_added, observation_deleted, relation_created, relation_deleted.</summary>
    public required string Event { get; init; }

    public required string Actor { get; init; }

    public DateTimeOffset At { get; init; }

    public required string EntityName { get; init; }

    [System.Text.Json.Serialization.JsonConverter(typeof(Common.StoredJsonConverter))]
    public JsonElement Changes { get; init; }
}

public static class GraphEvents
{
    public const string EntityCreated = "entity_created";
    public const string EntityDeleted = "entity_deleted";
    public const string ObservationAdded = "observation_added";
    public const string ObservationDeleted = "observation_deleted";
    public const string RelationCreated = "relation_created";
    public const string RelationDeleted = "relation_deleted";
}
