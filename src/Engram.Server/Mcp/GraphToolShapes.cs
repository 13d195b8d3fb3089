using System.ComponentModel;
using System.Text.Json.Serialization;
using Engram.Core.Graph;

namespace Engram.Server.Mcp;

// The argument and result shapes of the graph tools: the MCP reference memory server's (camelCase),
// named explicitly because the tools' serializer is Engram's snake_case contract. Arguments map onto
// Engram.Core's graph models (snake_case over REST) and results back, here and nowhere else.

/// <summary>An entity to create, as the reference server takes it.</summary>
public sealed record EntityArgument
{
    [JsonPropertyName("name"), Description("The entity's unique name (case-sensitive; leading and trailing spaces are trimmed).")]
    public required string? Name { get; init; }

    [JsonPropertyName("entityType"), Description("What kind of thing it is: person, organization, project, event…")]
    public required string? EntityType { get; init; }

    [JsonPropertyName("observations"), Description("Facts about it, one short statement each (may be empty).")]
    public required IReadOnlyList<string?>? Observations { get; init; }

    public NewEntity ToCore() => new()
    {
        Name = Name,
        EntityType = EntityType,
        Observations = Observations?.Select(o => o is null ? null : new ObservationInput(o)).ToList(),
    };
}

/// <summary>A directed relation <c>from -[relationType]-> to</c>, to create or delete.</summary>
public sealed record RelationArgument
{
    [JsonPropertyName("from"), Description("Name of the entity the relation starts at.")]
    public required string? From { get; init; }

    [JsonPropertyName("to"), Description("Name of the entity the relation points to.")]
    public required string? To { get; init; }

    [JsonPropertyName("relationType"), Description("The relation, in active voice: works_at, knows, depends_on…")]
    public required string? RelationType { get; init; }

    public NewRelation ToCore() => new() { From = From, To = To, RelationType = RelationType };
}

/// <summary>Observations to add to one entity.</summary>
public sealed record ObservationsArgument
{
    [JsonPropertyName("entityName"), Description("Name of an existing entity.")]
    public required string? EntityName { get; init; }

    [JsonPropertyName("contents"), Description("The observations to add; ones the entity already has are skipped.")]
    public required IReadOnlyList<string?>? Contents { get; init; }

    public ObservationAddition ToCore() => new()
    {
        EntityName = EntityName,
        Contents = Contents?.Select(o => o is null ? null : new ObservationInput(o)).ToList(),
    };
}

/// <summary>Observations to remove from one entity, by exact text.</summary>
public sealed record ObservationDeletionArgument
{
    [JsonPropertyName("entityName"), Description("Name of the entity holding the observations.")]
    public required string? EntityName { get; init; }

    [JsonPropertyName("observations"), Description("The exact observation texts to remove.")]
    public required IReadOnlyList<string?>? Observations { get; init; }

    public ObservationDeletion ToCore() => new() { EntityName = EntityName, Observations = Observations };
}

/// <summary>An entity as the reference server returns it: name, type and its current observations.</summary>
public sealed record GraphEntity(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("entityType")] string EntityType,
    [property: JsonPropertyName("observations")] IReadOnlyList<string> Observations)
{
    public static GraphEntity Of(Entity entity) => new(entity.Name, entity.EntityType, entity.Observations);
}

/// <summary>A relation as the reference server returns it.</summary>
public sealed record GraphRelation(
    [property: JsonPropertyName("from")] string From,
    [property: JsonPropertyName("to")] string To,
    [property: JsonPropertyName("relationType")] string RelationType)
{
    public static GraphRelation Of(Relation relation) => new(relation.From, relation.To, relation.RelationType);
}

/// <summary>A graph or part of one: read_graph, search_nodes, open_nodes and the knowledge-graph resource.</summary>
public sealed record GraphResult(
    [property: JsonPropertyName("entities")] IReadOnlyList<GraphEntity> Entities,
    [property: JsonPropertyName("relations")] IReadOnlyList<GraphRelation> Relations)
{
    public static GraphResult Of(KnowledgeGraph graph) =>
        new([.. graph.Entities.Select(GraphEntity.Of)], [.. graph.Relations.Select(GraphRelation.Of)]);
}

/// <summary>create_entities: the entities actually created.</summary>
public sealed record CreatedEntitiesResult([property: JsonPropertyName("entities")] IReadOnlyList<GraphEntity> Entities);

/// <summary>create_relations: the relations actually created.</summary>
public sealed record CreatedRelationsResult([property: JsonPropertyName("relations")] IReadOnlyList<GraphRelation> Relations);

/// <summary>add_observations: per entity, the observations actually added.</summary>
public sealed record AddedObservationsResult([property: JsonPropertyName("results")] IReadOnlyList<AddedObservations> Results);

public sealed record AddedObservations(
    [property: JsonPropertyName("entityName")] string EntityName,
    [property: JsonPropertyName("addedObservations")] IReadOnlyList<string> Added);

/// <summary>The three deletes, exactly as the reference server answers them.</summary>
public sealed record DeletionResult(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("message")] string Message);
