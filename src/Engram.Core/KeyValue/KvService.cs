using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Security;

namespace Engram.Core.KeyValue;

/// <summary>
/// The one entry to key-value state (REST, CLI and benchmarks call it): validates keys, values,
/// TTLs and patterns, applies the tenant naming convention (<see cref="KvKeys"/>) and turns TTLs
/// into expiry times with the injected clock. Each method checks the caller's role and hands the
/// store the caller's partition (<see cref="ScopeGuard.Partition"/>): a scoped key reads and writes a
/// namespace of its own under the tenant, while keys are still named (and shown) with the tenant.
/// </summary>
public sealed class KvService(IKeyValueStore store, KvOptions options, TimeProvider clock, Operations.WriteGate? gate = null)
{
    public KvOptions Options => options;

    public async Task<KvWritten> SetAsync(Caller caller, string? key, JsonElement value, long? ttlSeconds, bool nx = false, bool xx = false, CancellationToken ct = default)
    {
        var partition = Enter(caller, Role.Write, "write keys");
        if (nx && xx)
        {
            throw new ValidationException("nx", "nx and xx exclude each other");
        }
        var write = ToWrite(caller, key, value, ttlSeconds, "", nx ? KvCondition.IfMissing : xx ? KvCondition.IfExists : KvCondition.Always);
        var result = await store.SetKvAsync(partition, write, options.Durability, ct: ct).ConfigureAwait(false);
        return Written(key!, result, write.ExpiresAtMs);
    }

    public async Task<IReadOnlyList<KvWritten>> SetManyAsync(Caller caller, IReadOnlyList<KvSetItem?>? items, CancellationToken ct = default)
    {
        var partition = Enter(caller, Role.Write, "write keys");
        CheckBatch(items, "items");
        var writes = new KvWrite[items!.Count];
        for (var i = 0; i < writes.Length; i++)
        {
            var item = items[i] ?? throw new ValidationException($"items[{i}]", "an item must be an object");
            writes[i] = ToWrite(caller, item.Key, item.Value, item.TtlSeconds, $"items[{i}].", KvCondition.Always);
        }
        var results = await store.SetManyKvAsync(partition, writes, options.Durability, ct: ct).ConfigureAwait(false);
        return [.. results.Select((r, i) => Written(items[i]!.Key!, r, writes[i].ExpiresAtMs))];
    }

    public async Task<KvItem> GetAsync(Caller caller, string? key, CancellationToken ct = default)
    {
        var partition = Enter(caller, Role.Read, "read keys");
        KvKeys.Validate(key);
        var entry = await store.GetKvAsync(partition, KvKeys.ToStored(caller.Tenant, key!), ct).ConfigureAwait(false)
            ?? throw new NotFoundException($"no key '{key}'");
        var (ttl, expires) = Ttl(entry.ExpiresAtMs);
        return new KvItem(key!, Parse(entry.ValueJson), ttl, expires);
    }

    public async Task<IReadOnlyList<KvLookup>> GetManyAsync(Caller caller, IReadOnlyList<string?>? keys, CancellationToken ct = default)
    {
        var partition = CheckGetMany(caller, keys);
        var entries = await store.GetManyKvAsync(partition, [.. keys.Select(k => KvKeys.ToStored(caller.Tenant, k!))], ct).ConfigureAwait(false);
        return [.. entries.Select((entry, i) =>
        {
            if (entry is null)
            {
                return new KvLookup(keys[i]!, false, null, null, null);
            }
            var (ttl, expires) = Ttl(entry.ExpiresAtMs);
            return new KvLookup(keys[i]!, true, Parse(entry.ValueJson), ttl, expires);
        })];
    }

    /// <summary><see cref="GetManyAsync"/> with the values as stored text, parsed only when written (see <see cref="StoredJsonText"/>).</summary>
    public async Task<IReadOnlyList<KvStoredLookup>> GetManyStoredAsync(Caller caller, IReadOnlyList<string?>? keys, CancellationToken ct = default)
    {
        var partition = CheckGetMany(caller, keys);
        var entries = await store.GetManyKvAsync(partition, [.. keys.Select(k => KvKeys.ToStored(caller.Tenant, k!))], ct).ConfigureAwait(false);
        return [.. entries.Select((entry, i) =>
        {
            if (entry is null)
            {
                return new KvStoredLookup(keys[i]!, false, null, null, null);
            }
            var (ttl, expires) = Ttl(entry.ExpiresAtMs);
            return new KvStoredLookup(keys[i]!, true, new StoredJsonText(entry.ValueJson), ttl, expires);
        })];
    }

