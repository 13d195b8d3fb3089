using System.Text;
using Engram.Cli.Client;
using Engram.Core.Graph;

namespace Engram.Cli.Import;

/// <summary>A relation of the file that was not imported, and why.</summary>
internal sealed record SkippedRelation(int Line, string From, string To, string RelationType, string Reason);

/// <summary>What an import did; a second import of the same file creates and adds nothing.</summary>
internal sealed record ImportReport(
    string Format,
    string File,
    int EntitiesCreated,
    int EntitiesExisting,
    int EntityLinesMerged,
    int ObservationsAdded,
    int RelationsCreated,
    int RelationsExisting,
    IReadOnlyList<SkippedRelation> RelationsSkipped);

/// <summary>
/// Writes a file's graph through the graph operations every interface uses (<see cref="IGraphClient"/>: in
/// process GraphService, or the REST API), so Engram's rules apply as to any other write. Idempotent: names
/// that exist keep their type and get only the observations they lack; relations that exist are left alone.
/// Relations whose end is not an entity (the reference server allows them; Engram refuses them) are skipped and reported.
/// </summary>
internal sealed class GraphImporter(IGraphClient graph)
{
    /// <summary>Items per request: the graph API's batch limit.</summary>
    private const int MaxItems = GraphValidator.MaxBatch;

    /// <summary>Request size kept well under the server's default batch body limit (16 MB).</summary>
    private const int MaxRequestBytes = 4 * 1024 * 1024;

    public async Task<ImportReport> ImportAsync(string format, string file, McpMemoryGraph source, CancellationToken ct)
    {
        var created = 0;
        var observationsAdded = 0;
        var pending = new List<ObservationAddition>();
        foreach (var chunk in Chunks(source.Entities, e => Bytes(e.Name, e.EntityType) + Bytes([.. e.Observations.Take(MaxItems)])))
        {
            var request = chunk.Select(e => (NewEntity?)new NewEntity
            {
                Name = e.Name,
                EntityType = e.EntityType,
                Observations = [.. e.Observations.Take(MaxItems).Select(o => (ObservationInput?)o)],
            }).ToList();
            var made = (await graph.CreateEntitiesAsync(request, ct)).Entities.ToDictionary(e => e.Name, StringComparer.Ordinal);
            created += made.Count;
            foreach (var entity in chunk)
            {
                // An entity that existed gets the observations it lacks; a new one only what did not fit in its create.
                var rest = made.TryGetValue(entity.Name, out var fresh) ? entity.Observations.Skip(MaxItems).ToList() : entity.Observations;
                observationsAdded += fresh?.Observations.Count ?? 0;
                for (var start = 0; start < rest.Count; start += MaxItems)
                {
                    pending.Add(new ObservationAddition { EntityName = entity.Name, Contents = [.. rest.Skip(start).Take(MaxItems).Select(o => (ObservationInput?)o)] });
                }
            }
        }
        foreach (var chunk in Chunks(pending, a => Bytes(a.EntityName!) + Bytes([.. a.Contents!.Select(c => c!.Content!)])))
        {
            var results = await graph.AddObservationsAsync([.. chunk], ct);
            observationsAdded += results.Results.Sum(r => r.AddedObservations.Count);
        }

        var (importable, skipped) = await SplitRelationsAsync(source, ct);
        var relationsCreated = 0;
        foreach (var chunk in Chunks(importable, r => Bytes(r.From, r.To, r.RelationType)))
        {
            var request = chunk.Select(r => (NewRelation?)new NewRelation { From = r.From, To = r.To, RelationType = r.RelationType }).ToList();
            relationsCreated += (await graph.CreateRelationsAsync(request, ct)).Relations.Count;
        }
        var distinctRelations = importable.Select(r => (r.From, r.To, r.RelationType)).Distinct().Count();
        return new ImportReport(format, file, created, source.Entities.Count - created, source.MergedLines, observationsAdded,
            relationsCreated, distinctRelations - relationsCreated, skipped);
    }

    /// <summary>Relations whose ends are both entities (of the file, or already in Engram), and the others.</summary>
    private async Task<(List<FileRelation>, List<SkippedRelation>)> SplitRelationsAsync(McpMemoryGraph source, CancellationToken ct)
    {
        var known = source.Entities.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var elsewhere = source.Relations.SelectMany(r => new[] { r.From, r.To }).Where(n => !known.Contains(n)).Distinct(StringComparer.Ordinal).ToList();
        for (var start = 0; start < elsewhere.Count; start += 100)
        {
            var found = await graph.OpenNodesAsync([.. elsewhere.Skip(start).Take(100)], includeInvalid: true, ct);
            known.UnionWith(found.Entities.Select(e => e.Name));
        }
        var importable = new List<FileRelation>();
        var skipped = new List<SkippedRelation>();
        foreach (var relation in source.Relations)
        {
            var missing = new[] { relation.From, relation.To }.Where(n => !known.Contains(n)).Distinct(StringComparer.Ordinal).ToList();
            if (missing.Count == 0)
            {
                importable.Add(relation);
            }
            else
            {
                skipped.Add(new SkippedRelation(relation.Line, relation.From, relation.To, relation.RelationType,
                    "no entity named " + string.Join(" or ", missing.Select(n => $"'{n}'"))));
            }
        }
        return (importable, skipped);
    }

    /// <summary>Consecutive runs of at most <see cref="MaxItems"/> items and about <see cref="MaxRequestBytes"/> of JSON.</summary>
    private static IEnumerable<List<T>> Chunks<T>(IReadOnlyList<T> items, Func<T, int> size)
    {
        var chunk = new List<T>();
        var bytes = 0;
        foreach (var item in items)
        {
            var itemBytes = size(item);
            if (chunk.Count > 0 && (chunk.Count == MaxItems || bytes + itemBytes > MaxRequestBytes))
            {
                yield return chunk;
                chunk = [];
                bytes = 0;
            }
            chunk.Add(item);
            bytes += itemBytes;
        }
        if (chunk.Count > 0)
        {
            yield return chunk;
        }
    }

    /// <summary>About the JSON the strings take: their UTF-8 and 32 bytes of quotes and names each (4 MB of that leaves the 16 MB limit room for escapes).</summary>
    private static int Bytes(params string[] texts) => texts.Sum(t => Encoding.UTF8.GetByteCount(t) + 32);
}
