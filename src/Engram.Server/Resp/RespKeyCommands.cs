using System.Globalization;
using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;

namespace Engram.Server.Resp;

/// <summary>
/// The commands a swarm's state needs: GET (from memory when it can), SET and its forms, GETEX, the EXPIRE family, SCAN and KEYS,
/// DEL/UNLINK, EXISTS and MGET. Each goes through <see cref="KvService"/>.
/// </summary>
internal sealed partial class RespConnection
{
    /// <summary>
    /// GET answered from memory with no task or state machine: the hot command of a cache client. Anything else (another
    /// command, writes of the batch still waiting for their replies, a key check due, a key not in memory, a refusal)
    /// returns false and takes <see cref="ExecuteAsync"/>, which does the same with every check.
    /// </summary>
    private bool TryGetFromMemory()
    {
        if (_argCount != 2 || _pending.Count != 0 || _sets.Count != 0 || _scripts.Count != 0 || InMulti || !Is(0, "GET"u8) || !TryCallerNow(out var caller)
            || !_kv.TryGetEntryFromMemory(caller, Arg(1), out var entry))
        {
            return false;
        }
        _tally.Commands[RespStats.Get]++;
        if (entry is null)
        {
            _reply.Null();
        }
        else
        {
            _reply.Value(entry);
        }
        return true;
    }

    private async ValueTask GetAsync(CancellationToken ct)
    {
        if (!await ArityAsync(2, exact: true).ConfigureAwait(false))
        {
            return;
        }
        var key = Text(1);
        var caller = await CallerAsync(ct).ConfigureAwait(false);
        await DrainAsync().ConfigureAwait(false);
        if (caller is null)
        {
            _reply.Error(NoAuth);
            return;
        }
        if (OnEventThread && !_kv.ReadsWithoutBlocking(caller, key))
        {
            await Task.Yield(); // a read from SQLite, not from memory: off the socket event thread
        }
        var entry = await _kv.GetEntryAsync(caller, key, ct).ConfigureAwait(false);
        if (entry is null)
        {
            _reply.Null();
        }
        else
        {
            _reply.Value(entry);
        }
    }

    /// <summary>
    /// Whether <paramref name="command"/> (other than GET and SET, which check for themselves) may run on the socket
    /// event thread: it only hands a write to the store's writer, or reads keys whose states are in memory. Key
    /// checks, scans, INFO and the rest run on the thread pool.
    /// </summary>
    private bool RunsInline(string command)
    {
        switch (command)
        {
            case "PING" or "ECHO" or "QUIT" or "RESET" or "SELECT" or "CONFIG" or "DISCARD" or "UNWATCH":
                return true;
            case "SETNX" or "SETEX" or "PSETEX" or "DEL" or "UNLINK" or "INCR" or "DECR" or "INCRBY" or "DECRBY" or "GETDEL" or "GETSET" or "PERSIST"
                or "EXPIRE" or "PEXPIRE" or "EXPIREAT" or "PEXPIREAT" or "MSET":
                return true; // (a due key check moves itself to the pool: CheckCallerAsync)
            case "TTL" or "PTTL" or "TYPE" or "EXISTS" or "GETEX" or "MGET" or "STRLEN" or "EXPIRETIME" or "PEXPIRETIME":
                if (_argCount > 17)
                {
                    return false;
                }
                var caller = _authenticated ?? _listener.OpenCaller;
                for (var i = 1; i < _argCount; i++)
                {
                    if (RespWriter.TryDecode(Arg(i)) is not { } key || !_kv.ReadsWithoutBlocking(caller, key))
                    {
                        return false;
                    }
                }
                return true;
            default:
                return false;
        }
    }