    public async Task DeleteAsync(Caller caller, string? key, CancellationToken ct = default)
    {
        var partition = Enter(caller, Role.Write, "delete keys");
        KvKeys.Validate(key);
        if (!await store.DeleteKvAsync(partition, KvKeys.ToStored(caller.Tenant, key!), options.Durability, ct: ct).ConfigureAwait(false))
        {
            throw new NotFoundException($"no key '{key}'");
        }
    }

    public Task<long> IncrementAsync(Caller caller, string? key, long by = 1, CancellationToken ct = default) =>
        IncrementAsync(caller, key, by, textIntegers: false, ct);

    /// <summary>
    /// <see cref="IncrementAsync(Caller, string?, long, CancellationToken)"/>; <paramref name="textIntegers"/>: a JSON string
    /// holding a canonical integer (<c>"42"</c>) counts as that integer. Over RESP a value is its text, so <c>GET</c> shows
    /// both <c>42</c> and <c>"42"</c> as 42 and <c>INCR</c> must take both, as Redis would; REST keeps JSON's types.
    /// <paramref name="afterWritesUnderWay"/>: as for <see cref="SetPreparedAsync(KvPreparedSet, bool, CancellationToken)"/>.
    /// </summary>
    public Task<long> IncrementAsync(Caller caller, string? key, long by, bool textIntegers, CancellationToken ct = default, bool afterWritesUnderWay = false)
    {
        var partition = Enter(caller, Role.Write, "write keys");
        KvKeys.ValidateForWrite(key);
        return store.IncrementKvAsync(partition, KvKeys.ToStored(caller.Tenant, key!), by, ExpiresAt(null, "ttl_seconds"), options.Durability, textIntegers,
            afterWritesUnderWay, ct);
    }

    /// <summary>Gives the key a new TTL (0: never expires); returns its new state.</summary>
    public async Task<KvItem> ExpireAsync(Caller caller, string? key, long? ttlSeconds, CancellationToken ct = default)
    {
        var partition = Enter(caller, Role.Write, "write keys");
        KvKeys.Validate(key);
        if (ttlSeconds is null)
        {
            throw new ValidationException("ttl_seconds", "ttl_seconds is required (0 removes the expiry)");
        }
        var stored = KvKeys.ToStored(caller.Tenant, key!);
        if (!await store.ExpireKvAsync(partition, stored, ExpiresAt(ttlSeconds, "ttl_seconds"), options.Durability, ct: ct).ConfigureAwait(false))
        {
            throw new NotFoundException($"no key '{key}'");
        }
        return await GetAsync(caller, key, ct).ConfigureAwait(false);
    }

    public async Task<KvPage> ListAsync(Caller caller, string? pattern, int? limit, string? cursor, CancellationToken ct = default)
    {
        var partition = Enter(caller, Role.Read, "list keys");
        var take = limit ?? options.DefaultListLimit;
        if (take < 1 || take > options.MaxListLimit)
        {
            throw new ValidationException("limit", $"limit must be between 1 and {options.MaxListLimit} (got {take})");
        }
        var glob = pattern is null ? KvGlob.All : KvGlob.Parse(caller.Tenant, pattern);
        var page = await store.ListKvAsync(partition, glob, take, cursor is null ? null : DecodeCursor(cursor, glob), ct).ConfigureAwait(false);
        var items = page.Items.Select(e =>
        {
            var (ttl, expires) = Ttl(e.ExpiresAtMs);
            return new KvKeyInfo(KvKeys.ToDisplay(caller.Tenant, e.StoredKey), ttl, expires, e.Version, DateTimeOffset.FromUnixTimeMilliseconds(e.UpdatedAtMs));
        }).ToList();
        return new KvPage(items, page.LastKey is null ? null : EncodeCursor(page.LastKey));
    }

    /// <summary>
    /// How many live keys the caller has, how many of them expire and their mean time left: one query of the store,
    /// where a listing would page through every key.
    /// </summary>
    public Task<KvCount> CountAsync(Caller caller, CancellationToken ct = default) =>
        store.CountKvAsync(Enter(caller, Role.Read, "count keys"), KvGlob.All, ct);

