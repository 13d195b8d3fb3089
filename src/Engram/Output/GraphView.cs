using Engram.Core.Graph;

namespace Engram.Cli.Output;

/// <summary>A (sub)graph as text: each entity with its observations, then the relations as <c>from -[type]-> to</c>.</summary>
internal static class GraphView
{
    public static void Write(TextWriter output, KnowledgeGraph graph)
    {
        if (graph.Entities.Count == 0 && graph.Relations.Count == 0)
        {
            output.WriteLine("(no entities)");
            return;
        }
        foreach (var entity in graph.Entities)
        {
            output.WriteLine($"{entity.Name} ({entity.EntityType})");
            foreach (var observation in entity.Observations)
            {
                output.WriteLine("  - " + observation);
            }
            foreach (var observation in entity.InvalidObservations ?? [])
            {
                output.WriteLine($"  - {observation.Content} [no longer valid]");
            }
        }
        if (graph.Relations.Count > 0)
        {
            output.WriteLine();
        }
        foreach (var relation in graph.Relations)
        {
            output.WriteLine(RelationLine(relation));
        }
        if (graph.Truncated)
        {
            output.WriteLine();
            output.WriteLine($"(cut at {graph.Entities.Count - 1} entities besides the start: more lie within the depth; raise --limit to see them)");
        }
    }

    public static string RelationLine(Relation relation) =>
        $"{relation.From} -[{relation.RelationType}]-> {relation.To}" +
        (relation.Weight is { } weight ? $" (weight {weight})" : "") +
        (relation.Valid ? "" : " [no longer valid]");
}
