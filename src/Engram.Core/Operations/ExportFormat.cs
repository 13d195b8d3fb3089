namespace Engram.Core.Operations;

/// <summary>The <c>kind</c> of each line of an Engram export.</summary>
public static class ExportKinds
{
    public const string Header = "header";
    public const string Memory = "memory";
    public const string KeyValue = "kv";
    public const string Entity = "entity";
    public const string Relation = "relation";

    public static readonly string[] Records = [Memory, KeyValue, Entity, Relation];
}

/// <summary>How many records of each kind an export holds.</summary>
public sealed record ExportCounts(long Memories, long KeyValues, long Entities, long Relations)
{
    public long Total => Memories + KeyValues + Entities + Relations;

    public long Of(string kind) => kind switch
    {
        ExportKinds.Memory => Memories,
        ExportKinds.KeyValue => KeyValues,
        ExportKinds.Entity => Entities,
        ExportKinds.Relation => Relations,
        _ => 0,
    };
}

/// <summary>The first line of an export.</summary>
public sealed record ExportHeader(string Kind, string Format, int FormatVersion, string EngramVersion, int SchemaVersion, string CreatedAt, string? Tenant,
    long LastSeq, ExportCounts Counts)
{
    /// <summary>The value of <c>format</c>: what tells an Engram export from any other JSON Lines file.</summary>
    public const string FormatName = "engram-export";

    /// <summary>The version of the line format this engram writes and reads.</summary>
    public const int CurrentVersion = 1;
}

/// <summary>What became of one imported record.</summary>
public enum ImportOutcome
{
    Imported,
    Skipped,
    Failed,
}

/// <summary>Progress of a long operation: what it is doing, how far it got, and of how many (0 when unknown).</summary>
public readonly record struct OperationProgress(string Phase, long Done, long Total);