    /// <summary>
    /// Deletes the caller's keys matching <paramref name="pattern"/> for at most
    /// <see cref="KvOptions.CleanupBudgetMs"/> (one request must not hold a client for half a minute);
    /// when keys are left, the result carries a cursor: the same call with it continues after the last
    /// key deleted. Keys written behind the cursor meanwhile are not revisited (as with SCAN).
    /// </summary>
    public async Task<KvCleanupResult> CleanupStepAsync(Caller caller, string? pattern, string? cursor, CancellationToken ct = default)
    {
        // A bulk delete of keys needs the write role: it reaches only the caller's own partition.
        var partition = Enter(caller, Role.Write, "delete keys");
        var glob = KvGlob.Parse(caller.Tenant, pattern);
        var step = await store.DeleteMatchingKvAsync(partition, glob, cursor is null ? null : DecodeCursor(cursor, glob),
            TimeSpan.FromMilliseconds(options.CleanupBudgetMs), options.Durability, ct).ConfigureAwait(false);
        return new KvCleanupResult(step.Deleted, step.LastKey is null, step.LastKey is null ? null : EncodeCursor(step.LastKey));
    }

    /// <summary>Deletes every key of the caller matching <paramref name="pattern"/>, step after step; returns how many.</summary>
    public async Task<int> CleanupAsync(Caller caller, string? pattern, CancellationToken ct = default)
    {
        var total = 0;
        string? cursor = null;
        do
        {
            var step = await CleanupStepAsync(caller, pattern, cursor, ct).ConfigureAwait(false);
            total += step.Deleted;
            cursor = step.NextCursor;
        }
        while (cursor is not null);
        return total;
    }

    /// <summary>
    /// The key's history, newest <paramref name="limit"/> entries first fetched, returned in chronological
    /// order; <see cref="KvHistoryResult.NextCursor"/> continues with the entries before them.
    /// </summary>
    /// <summary>
    /// A history page ends early (with a cursor) once its values reach this many characters: 1,000 versions of a
    /// 1 MB value would otherwise be read and parsed at once. Callers page with the cursor as they do past the limit.
    /// </summary>
    public const long HistoryPageValueChars = 8 * 1024 * 1024;

