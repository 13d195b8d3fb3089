namespace Engram.Core.Operations;

/// <summary>The <c>kind</c> of each line of an Engram export.</summary>
public static class ExportKinds
{
    public const string Header = "header";
    public const string Memory = "memory";
    public const string KeyValue = "kv";
    public const string Entity = "entity";
    public const string Relation = "relation";

    /// <summary>A link between two memories (derived_from, duplicate_of); format version 2.</summary>
    public const string Link = "link";

    /// <summary>A raw conversation kept for extraction, with its history; format version 2.</summary>
    public const string Conversation = "conversation";

    /// <summary>An extraction job of a conversation; format version 2.</summary>
    public const string ExtractionJob = "extraction_job";

    /// <summary>
    /// The embedding vectors of one memory version under one model; format version 3. Only in exports that ask for
    /// them (logical backups and migrations always do): they are derived data, but a transformer model needs hours
    /// to make them again for a large store.
    /// </summary>
    public const string Vector = "vector";

    /// <summary>The record kinds in the order an export writes them (a later kind may refer to an earlier one).</summary>
    public static readonly string[] Records = [Memory, KeyValue, Entity, Relation, Link, Conversation, ExtractionJob, Vector];
}

/// <summary>How many records of each kind an export holds (<see cref="Vectors"/> null: the export carries none).</summary>
public sealed record ExportCounts(long Memories, long KeyValues, long Entities, long Relations, long Links = 0, long Conversations = 0, long Jobs = 0,
    long? Vectors = null)
{
    public long Total => Memories + KeyValues + Entities + Relations + Links + Conversations + Jobs + (Vectors ?? 0);

    public long Of(string kind) => kind switch
    {
        ExportKinds.Memory => Memories,
        ExportKinds.KeyValue => KeyValues,
        ExportKinds.Entity => Entities,
        ExportKinds.Relation => Relations,
        ExportKinds.Link => Links,
        ExportKinds.Conversation => Conversations,
        ExportKinds.ExtractionJob => Jobs,
        ExportKinds.Vector => Vectors ?? 0,
        _ => 0,
    };

    /// <summary>The name of each kind's count in the header's <c>counts</c> (the kinds of format version 2 may be absent from a version 1 header).</summary>
    public static readonly IReadOnlyDictionary<string, string> HeaderNames = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [ExportKinds.Memory] = "memories",
        [ExportKinds.KeyValue] = "kv",
        [ExportKinds.Entity] = "entities",
        [ExportKinds.Relation] = "relations",
        [ExportKinds.Link] = "links",
        [ExportKinds.Conversation] = "conversations",
        [ExportKinds.ExtractionJob] = "jobs",
        [ExportKinds.Vector] = "vectors",
    };
}

/// <summary>The first line of an export.</summary>
public sealed record ExportHeader(string Kind, string Format, int FormatVersion, string EngramVersion, int SchemaVersion, string CreatedAt, string? Tenant,
    long LastSeq, ExportCounts Counts)
{
    /// <summary>The value of <c>format</c>: what tells an Engram export from any other JSON Lines file.</summary>
    public const string FormatName = "engram-export";

    /// <summary>
    /// The version of the line format this engram writes; it reads every version up to it. Version 2 added
    /// <c>superseded_by</c> to memory records and the kinds <c>link</c>, <c>conversation</c> and <c>extraction_job</c>
    /// (written after relations) with their header counts <c>links</c>, <c>conversations</c> and <c>jobs</c>. A version 1
    /// file has none of them and still imports: its memories are current (no <c>superseded_by</c>). Version 3 added
    /// the kind <c>vector</c> (written last, counted as <c>vectors</c> in the header only when the export carries them).
    /// </summary>
    public const int CurrentVersion = 3;
}

/// <summary>What became of one imported record.</summary>
public enum ImportOutcome
{
    Imported,
    Skipped,
    Failed,

    /// <summary>Not written: a record before it in the same batch was refused and the import stops there (<see cref="Storage.Transfer.ImportRules.StopAtRefusal"/>).</summary>
    NotReached,
}

/// <summary>Progress of a long operation: what it is doing, how far it got, and of how many (0 when unknown).</summary>
public readonly record struct OperationProgress(string Phase, long Done, long Total);
