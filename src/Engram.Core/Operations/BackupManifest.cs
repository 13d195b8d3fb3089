using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engram.Core.Operations;

/// <summary>
/// What a backup file says about itself (the JSON at its head; docs/RUNBOOK.md, "Backups"): who made it, what
/// store at which change-log sequence, how many rows of each kind, and the SHA-256 of the compressed payload and
/// of the database it decompresses to.
/// </summary>
public sealed record BackupManifest(
    int Format,
    string EngramVersion,
    int SchemaVersion,
    long LastSeq,
    string StoreId,
    IReadOnlyDictionary<string, long> Counts,
    DateTimeOffset CreatedAt,
    string Kind,
    string Compression,
    long DatabaseBytes,
    string DatabaseSha256,
    long PayloadBytes,
    string PayloadSha256,
    string Content = BackupContents.Database)
{
    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
    };
}

/// <summary>
/// What a backup's payload is: a SQLite database file (a SQLite store's backup), or Engram's export of the
/// store (a logical backup: a PostgreSQL store's; portable to either backend). <c>database_bytes</c> and
/// <c>database_sha256</c> are then those of the uncompressed export.
/// </summary>
public static class BackupContents
{
    public const string Database = "sqlite-database";
    public const string Export = "engram-export";
}

/// <summary>A backup's kind: made by the schedule (retention applies) or on demand (kept until deleted by hand).</summary>
public static class BackupKinds
{
    public const string Scheduled = "scheduled";
    public const string Manual = "manual";
}
