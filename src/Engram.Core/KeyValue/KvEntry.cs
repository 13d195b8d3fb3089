namespace Engram.Core.KeyValue;

/// <summary>
/// One stored entry as the store keeps it: the stored key (tenant segment already inserted, see
/// <see cref="KvKeys"/>), the value's JSON text and the expiry in unix milliseconds (null: never).
/// <see cref="LastHistoryId"/> is the newest history entry of the key (the head of its history chain).
/// </summary>
public sealed record KvEntry(string StoredKey, string ValueJson, long? ExpiresAtMs, long Version, long CreatedAtMs, long UpdatedAtMs, long? LastHistoryId = null)
{
    /// <summary>Whether the entry has not expired at <paramref name="nowMs"/> (unix milliseconds).</summary>
    public bool IsLiveAt(long nowMs) => ExpiresAtMs is not { } expires || expires > nowMs;

    private Derived? _derived;

    /// <summary>
    /// The value in a form a protocol computes from <see cref="ValueJson"/> (the RESP endpoint: the bytes of its reply),
    /// computed on the first call and kept with the entry, so a key read many times is converted once. Entries are
    /// shared by readers and never change, so racing callers at worst both compute it. The form is tied to the
    /// value's string, so a copy made with <c>with</c> and another value never reuses it.
    /// </summary>
    public T GetDerived<T>(Func<string, T> derive) where T : class
    {
        if (_derived is { } derived && ReferenceEquals(derived.Source, ValueJson) && derived.Value is T value)
        {
            return value;
        }
        value = derive(ValueJson);
        _derived = new Derived(ValueJson, value);
        return value;
    }

    // The cache is not part of the entry's value: equality and hashing see the seven properties only.
    public bool Equals(KvEntry? other) =>
        other is not null && StoredKey == other.StoredKey && ValueJson == other.ValueJson && ExpiresAtMs == other.ExpiresAtMs
        && Version == other.Version && CreatedAtMs == other.CreatedAtMs && UpdatedAtMs == other.UpdatedAtMs && LastHistoryId == other.LastHistoryId;

    public override int GetHashCode() => HashCode.Combine(StoredKey, ValueJson, ExpiresAtMs, Version, CreatedAtMs, UpdatedAtMs, LastHistoryId);

    private sealed record Derived(string Source, object Value);
}

/// <summary>A write <see cref="KvService.PrepareSet"/> checked, with the partition (the caller as the store sees it) it goes to.</summary>
public readonly record struct KvPreparedSet(Common.Caller Partition, KvWrite Write);

/// <summary>One write of an mset (or a set): stored key, JSON text, expiry, and the nx/xx condition.</summary>
public sealed record KvWrite(string StoredKey, string ValueJson, long? ExpiresAtMs, KvCondition Condition = KvCondition.Always);

/// <summary>Redis's NX / XX: write only when the key is missing, or only when it exists.</summary>
public enum KvCondition
{
    Always,
    IfMissing,
    IfExists,
}

/// <summary>What an atomic update does with a key, decided from its live entry (<see cref="IKeyValueStore.UpdateKvAsync"/>).</summary>
public enum KvChangeKind
{
    None,
    Set,
    Delete,
    Expire,
}

/// <summary>
/// The change an atomic update makes: nothing, a new value and expiry (history "created" or "updated"), a
/// delete, or a new expiry that keeps the value (null: never). Delete and Expire of a missing key do nothing.
/// </summary>
public readonly record struct KvChange(KvChangeKind Kind, string? ValueJson = null, long? ExpiresAtMs = null)
{
    public static KvChange Keep => default;

    public static KvChange Remove => new(KvChangeKind.Delete);

    public static KvChange Write(string valueJson, long? expiresAtMs) => new(KvChangeKind.Set, valueJson, expiresAtMs);

    public static KvChange ExpireAt(long? expiresAtMs) => new(KvChangeKind.Expire, null, expiresAtMs);
}

/// <summary>What an atomic update found (the live entry before it, null when missing or expired) and whether it changed the key.</summary>
public sealed record KvUpdated(KvEntry? Previous, bool Changed);

/// <summary>What a set did: created a new entry or replaced a live one; its version and change-log seq.</summary>
public readonly record struct KvSetResult(bool Created, long Version, long Seq);

/// <summary>One bounded step of a pattern delete: <see cref="LastKey"/> (a stored key) is where the next step starts; null when done.</summary>
public sealed record KvDeleteStep(int Deleted, string? LastKey);

/// <summary>A page of a listing; <see cref="LastKey"/> is the stored key to continue after, null on the last page.</summary>
public sealed record KvStoredPage(IReadOnlyList<KvEntry> Items, string? LastKey);

/// <summary>
/// The live entries matching a pattern: how many, how many of them expire, and the mean time those have left
/// (milliseconds, 0 when none expires): Redis's DBSIZE and the <c>keys</c>, <c>expires</c> and <c>avg_ttl</c> of INFO keyspace.
/// </summary>
public readonly record struct KvCount(long Keys, long Expiring, long AverageTtlMs);

/// <summary>One history entry of a key: set, incremented, ttl, deleted, expired, with the actor and the value after it.</summary>
public sealed record KvHistoryEntry(long Seq, string Event, string Actor, DateTimeOffset At, long Version, string? ValueJson, DateTimeOffset? ExpiresAt);

/// <summary>
/// Up to a page of a key's history in chronological order; <see cref="Next"/> is the newest entry the
/// page did not reach (where the next, older page starts), null when this page reaches the key's first entry.
/// </summary>
public sealed record KvHistoryPage(IReadOnlyList<KvHistoryEntry> Items, long? Next);

/// <summary>What one pruning pass did: entries deleted, the position to continue after, and whether older entries may remain.</summary>
public sealed record KvHistoryPruning(int Deleted, long LastHistoryId, bool More);

/// <summary>The names of the history events of key-value entries.</summary>
public static class KvEvents
{
    public const string Created = "created";
    public const string Updated = "updated";
    public const string Incremented = "incremented";
    public const string TtlChanged = "ttl_changed";
    public const string Deleted = "deleted";
    public const string Expired = "expired";
}