    /// <summary>SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL].</summary>
    private async ValueTask SetAsync(CancellationToken ct)
    {
        if (!await ArityAsync(3, exact: false).ConfigureAwait(false))
        {
            return;
        }
        var caller = await CallerAsync(ct).ConfigureAwait(false);
        if (caller is null)
        {
            await DrainAsync().ConfigureAwait(false);
            _reply.Error(NoAuth);
            return;
        }
        var condition = KvCondition.Always;
        var get = false;
        var keepTtl = false;
        long? expiresAt = null;
        var hasExpiry = false;
        for (var i = 3; i < _argCount; i++)
        {
            var last = i == _argCount - 1;
            if (Is(i, "NX"u8) && condition == KvCondition.Always)
            {
                condition = KvCondition.IfMissing;
            }
            else if (Is(i, "XX"u8) && condition == KvCondition.Always)
            {
                condition = KvCondition.IfExists;
            }
            else if (Is(i, "GET"u8))
            {
                get = true;
            }
            else if (Is(i, "KEEPTTL"u8) && !hasExpiry)
            {
                keepTtl = true;
            }
            else if (!last && !keepTtl && !hasExpiry && (Is(i, "EX"u8) || Is(i, "PX"u8) || Is(i, "EXAT"u8) || Is(i, "PXAT"u8)))
            {
                var unit = Arg(i);
                if (!TryLong(i + 1, out var amount))
                {
                    await DrainAsync().ConfigureAwait(false);
                    _reply.Error(WrongInteger);
                    return;
                }
                if (!TryExpiry(unit, amount, out var at))
                {
                    await DrainAsync().ConfigureAwait(false);
                    _reply.Error("ERR invalid expire time in 'set' command");
                    return;
                }
                expiresAt = at;
                hasExpiry = true;
                i++;
            }
            else
            {
                await DrainAsync().ConfigureAwait(false);
                _reply.Error(Syntax);
                return;
            }
        }
        var key = Text(1);
        if (PendingCount >= MaxPending)
        {
            await DrainAsync().ConfigureAwait(false);
        }
        if (!get && !keepTtl)
        {
            StartSet(caller, key, 2, hasExpiry ? expiresAt : _kv.DefaultExpiresAtMs(ReadNowMs()), condition, condition == KvCondition.Always ? PendingKind.Ok : PendingKind.OkOrNull);
            return;
        }
        await SetReadingOldAsync(caller, key, condition, get, keepTtl, hasExpiry ? expiresAt : _kv.DefaultExpiresAtMs(), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// SET with GET or KEEPTTL, which reads the old state: a method of its own, as its lambda's captured variables would
    /// otherwise be allocated on every SET (40 bytes each, measured with allocation ticks), plain ones included.
    /// </summary>
    private async ValueTask SetReadingOldAsync(Caller caller, string key, KvCondition condition, bool get, bool keepTtl, long? expiry, CancellationToken ct)
    {
        await DrainAsync().ConfigureAwait(false);
        var json = Json(2);
        // Read and write in one step of the store: the old value returned is the one this write replaced.
        var (old, written) = await _kv.UpdateAsync(caller, key, (current, _) =>
            (condition == KvCondition.IfMissing && current is not null) || (condition == KvCondition.IfExists && current is null)
                ? KvChange.Keep
                : KvChange.Write(json, keepTtl ? current?.ExpiresAtMs : expiry), ct).ConfigureAwait(false);
        if (get)
        {
            if (old is null)
            {
                _reply.Null();
            }
            else
            {
                _reply.Value(old.ValueJson);
            }
        }
        else if (written)
        {
            _reply.Ok();
        }
        else
        {
            _reply.Null();
        }
    }

    /// <summary>Starts a write of argument <paramref name="valueArg"/> without waiting for it (its reply comes at the next drain).</summary>
    private void StartSet(Caller caller, string key, int valueArg, long? expiresAt, KvCondition condition, PendingKind kind)
    {
        var json = Json(valueArg);
        if (condition == KvCondition.Always && kind == PendingKind.Ok)
        {
            QueueSet(_kv.PrepareSet(caller, key, json, expiresAt));
            return;
        }
        SubmitSets(); // before this write is started: the writer takes writes in the order they are handed to it
        Defer(_kv.SetJsonAsync(caller, key, json, expiresAt, condition), kind);
    }

    private async ValueTask GetExAsync(Caller caller, CancellationToken ct)
    {
        if (!Arity(2, exact: false))
        {
            return;
        }
        long? expiresAt = null;
        var change = false;
        if (_argCount == 3 && Is(2, "PERSIST"u8))
        {
            change = true;
        }
        else if (_argCount == 4 && (Is(2, "EX"u8) || Is(2, "PX"u8) || Is(2, "EXAT"u8) || Is(2, "PXAT"u8)))
        {
            var valid = TryLong(3, out var amount);
            if (!valid || !TryExpiry(Arg(2), amount, out var at))
            {
                // As Redis: a missing key is answered nil before the time is looked at.
                if (await _kv.GetEntryAsync(caller, Text(1), ct).ConfigureAwait(false) is null)
                {
                    _reply.Null();
                }
                else
                {
                    _reply.Error(valid ? "ERR invalid expire time in 'getex' command" : WrongInteger);
                }
                return;
            }
            expiresAt = at;
            change = true;
        }
        else if (_argCount != 2)
        {
            _reply.Error(Syntax);
            return;
        }
        var key = Text(1);
        // Without an option GETEX only reads; with one, the value returned is the one whose expiry was set.
        var entry = change
            ? (await _kv.UpdateAsync(caller, key, (current, _) => current is null || (expiresAt is null && current.ExpiresAtMs is null)
                ? KvChange.Keep
                : KvChange.ExpireAt(expiresAt), ct).ConfigureAwait(false)).Previous
            : await _kv.GetEntryAsync(caller, key, ct).ConfigureAwait(false);
        if (entry is null)
        {
            _reply.Null();
            return;
        }
        _reply.Value(entry);
    }

    /// <summary>EXPIRE key seconds [NX|XX|GT|LT] and its millisecond / absolute forms; a time in the past deletes the key.</summary>
    private async ValueTask ExpireAsync(Caller caller, string command, CancellationToken ct)
    {
        if (_argCount < 3)
        {
            await DrainAsync().ConfigureAwait(false); // the replies of the writes under way come first
            WrongArity();
            return;
        }
        // Redis 7's order: the options (any number, repeats allowed), their compatibility, then the time.
        bool nx = false, xx = false, gt = false, lt = false;
        for (var i = 3; i < _argCount; i++)
        {
            if (Is(i, "NX"u8))
            {
                nx = true;
            }
            else if (Is(i, "XX"u8))
            {
                xx = true;
            }
            else if (Is(i, "GT"u8))
            {
                gt = true;
            }
            else if (Is(i, "LT"u8))
            {
                lt = true;
            }
            else
            {
                await RefuseAsync("ERR Unsupported option " + Encoding.UTF8.GetString(Arg(i)));
                return;
            }
        }
        if (nx && (xx || gt || lt))
        {
            await RefuseAsync("ERR NX and XX, GT or LT options at the same time are not compatible");
            return;
        }
        if (gt && lt)
        {
            await RefuseAsync("ERR GT and LT options at the same time are not compatible");
            return;
        }
        if (!TryLong(2, out var amount))
        {
            await RefuseAsync(WrongInteger);
            return;
        }
        var now = _kv.NowMs;
        long expiresAt;
        try
        {
            expiresAt = command switch
            {
                "EXPIRE" => checked(now + Seconds(amount)),
                "PEXPIRE" => checked(now + amount),
                "EXPIREAT" => Seconds(amount),
                _ => amount,
            };
        }
        catch (OverflowException)
        {
            await RefuseAsync($"ERR invalid expire time in '{command.ToLowerInvariant()}' command");
            return;
        }
        // Started without waiting, as DEL and INCR are: a pipeline of EXPIREs reaches the store together (on PostgreSQL,
        // in one group's transaction instead of a commit each).
        Defer(ExpireInStoreAsync(caller, Text(1), command, nx, xx, gt, lt, expiresAt, WritesUnderWay, ct), PendingKind.OneOrZero);
    }

    /// <summary>Replies <paramref name="error"/> after the replies of the writes under way (a refusal of a command that defers its write).</summary>
    private async ValueTask RefuseAsync(string error)
    {
        await DrainAsync().ConfigureAwait(false);
        _reply.Error(error);
    }

    /// <summary>
    /// The change of an EXPIRE family command: its condition judged on the entry the change applies to, in one step of the
    /// store. Whether it changed the key; an expiry too far away for Engram is refused with Redis's error.
    /// </summary>
    private async Task<bool> ExpireInStoreAsync(Caller caller, string key, string command, bool nx, bool xx, bool gt, bool lt, long expiresAt,
        bool afterWritesUnderWay, CancellationToken ct)
    {
        var tooFar = false;
        var result = await _kv.UpdateAsync(caller, key, (entry, at) =>
        {
            tooFar = false;
            var current = entry?.ExpiresAtMs;
            // XX with GT or LT: both hold (a key without a TTL has an infinite one, so GT never passes it).
            var allowed = entry is not null && (!nx || current is null) && (!xx || current is not null)
                && (!gt || (current is { } c && expiresAt > c)) && (!lt || current is not { } l || expiresAt < l);
            if (!allowed)
            {
                return KvChange.Keep;
            }
            if (expiresAt <= at)
            {
                return KvChange.Remove;
            }
            tooFar = expiresAt > at + KvOptions.MaxTtlSeconds * 1000;
            return tooFar ? KvChange.Keep : KvChange.ExpireAt(expiresAt);
        }, ct, afterWritesUnderWay).ConfigureAwait(false);
        return tooFar ? throw new RespErrorReplyException($"ERR invalid expire time in '{command.ToLowerInvariant()}' command") : result.Changed;
    }

    /// <summary>The expiry of EX/PX (relative) or EXAT/PXAT (absolute) <paramref name="amount"/>; false when it is not positive or too far away.</summary>
    private bool TryExpiry(ReadOnlySpan<byte> unit, long amount, out long expiresAt)
    {
        expiresAt = 0;
        var seconds = (unit[0] | 0x20) == 'e';
        var limitMs = KvOptions.MaxTtlSeconds * 1000;
        if (amount <= 0 || (seconds && amount > long.MaxValue / 1000))
        {
            return false;
        }
        var ms = seconds ? amount * 1000 : amount;
        var now = ReadNowMs();
        expiresAt = unit.Length == 2 ? (ms > limitMs ? -1 : now + ms) : ms;
        return expiresAt > 0 && expiresAt <= now + limitMs;
    }

    private static long Seconds(long seconds) => seconds > long.MaxValue / 1000 || seconds < long.MinValue / 1000 ? throw new OverflowException() : seconds * 1000;

    /// <summary>The JSON text of a value argument (see <see cref="RespValues"/>).</summary>
    private string Json(int i) => RespValues.ToJson(Arg(i));

    /// <summary>SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: the cursor is a number this listener handed out (<see cref="RespScanCursors"/>); any other starts over.</summary>
    private async ValueTask ScanAsync(Caller caller, CancellationToken ct)
    {
        if (!Arity(2, exact: false))
        {
            return;
        }
        // Redis reads the cursor as an unsigned 64-bit number (strtoul, so "-1" too); anything else is not a cursor.
        if (!TryLong(1, out var cursor) && !ulong.TryParse(Arg(1), NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            _reply.Error("ERR invalid cursor");
            return;
        }
        string? pattern = null;
        var count = 10;
        var strings = true;
        for (var i = 2; i < _argCount; i += 2)
        {
            if (i + 1 >= _argCount)
            {
                _reply.Error(Syntax);
                return;
            }
            if (Is(i, "MATCH"u8))
            {
                pattern = Text(i + 1);
            }
            else if (Is(i, "COUNT"u8))
            {
                if (!TryLong(i + 1, out var n))
                {
                    _reply.Error(WrongInteger);
                    return;
                }
                if (n < 1)
                {
                    _reply.Error(Syntax);
                    return;
                }
                count = (int)Math.Min(n, _kv.Options.MaxListLimit);
            }
            else if (Is(i, "TYPE"u8))
            {
                strings = Is(i + 1, "STRING"u8);
            }
            else
            {
                _reply.Error(Syntax);
                return;
            }
        }
        // A cursor this listener did not hand out to this tenant, or no longer keeps (a restart, many newer ones), starts
        // the scan over. Redis takes any number as a cursor too; starting over keeps SCAN's promise (every key present
        // from start to end is returned; some may come twice), where an error would fail a cleanup loop for good.
        string? after = null;
        if (cursor != 0 && _listener.ScanCursors.TryGet(caller.Tenant, cursor, out var place))
        {
            after = place;
        }
        var page = strings ? await _kv.ListAsync(caller, pattern ?? "*", count, after, ct).ConfigureAwait(false) : new KvPage([], null);
        long next = 0;
        if (page.NextCursor is not null)
        {
            next = _listener.ScanCursors.Add(caller.Tenant, page.NextCursor);
        }
        _reply.Array(2);
        _reply.Bulk(next.ToString(CultureInfo.InvariantCulture));
        _reply.Array(page.Items.Count);
        foreach (var item in page.Items)
        {
            _reply.Bulk(item.Key);
        }
    }

    private async Task<List<string>> AllKeysAsync(Caller caller, string? pattern, CancellationToken ct)
    {
        var keys = new List<string>();
        string? cursor = null;
        do
        {
            var page = await _kv.ListAsync(caller, pattern ?? "*", _kv.Options.MaxListLimit, cursor, ct).ConfigureAwait(false);
            keys.AddRange(page.Items.Select(i => i.Key));
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        return keys;
    }

    /// <summary>
    /// DEL/UNLINK of several keys: one step of the store (<see cref="KvService.DeleteKeysAsync"/>), so it is atomic as in
    /// Redis, not one write per key (100,000 keys one by one took 9 s). Past <see cref="DeleteChunk"/> keys, one step per
    /// that many, so other writers get in between.
    /// </summary>
    private async ValueTask<long> DeleteKeysAsync(Caller caller, CancellationToken ct)
    {
        long deleted = 0;
        for (var start = 1; start < _argCount; start += DeleteChunk)
        {
            var keys = KeyArguments(start, DeleteChunk);
            // Inside MULTI, _kv is the transaction's: the call is done when it returns.
            deleted += await _kv.DeleteKeysAsync(caller, keys, ct).ConfigureAwait(false);
        }
        return deleted;
    }

    /// <summary>Arguments from <paramref name="start"/> on as key texts, at most <paramref name="most"/> of them (a chunk of a many-key command).</summary>
    private string[] KeyArguments(int start, int most)
    {
        var keys = new string[Math.Min(most, _argCount - start)];
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = Text(start + i);
        }
        return keys;
    }

    /// <summary>EXISTS/TOUCH: how many of the keys exist, a key named twice counted twice; read in chunks as MGET reads.</summary>
    private async ValueTask<long> CountExistingAsync(Caller caller, CancellationToken ct)
    {
        long found = 0;
        for (var start = 1; start < _argCount; start += MGetChunk)
        {
            var keys = KeyArguments(start, MGetChunk);
            foreach (var entry in await _kv.GetEntriesAsync(caller, keys, ct).ConfigureAwait(false))
            {
                found += entry is null ? 0 : 1;
            }
        }
        return found;
    }

    /// <summary>
    /// MGET, read <see cref="MGetChunk"/> keys at a time and sent as it goes past <see cref="MaxUnsentReplyBytes"/>:
    /// 1,000 keys of 1 MB values would otherwise be read into memory and written to the pipe at once. Each key is
    /// read as it is at its turn, as a GET of each would be; Redis's MGET is a snapshot of all of them.
    /// </summary>
    private async ValueTask MGetAsync(Caller caller, CancellationToken ct)
    {
        var keys = new string[_argCount - 1];
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = Text(i + 1);
        }
        _kv.CheckGetMany(caller, keys, limit: int.MaxValue); // every error before the first element of the reply (the keys are read in chunks)
        _reply.Array(keys.Length);
        try
        {
            for (var start = 0; start < keys.Length; start += MGetChunk)
            {
                var chunk = keys.Length <= MGetChunk ? keys : keys.AsSpan(start, Math.Min(MGetChunk, keys.Length - start)).ToArray();
                var entries = await _kv.GetEntriesAsync(caller, chunk, ct).ConfigureAwait(false);
                foreach (var entry in entries)
                {
                    if (entry is null)
                    {
                        _reply.Null();
                    }
                    else
                    {
                        _reply.Value(entry);
                    }
                }
                CheckTransactionReplies();
                if (UnflushedPastBound && !await SendAsync(ct).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Part of the array is written: an error reply now would be read as its next element. Close after it
            // (in a transaction the replies are a buffer, dropped when the transaction fails).
            _closeAfterReply |= _transactionCaller is null;
            throw;
        }
    }

    /// <summary>The keys of an MGET read together; a chunk of 1 MB values is 32 MB of text at most.</summary>
    private const int MGetChunk = 16;

    /// <summary>The keys of one transaction of a multi-key DEL/UNLINK (<see cref="DeleteKeysAsync"/>).</summary>
    private const int DeleteChunk = 10_000;
}
