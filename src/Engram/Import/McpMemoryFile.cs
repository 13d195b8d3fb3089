using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Graph;

namespace Engram.Cli.Import;

/// <summary>An entity of the file; the observations of every line naming it, in file order, without repeats.</summary>
internal sealed record FileEntity(int Line, string Name, string EntityType, List<string> Observations);

/// <summary>A relation of the file.</summary>
internal sealed record FileRelation(int Line, string From, string To, string RelationType);

/// <summary>What a file holds, checked against Engram's graph rules, ready to write.</summary>
internal sealed record McpMemoryGraph(IReadOnlyList<FileEntity> Entities, IReadOnlyList<FileRelation> Relations, int MergedLines);

/// <summary>
/// Reads the MCP reference memory server's <c>memory.jsonl</c>: one JSON object a line,
/// <c>{"type":"entity","name","entityType","observations":[…]}</c> or <c>{"type":"relation","from","to","relationType"}</c>,
/// blank lines ignored. Every value goes through <see cref="GraphValidator"/> here, so a value Engram would refuse is
/// reported with its line before anything is written. The reference server lets a name occur twice (two
/// create_entities in one call); Engram's names are unique, so such lines are merged into the first, observations appended.
/// </summary>
internal static class McpMemoryFile
{
    public static McpMemoryGraph Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new NotFoundException($"no file '{path}'");
        }
        var entities = new List<FileEntity>();
        var byName = new Dictionary<string, FileEntity>(StringComparer.Ordinal);
        var relations = new List<FileRelation>();
        var merged = 0;
        var number = 0;
        foreach (var text in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }
            try
            {
                using var document = ParseLine(text);
                var line = document.RootElement;
                switch (String(line, "type", required: true))
                {
                    case "entity":
                        var entity = new FileEntity(number, GraphValidator.Name(String(line, "name", true), "name"),
                            GraphValidator.Type(String(line, "entityType", true), "entityType"), Observations(line));
                        if (byName.TryGetValue(entity.Name, out var first))
                        {
                            first.Observations.AddRange(entity.Observations.Where(o => !first.Observations.Contains(o, StringComparer.Ordinal)));
                            merged++;
                        }
                        else
                        {
                            byName[entity.Name] = entity;
                            entities.Add(entity);
                        }
                        break;
                    case "relation":
                        relations.Add(new FileRelation(number, GraphValidator.Name(String(line, "from", true), "from"),
                            GraphValidator.Name(String(line, "to", true), "to"), GraphValidator.Type(String(line, "relationType", true), "relationType")));
                        break;
                    case var other:
                        throw new ValidationException("type", $"type must be \"entity\" or \"relation\" (got \"{other}\")");
                }
            }
            catch (ValidationException e)
            {
                throw new ValidationException("FILE", $"{path} line {number}: {e.Message}");
            }
        }
        return new McpMemoryGraph(entities, relations, merged);
    }

    private static JsonDocument ParseLine(string text)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            throw new ValidationException("line", "not valid JSON: " + e.Message.Split(" LineNumber:")[0]);
        }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new ValidationException("line", "a line must be a JSON object with a \"type\" of \"entity\" or \"relation\"");
        }
        return document;
    }

    private static string? String(JsonElement line, string field, bool required)
    {
        if (!line.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return required ? throw new ValidationException(field, $"{field} is missing") : null;
        }
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw new ValidationException(field, $"{field} must be a string");
    }

    private static List<string> Observations(JsonElement line)
    {
        if (!line.TryGetProperty("observations", out var array) || array.ValueKind == JsonValueKind.Null)
        {
            return [];
        }
        if (array.ValueKind != JsonValueKind.Array)
        {
            throw new ValidationException("observations", "observations must be an array of strings");
        }
        var observations = new List<string>();
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            var field = $"observations[{i++}]";
            var text = item.ValueKind == JsonValueKind.String ? item.GetString() : throw new ValidationException(field, $"{field} must be a string");
            var valid = GraphValidator.ObservationText(text, field);
            if (!observations.Contains(valid, StringComparer.Ordinal))
            {
                observations.Add(valid);
            }
        }
        return observations;
    }
}
