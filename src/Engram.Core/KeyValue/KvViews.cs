using System.Text.Json;
using System.Text.Json.Serialization;
using Engram.Core.Common;

namespace Engram.Core.KeyValue;

/// <summary>
/// An entry as callers see it (GET /v1/kv/{key}): the key as they wrote it, the value, the seconds
/// left (0: no expiry) and the expiry time (null: never).
/// </summary>
public sealed record KvItem(string Key, [property: JsonConverter(typeof(StoredJsonConverter))] JsonElement Value, long TtlSeconds, DateTimeOffset? ExpiresAt);

/// <summary>The answer to a set: whether it created the key, its new version and expiry.</summary>
public sealed record KvWritten(string Key, bool Created, long Version, long TtlSeconds, DateTimeOffset? ExpiresAt);

/// <summary>One answer of an mget, in request order; <see cref="Found"/> tells a missing key from a stored null.</summary>
public sealed record KvLookup(string Key, bool Found, [property: JsonConverter(typeof(StoredJsonConverter))] JsonElement? Value, long? TtlSeconds, DateTimeOffset? ExpiresAt);

/// <summary>
/// <see cref="KvLookup"/> with the value as stored text (the same JSON when written): what a streamed mget writes, so
/// no value is parsed and kept before its turn.
/// </summary>
public sealed record KvStoredLookup(string Key, bool Found, StoredJsonText? Value, long? TtlSeconds, DateTimeOffset? ExpiresAt);

/// <summary>One key of a listing (values are not listed: fetch them with mget, like Redis's SCAN).</summary>
public sealed record KvKeyInfo(string Key, long TtlSeconds, DateTimeOffset? ExpiresAt, long Version, DateTimeOffset UpdatedAt);

/// <summary>
/// The answer of a cleanup call: keys deleted by this call; when <see cref="Done"/> is false the time
/// budget ran out first, and the same pattern with <see cref="NextCursor"/> continues.
/// </summary>
public sealed record KvCleanupResult(int Deleted, bool Done, string? NextCursor);

public sealed record KvPage(IReadOnlyList<KvKeyInfo> Items, string? NextCursor);

/// <summary>One history entry as callers see it; <see cref="Value"/> is the value after the change (null for deletions).</summary>
public sealed record KvHistoryItem(long Seq, string Event, string Actor, DateTimeOffset At, long Version, [property: JsonConverter(typeof(StoredJsonConverter))] JsonElement? Value, DateTimeOffset? ExpiresAt);

/// <summary>A page of a key's history in chronological order; <see cref="NextCursor"/> fetches the older entries before it.</summary>
public sealed record KvHistoryResult(IReadOnlyList<KvHistoryItem> Items, string? NextCursor);

/// <summary>One item of an mset.</summary>
public sealed record KvSetItem(string? Key, JsonElement Value, long? TtlSeconds);