    public async Task<KvHistoryResult> GetHistoryAsync(Caller caller, string? key, int? limit = null, string? cursor = null, CancellationToken ct = default)
    {
        var partition = Enter(caller, Role.Read, "read key history");
        KvKeys.Validate(key);
        var take = limit ?? options.DefaultListLimit;
        if (take < 1 || take > options.MaxListLimit)
        {
            throw new ValidationException("limit", $"limit must be between 1 and {options.MaxListLimit} (got {take})");
        }
        long? from = null;
        if (cursor is not null)
        {
            from = long.TryParse(cursor, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var hid) && hid > 0
                ? hid
                : throw new ValidationException("cursor", "the cursor is not one this server returned");
        }
        var page = await store.GetKvHistoryAsync(partition, KvKeys.ToStored(caller.Tenant, key!), take, from, HistoryPageValueChars, ct).ConfigureAwait(false);
        if (page.Items.Count == 0 && cursor is null)
        {
            throw new NotFoundException($"key '{key}' has no history");
        }
        var items = page.Items.Select(h => new KvHistoryItem(h.Seq, h.Event, h.Actor, h.At, h.Version, h.ValueJson is null ? null : Parse(h.ValueJson), h.ExpiresAt)).ToList();
        return new KvHistoryResult(items, page.Next?.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    // The raw entry points of the Redis protocol endpoint (Engram.Server.Resp): the same role checks, write
    // gate, key rules, tenant naming and store calls as above, but the value is JSON text the caller built
    // (RESP values are bytes) and entries come back unparsed, so a GET costs no JSON parse.

    /// <summary>Unix milliseconds now, by the service's clock.</summary>
    public long NowMs
    {
        get
        {
            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            NoteNow(now);
            return now;
        }
    }

    /// <summary>The expiry a write without a TTL gets (<see cref="KvOptions.DefaultTtlSeconds"/>; null: never).</summary>
    public long? DefaultExpiresAtMs() => ExpiresAt(null, "ttl_seconds");

    /// <summary><see cref="DefaultExpiresAtMs()"/> from a reading of <see cref="NowMs"/> the caller made (one for a pipeline of SETs).</summary>
    public long? DefaultExpiresAtMs(long nowMs)
    {
        NoteNow(nowMs);
        return options.DefaultTtlSeconds == 0 ? null : nowMs + options.DefaultTtlSeconds * 1000;
    }

    /// <summary>The latest reading of the wall clock made here: the clock is at or past it (see <see cref="TooFarAhead"/>).</summary>
    private long _latestNowMs;

    private void NoteNow(long nowMs)
    {
        if (nowMs > Volatile.Read(ref _latestNowMs))
        {
            Volatile.Write(ref _latestNowMs, nowMs); // a lost race leaves an older reading: still at or before the clock
        }
    }

    /// <summary>
    /// Whether an expiry is more than <see cref="KvOptions.MaxTtlSeconds"/> away. Against the latest reading first: the clock
    /// is at or past it, so an expiry within the limit of that reading is within the limit of now, and the clock is read only
    /// for an expiry beyond it (a plain SET's expiry was its second reading of the clock).
    /// </summary>
    private bool TooFarAhead(long expiresAtMs) =>
        expiresAtMs > Volatile.Read(ref _latestNowMs) + KvOptions.MaxTtlSeconds * 1000 && expiresAtMs > NowMs + KvOptions.MaxTtlSeconds * 1000;

    /// <summary>The live entry of <paramref name="key"/>, unparsed; null when missing or expired.</summary>
    public Task<KvEntry?> GetEntryAsync(Caller caller, string key, CancellationToken ct = default)
    {
        var partition = Enter(caller, Role.Read, "read keys");
        KvKeys.Validate(key);
        return store.GetKvAsync(partition, KvKeys.ToStored(caller.Tenant, key), ct);
    }

    /// <summary>
    /// Whether <see cref="GetEntryAsync"/> of <paramref name="key"/> would answer without blocking the calling thread
    /// (<see cref="IKeyValueStore.ReadsKvWithoutBlocking"/>); false for a key the checks would refuse, whose error
    /// then comes from <see cref="GetEntryAsync"/> itself.
    /// </summary>
    public bool ReadsWithoutBlocking(Caller caller, string key) =>
        TryReadKey(caller, key, out var partition, out var stored) && store.ReadsKvWithoutBlocking(partition, stored);

    /// <summary>
    /// <see cref="GetEntryAsync"/> without a task when the store holds the key's state in memory and the caller may read
    /// it; false otherwise (also for a key the checks refuse), and <see cref="GetEntryAsync"/> answers, or throws.
    /// </summary>
    [System.Runtime.CompilerServices.SkipLocalsInit] // the buffers are read only where written
    public bool TryGetEntryFromMemory(Caller caller, ReadOnlySpan<byte> utf8Key, out KvEntry? entry)
    {
        // The key is decoded and given its tenant in buffers on the stack: a pipelined GET allocates nothing here.
        entry = null;
        Span<char> key = stackalloc char[KvOptions.MaxKeyBytes];
        if (caller.Role < Role.Read || utf8Key.Length > KvOptions.MaxKeyBytes
            || System.Text.Unicode.Utf8.ToUtf16(utf8Key, key, out _, out var chars, replaceInvalidSequences: false) != System.Buffers.OperationStatus.Done
            || !KvKeys.IsValid(key[..chars]))
        {
            return false;
        }
        Span<char> buffer = stackalloc char[KvOptions.MaxKeyBytes + 1 + 128];
        return KvKeys.TryToStored(caller.Tenant, key[..chars], buffer, out var stored)
            && store.TryGetKvFromMemory(ScopeGuard.Enter(caller, Role.Read, "read keys").Partition(), stored, out entry);
    }

    /// <summary>
    /// <see cref="GetEntryAsync"/>'s checks without exceptions, for the fast paths: false when the caller may not read or the
    /// key is not plainly valid (<see cref="KvKeys.IsValid"/>), and the checked path then answers with the error.
    /// </summary>
    private static bool TryReadKey(Caller caller, string key, out Caller partition, out string stored)
    {
        partition = caller;
        stored = key;
        if (caller.Role < Role.Read || !KvKeys.IsValid(key))
        {
            return false;
        }
        partition = ScopeGuard.Enter(caller, Role.Read, "read keys").Partition(); // the role is checked: it does not throw
        stored = KvKeys.ToStored(caller.Tenant, key);
        return true;
    }

    /// <summary>The live entries of <paramref name="keys"/> in order, unparsed; null where missing.</summary>
    public Task<IReadOnlyList<KvEntry?>> GetEntriesAsync(Caller caller, IReadOnlyList<string> keys, CancellationToken ct = default)
    {
        var partition = CheckGetMany(caller, keys);
        var stored = new string[keys.Count];
        for (var i = 0; i < stored.Length; i++)
        {
            stored[i] = KvKeys.ToStored(caller.Tenant, keys[i]);
        }
        return store.GetManyKvAsync(partition, stored, ct);
    }

    /// <summary>
    /// What <see cref="GetManyAsync"/> and <see cref="GetEntriesAsync"/> check (role, batch size, every key), without
    /// reading: a caller that reads the keys in parts (mget over HTTP and RESP, sent as they are read) fails before it
    /// has answered any of them. Returns the caller's partition.
    /// </summary>
    public Caller CheckGetMany(Caller caller, [System.Diagnostics.CodeAnalysis.NotNull] IReadOnlyList<string?>? keys, int? limit = null)
    {
        var partition = Enter(caller, Role.Read, "read keys");
        CheckBatch(keys, "keys", limit);
        for (var i = 0; i < keys!.Count; i++)
        {
            KvKeys.Validate(keys[i], $"keys[{i}]");
        }
        return partition;
    }

    /// <summary>
    /// Sets <paramref name="key"/> to <paramref name="valueJson"/> (valid JSON the caller produced) expiring at
    /// <paramref name="expiresAtMs"/> (null: never); false when the nx/xx condition does not hold.
    /// </summary>
    public async Task<bool> SetJsonAsync(Caller caller, string key, string valueJson, long? expiresAtMs, KvCondition condition, CancellationToken ct = default)
    {
        var partition = Enter(caller, Role.Write, "write keys");
        var write = ToJsonWrite(caller, key, valueJson, expiresAtMs, "");
        try
        {
            await store.SetKvAsync(partition, write with { Condition = condition }, options.Durability, ct: ct).ConfigureAwait(false);
            return true;
        }
        catch (ConflictException) when (condition != KvCondition.Always)
        {
            return false;
        }
    }

    /// <summary>
    /// An unconditional SET checked as <see cref="SetJsonAsync"/> checks it (role, write gate, key, value size, expiry)
    /// but not written yet: the RESP endpoint collects a pipelined run of them and writes it with
    /// <see cref="SetPreparedAsync"/>, one hand-off to the store's writer instead of one per SET.
    /// </summary>
    public KvPreparedSet PrepareSet(Caller caller, string key, string valueJson, long? expiresAtMs)
    {
        var partition = Enter(caller, Role.Write, "write keys");
        return new KvPreparedSet(partition, ToJsonWrite(caller, key, valueJson, expiresAtMs, ""));
    }

    /// <summary>
    /// Writes SETs from <see cref="PrepareSet"/> of one <paramref name="partition"/>, in order, in one store write
    /// (one transaction; unconditional writes cannot fail one by one, so they succeed or fail together).
    /// <paramref name="afterWritesUnderWay"/>: the caller has earlier writes it has not heard back from, which these
    /// must follow (<see cref="IKeyValueStore.SetKvAsync"/>).
    /// </summary>
    public Task<IReadOnlyList<KvSetResult>> SetPreparedAsync(Caller partition, IReadOnlyList<KvWrite> writes, bool afterWritesUnderWay = false,
        CancellationToken ct = default) =>
        store.SetManyKvAsync(partition, writes, options.Durability, afterWritesUnderWay, ct);

    /// <summary>Writes one SET from <see cref="PrepareSet"/> (an unpipelined client's); <paramref name="afterWritesUnderWay"/> as above.</summary>
    public Task<KvSetResult> SetPreparedAsync(KvPreparedSet set, bool afterWritesUnderWay = false, CancellationToken ct = default) =>
        store.SetKvAsync(set.Partition, set.Write, options.Durability, afterWritesUnderWay, ct);

    /// <summary>Whether a write is on disk when it is acknowledged (full durability), so that waiting for the disk is never needed.</summary>
    public bool WritesSyncedOnAcknowledgement => options.Durability == Storage.WriteDurability.Full;

    /// <summary>
    /// Returns once every key-value write acknowledged so far is on disk: at once with full durability (each was synced
    /// before its acknowledgement), after one sync of the store with relaxed durability (RESP's WAITAOF).
    /// </summary>
    public Task SyncAsync(Caller caller, CancellationToken ct = default)
    {
        Enter(caller, Role.Read, "wait for the disk");
        return WritesSyncedOnAcknowledgement ? Task.CompletedTask : store.SyncKvAsync(ct);
    }

    /// <summary>Sets every key in one transaction (values are JSON text the caller produced).</summary>
    public Task<IReadOnlyList<KvSetResult>> SetManyJsonAsync(Caller caller, IReadOnlyList<(string Key, string ValueJson)> items, long? expiresAtMs,
        CancellationToken ct = default, int? limit = null, bool afterWritesUnderWay = false)
    {
        var partition = Enter(caller, Role.Write, "write keys");
        CheckBatch(items, "items", limit);
        var writes = new KvWrite[items.Count];
        for (var i = 0; i < writes.Length; i++)
        {
            writes[i] = ToJsonWrite(caller, items[i].Key, items[i].ValueJson, expiresAtMs, $"items[{i}].");
        }
        return store.SetManyKvAsync(partition, writes, options.Durability, afterWritesUnderWay, ct);
    }

    /// <summary>
    /// Deletes the key; false when there was no live entry. <paramref name="afterWritesUnderWay"/>: as for
    /// <see cref="SetPreparedAsync(KvPreparedSet, bool, CancellationToken)"/>.
    /// </summary>
    public Task<bool> DeleteKeyAsync(Caller caller, string key, CancellationToken ct = default, bool afterWritesUnderWay = false)
    {
        var partition = Enter(caller, Role.Write, "delete keys");
        KvKeys.Validate(key);
        return store.DeleteKvAsync(partition, KvKeys.ToStored(caller.Tenant, key), options.Durability, afterWritesUnderWay, ct);
    }

    /// <summary>
    /// Deletes the keys in one step of the store (atomic, as Redis's DEL of several keys); a key named twice counts once.
    /// Returns how many live entries were deleted.
    /// </summary>
    public Task<int> DeleteKeysAsync(Caller caller, IReadOnlyList<string> keys, CancellationToken ct = default, bool afterWritesUnderWay = false)
    {
        var partition = Enter(caller, Role.Write, "delete keys");
        var stored = new List<string>(keys.Count);
        var seen = new HashSet<string>(keys.Count, StringComparer.Ordinal);
        foreach (var key in keys)
        {
            KvKeys.Validate(key);
            var storedKey = KvKeys.ToStored(caller.Tenant, key);
            if (seen.Add(storedKey))
            {
                stored.Add(storedKey);
            }
        }
        return store.DeleteManyKvAsync(partition, stored, options.Durability, afterWritesUnderWay, ct);
    }

    /// <summary>
    /// The most keys one transaction may name (its commands' keys and the watched ones together). Its working set lives in
    /// memory for the step, a few hundred bytes a key beside the values (which <see cref="KvTransaction.MaxReadChars"/>
    /// bounds); what a RESP client can queue (<c>RespConnection.MaxQueuedBytes</c>) stays below it in practice. It was
    /// 10,000, and redis-py's default pipeline (MULTI … EXEC) of more commands than that failed where Redis runs it.
    /// </summary>
    public const int MaxTransactionKeys = 1_000_000;

    /// <summary>
    /// The most keys a transaction may touch beyond those it named (a script that builds key names): each is read from
    /// the store when first touched, inside the step (a round trip on PostgreSQL).
    /// </summary>
    public const int MaxUndeclaredKeys = 10_000;

    /// <summary>
    /// Runs <paramref name="run"/> as one transaction over <paramref name="keys"/> (Redis's MULTI/EXEC): the
    /// <see cref="KvTransactionView.Kv"/> it gets is this service over the keys' entries as one step of the store read
    /// them, with every check of a call as here (roles, read-only mode, values, TTLs), and the changes its calls make
    /// are written in order in that step, with nothing between. Keys that are not valid are left out (a call on one
    /// fails as it would outside). <paramref name="run"/> must complete synchronously and may run twice (a retried
    /// write); when it throws, nothing is written.
    /// </summary>
    public Task<T> TransactAsync<T>(Caller caller, IEnumerable<string> keys, Func<KvTransactionView, T> run, CancellationToken ct = default)
    {
        var partition = Enter(caller, Role.Read, "read keys");
        var stored = keys.Where(KvKeys.IsValid).Select(k => KvKeys.ToStored(caller.Tenant, k)).Distinct(StringComparer.Ordinal).ToList();
        if (stored.Count > MaxTransactionKeys)
        {
            throw new ValidationException("keys", $"the transaction names {stored.Count} keys; the limit is {MaxTransactionKeys}");
        }
        return store.TransactKvAsync(partition, stored,
            transaction => run(new KvTransactionView(new KvService(transaction, options, clock, gate), transaction, caller.Tenant)), options.Durability, ct);
    }

    /// <summary>
    /// Reads the key's live entry and makes the change <paramref name="decide"/> returns, in one step of the
    /// store that no other write of the key interleaves with (SET … GET, GETDEL, GETEX, EXPIRE NX/XX/GT/LT,
    /// PERSIST over RESP). A new value or expiry is checked as any write's (size, farthest expiry); the
    /// decision may throw to refuse. Needs the write role even when nothing changes. <paramref name="afterWritesUnderWay"/>: as
    /// for <see cref="SetPreparedAsync(KvPreparedSet, bool, CancellationToken)"/>.
    /// </summary>
    public Task<KvUpdated> UpdateAsync(Caller caller, string key, Func<KvEntry?, long, KvChange> decide, CancellationToken ct = default,
        bool afterWritesUnderWay = false)
    {
        var partition = Enter(caller, Role.Write, "write keys");
        KvKeys.Validate(key);
        return store.UpdateKvAsync(partition, KvKeys.ToStored(caller.Tenant, key), (entry, now) => Checked(key, decide(entry, now), now), options.Durability,
            afterWritesUnderWay, ct);
    }

    private KvChange Checked(string key, KvChange change, long now)
    {
        if (change.Kind == KvChangeKind.Set)
        {
            // Only a write of a value: GETDEL, PERSIST or EXPIRE of a key written before the rule still works.
            KvKeys.ValidateForWrite(key);
        }
        if (change.Kind == KvChangeKind.Set && Encoding.UTF8.GetByteCount(change.ValueJson!) is var bytes && bytes > options.MaxValueBytes)
        {
            throw new ValidationException("value", $"the value is {bytes} bytes of JSON; the limit is {options.MaxValueBytes}");
        }
        if (change.Kind is KvChangeKind.Set or KvChangeKind.Expire && change.ExpiresAtMs is { } expires && expires > now + KvOptions.MaxTtlSeconds * 1000)
        {
            throw new ValidationException("ttl_seconds", $"the expiry is more than {KvOptions.MaxTtlSeconds} seconds away");
        }
        return change;
    }

    private KvWrite ToJsonWrite(Caller caller, string key, string valueJson, long? expiresAtMs, string fieldPrefix)
    {
        KvKeys.ValidateForWrite(key, fieldPrefix + "key");
        var bytes = Encoding.UTF8.GetByteCount(valueJson);
        if (bytes > options.MaxValueBytes)
        {
            throw new ValidationException(fieldPrefix + "value", $"the value is {bytes} bytes of JSON; the limit is {options.MaxValueBytes}");
        }
        if (expiresAtMs is { } expires && TooFarAhead(expires))
        {
            throw new ValidationException(fieldPrefix + "ttl_seconds", $"the expiry is more than {KvOptions.MaxTtlSeconds} seconds away");
        }
        return new KvWrite(KvKeys.ToStored(caller.Tenant, key), valueJson, expiresAtMs);
    }

    /// <summary>The role check; for a write also the <see cref="Operations.WriteGate"/> (read-only mode, memory budget).</summary>
    private Caller Enter(Caller caller, Role needed, string action)
    {
        var partition = ScopeGuard.Enter(caller, needed, action).Partition();
        if (needed >= Role.Write)
        {
            gate?.Check(action);
        }
        return partition;
    }

    private KvWrite ToWrite(Caller caller, string? key, JsonElement value, long? ttlSeconds, string fieldPrefix, KvCondition condition)
    {
        KvKeys.ValidateForWrite(key, fieldPrefix + "key");
        if (value.ValueKind == JsonValueKind.Undefined)
        {
            throw new ValidationException(fieldPrefix + "value", "value is required (any JSON, including null)");
        }
        CheckValue(value, options.MaxValueBytes, fieldPrefix + "value");
        var json = value.GetRawText();
        return new KvWrite(KvKeys.ToStored(caller.Tenant, key!), json, ExpiresAt(ttlSeconds, fieldPrefix + "ttl_seconds"), condition);
    }

    /// <summary>
    /// The rules of a JSON value written over REST (and of an imported one): at most <paramref name="maxValueBytes"/> bytes
    /// of JSON text, every string and key valid Unicode, at most <see cref="StoredJsonRules.MaxDepth"/> levels deep. Checked on the value's own bytes: turning invalid UTF-8 into a
    /// string would throw. A NUL character (<c>\u0000</c>) is allowed: the value is JSON text on both stores, and RESP writes
    /// bytes that hold it, which an export then carries (refusing it here made such a store's export fail to import).
    /// </summary>
    public static void CheckValue(JsonElement value, int maxValueBytes, string field)
    {
        var bytes = UnicodeText.RawUtf8(value).Length;
        if (bytes > maxValueBytes)
        {
            throw new ValidationException(field, $"the value is {bytes} bytes of JSON; the limit is {maxValueBytes}");
        }
        StoredJsonRules.Require(value, field, nulAllowed: true);
    }

    /// <summary>Null TTL: the default; 0: never expires.</summary>
    private long? ExpiresAt(long? ttlSeconds, string field)
    {
        var ttl = ttlSeconds ?? options.DefaultTtlSeconds;
        if (ttl < 0 || ttl > KvOptions.MaxTtlSeconds)
        {
            throw new ValidationException(field, $"ttl_seconds must be between 0 (no expiry) and {KvOptions.MaxTtlSeconds} (got {ttl})");
        }
        return ttl == 0 ? null : NowMs + ttl * 1000;
    }

    private (long Ttl, DateTimeOffset? ExpiresAt) Ttl(long? expiresAtMs)
    {
        if (expiresAtMs is not { } expires)
        {
            return (0, null);
        }
        var left = expires - clock.GetUtcNow().ToUnixTimeMilliseconds();
        return (Math.Max(1, (left + 999) / 1000), DateTimeOffset.FromUnixTimeMilliseconds(expires));
    }

    private KvWritten Written(string key, KvSetResult result, long? expiresAtMs)
    {
        var (ttl, expires) = Ttl(expiresAtMs);
        return new KvWritten(key, result.Created, result.Version, ttl, expires);
    }

    /// <summary>
    /// A batch must have entries and at most <paramref name="limit"/> (<see cref="KvOptions.MaxBatchItems"/> unless the
    /// caller has a bound of its own: the RESP endpoint's is its command size, as Redis's MGET and MSET have no count).
    /// </summary>
    private void CheckBatch<T>(IReadOnlyList<T>? items, string field, int? limit = null)
    {
        if (items is null || items.Count == 0)
        {
            throw new ValidationException(field, $"{field} must be a non-empty array");
        }
        var most = limit ?? options.MaxBatchItems;
        if (items.Count > most)
        {
            throw new ValidationException(field, $"{field} has {items.Count} entries; the limit is {most}");
        }
    }

    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static string EncodeCursor(string storedKey) => Convert.ToBase64String(Encoding.UTF8.GetBytes(storedKey)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>
    /// The stored key a cursor stands for, checked strictly: the canonical base64url of UTF-8 text that the page's pattern
    /// matches (every cursor this server returns is the last key of a page of that pattern). Decoding leniently read
    /// "garbage" as a junk key to start after, so a listing answered an empty last page and a cleanup said "done" with
    /// keys left.
    /// </summary>
    private static string DecodeCursor(string cursor, KvGlob glob)
    {
        string? key = null;
        try
        {
            var base64 = cursor.Replace('-', '+').Replace('_', '/');
            base64 = base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=');
            key = StrictUtf8.GetString(Convert.FromBase64String(base64));
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            // not base64, or not UTF-8 (DecoderFallbackException is an ArgumentException)
        }
        if (key is null || key.Length == 0 || EncodeCursor(key) != cursor || !glob.Matches(key))
        {
            throw new ValidationException("cursor", "the cursor is not one this server returned for this pattern; pass next_cursor from the previous answer unchanged");
        }
        return key;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}

/// <summary>What a transaction's commands run on (<see cref="KvService.TransactAsync{T}"/>): the service over its keys, and their history heads.</summary>
public sealed class KvTransactionView(KvService kv, KvTransaction transaction, string tenant)
{
    public KvService Kv => kv;

    /// <summary>
    /// The head of the key's history when the transaction read it (0: none); any change of the key since an earlier
    /// read moves it (Redis's WATCH compares it).
    /// </summary>
    public long HeadAtStart(string key) => transaction.HeadAtStart(KvKeys.ToStored(tenant, key));

    /// <summary>When the key, live when the transaction read it, expires (null: missing then, or no expiry).</summary>
    public long? ExpiryAtStart(string key) => transaction.ExpiryAtStart(KvKeys.ToStored(tenant, key));

    /// <summary>The transaction's time (unix ms): a key whose expiry is at or before it has expired.</summary>
    public long NowMs => transaction.NowMs;

    /// <summary>Where the transaction is now: <see cref="RollBack"/> undoes everything its commands did after it.</summary>
    public KvTransaction.Savepoint Save() => transaction.Save();

    public void RollBack(KvTransaction.Savepoint savepoint) => transaction.RollBack(savepoint);
}
