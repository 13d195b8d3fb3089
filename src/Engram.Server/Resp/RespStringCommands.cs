using System.Globalization;
using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;

namespace Engram.Server.Resp;

/// <summary>
/// Redis's other string commands, beyond the ones a swarm's state needs most: APPEND, INCRBYFLOAT, GETRANGE/SUBSTR,
/// SETRANGE, RENAME/RENAMENX, COPY, MSETNX, FLUSHDB/FLUSHALL (TOUCH is EXISTS); and the server's TIME, LASTSAVE, ROLE, WAIT and WAITAOF.
/// Each goes through <see cref="KvService"/> like the others: a read-modify-write is one <see cref="KvService.UpdateAsync"/>
/// step, and the commands over two or more keys are one transaction of the store (or part of the running one inside MULTI
/// and scripts), so no other write comes between their read and their write.
/// </summary>
internal sealed partial class RespConnection
{
    private static bool IsStringCommand(string command) => command is "APPEND" or "INCRBYFLOAT" or "GETRANGE" or "SUBSTR" or "SETRANGE" or "RENAME"
        or "RENAMENX" or "COPY" or "MSETNX" or "TIME" or "LASTSAVE" or "ROLE" or "FLUSHDB" or "FLUSHALL" or "WAIT" or "WAITAOF";

    private async ValueTask StringCommandAsync(string command, Caller caller, CancellationToken ct)
    {
        switch (command)
        {
            case "APPEND":
                if (Arity(3, exact: true))
                {
                    await AppendAsync(caller, ct).ConfigureAwait(false);
                }
                return;
            case "INCRBYFLOAT":
                if (Arity(3, exact: true))
                {
                    await IncrementByFloatAsync(caller, ct).ConfigureAwait(false);
                }
                return;
            case "GETRANGE" or "SUBSTR":
                if (Arity(4, exact: true))
                {
                    await GetRangeAsync(caller, ct).ConfigureAwait(false);
                }
                return;
            case "SETRANGE":
                if (Arity(4, exact: true))
                {
                    await SetRangeAsync(caller, ct).ConfigureAwait(false);
                }
                return;
            case "RENAME" or "RENAMENX":
                if (Arity(3, exact: true))
                {
                    await RenameAsync(caller, onlyIfMissing: command == "RENAMENX", ct).ConfigureAwait(false);
                }
                return;
            case "COPY":
                if (Arity(3, exact: false))
                {
                    await CopyAsync(caller, ct).ConfigureAwait(false);
                }
                return;
            case "MSETNX":
                if (_argCount < 3 || _argCount % 2 == 0)
                {
                    WrongArity();
                    return;
                }
                await MSetIfNoneExistAsync(caller, ct).ConfigureAwait(false);
                return;
            case "TIME":
                if (Arity(1, exact: true))
                {
                    var micros = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks / 10;
                    _reply.Array(2);
                    _reply.Bulk((micros / 1_000_000).ToString(CultureInfo.InvariantCulture));
                    _reply.Bulk((micros % 1_000_000).ToString(CultureInfo.InvariantCulture));
                }
                return;
            case "LASTSAVE":
                if (Arity(1, exact: true))
                {
                    _reply.Integer(LastSaveSeconds);
                }
                return;
            case "ROLE":
                // A primary without replicas: monitoring tools and Sentinel-aware clients ask.
                if (Arity(1, exact: true))
                {
                    _reply.Array(3);
                    _reply.Bulk("master");
                    _reply.Integer(0);
                    _reply.Array(0);
                }
                return;
            case "WAIT":
                await DrainAsync().ConfigureAwait(false);
                if (Arity(3, exact: true))
                {
                    await WaitAsync(ct).ConfigureAwait(false);
                }
                return;
            case "WAITAOF":
                await DrainAsync().ConfigureAwait(false);
                if (Arity(4, exact: true))
                {
                    await WaitAofAsync(caller, ct).ConfigureAwait(false);
                }
                return;
            case "FLUSHDB" or "FLUSHALL":
                if (_argCount > 2 || (_argCount == 2 && !Is(1, "ASYNC"u8) && !Is(1, "SYNC"u8)))
                {
                    _reply.Error(Syntax);
                    return;
                }
                // Every key of the caller's tenant (a tenant is the client's whole keyspace), deleted with history as DEL would.
                await _kv.CleanupAsync(caller, "*", ct).ConfigureAwait(false);
                _reply.Ok();
                return;
        }
    }

    /// <summary>
    /// WAIT numreplicas timeout: Engram has no replicas, so it answers 0, at once when none is asked for, else when the
    /// timeout ends as Redis does when its replicas do not answer (see <see cref="WaitForReplicasAsync"/>).
    /// </summary>
    private async ValueTask WaitAsync(CancellationToken ct)
    {
        if (!TryLong(1, out var replicas))
        {
            _reply.Error(WrongInteger);
            return;
        }
        if (!TryTimeout(2, out var timeoutMs))
        {
            return;
        }
        if (replicas > 0)
        {
            await WaitForReplicasAsync(timeoutMs, ct).ConfigureAwait(false);
        }
        _reply.Integer(0);
    }

    /// <summary>
    /// WAITAOF numlocal numreplicas timeout (Redis 7.2): the reply is [local, replicas], whether this server has every
    /// write acknowledged before the command on disk, and how many replicas have (none: Engram has none). Every write is
    /// in its key's history before it is acknowledged (INFO's <c>aof_enabled:1</c>); with full durability it was synced
    /// first, so the answer is 1 at once. With relaxed durability numlocal 1 makes the store sync (one sync covers every
    /// earlier write), so a client can make the writes that matter survive a power cut; numlocal 0 does not wait, and
    /// answers 0 then, the store not knowing whether a sync came since.
    /// </summary>
    private async ValueTask WaitAofAsync(Caller caller, CancellationToken ct)
    {
        if (!TryLong(1, out var local))
        {
            _reply.Error(WrongInteger);
            return;
        }
        if (local is < 0 or > 1)
        {
            _reply.Error("ERR value is out of range, value must between 0 and 1");
            return;
        }
        if (!TryLong(2, out var replicas))
        {
            _reply.Error(WrongInteger);
            return;
        }
        if (replicas < 0)
        {
            _reply.Error("ERR value is out of range, must be positive");
            return;
        }
        if (!TryTimeout(3, out var timeoutMs))
        {
            return;
        }
        var synced = _kv.WritesSyncedOnAcknowledgement;
        if (local == 1 && !synced)
        {
            await _kv.SyncAsync(caller, ct).ConfigureAwait(false);
            synced = true;
        }
        if (replicas > 0)
        {
            await WaitForReplicasAsync(timeoutMs, ct).ConfigureAwait(false);
        }
        _reply.Array(2);
        _reply.Integer(synced ? 1 : 0);
        _reply.Integer(0);
    }

    /// <summary>A WAIT/WAITAOF timeout in milliseconds (0: none); false after replying Redis's error.</summary>
    private bool TryTimeout(int i, out long timeoutMs)
    {
        if (!TryLong(i, out timeoutMs))
        {
            _reply.Error("ERR timeout is not an integer or out of range");
            return false;
        }
        if (timeoutMs < 0)
        {
            _reply.Error("ERR timeout is negative");
            return false;
        }
        return true;
    }

    /// <summary>
    /// Waits as Redis does for replicas that never answer: until the timeout ends (0: no end), the client leaves (Kestrel's
    /// <c>ConnectionClosed</c>), or the server stops. The connection reads nothing meanwhile, as a blocked Redis client, and
    /// the idle sweep leaves it (<see cref="Blocked"/>), as Redis's idle time-out leaves blocked clients.
    /// </summary>
    private async ValueTask WaitForReplicasAsync(long timeoutMs, CancellationToken ct)
    {
        // The replies of the commands before it go now, as Redis sends them before it blocks: a PING pipelined before a
        // WAIT 1 0 (no time-out) had its +PONG held for ever.
        if (!await SendAsync(ct).ConfigureAwait(false))
        {
            return;
        }
        using var either = CancellationTokenSource.CreateLinkedTokenSource(ct, _context.ConnectionClosed);
        Volatile.Write(ref _blocked, true);
        try
        {
            await Task.Delay(timeoutMs == 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(Math.Min(timeoutMs, int.MaxValue)), either.Token)
                .ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // The client left: the reply goes nowhere.
        }
        finally
        {
            Volatile.Write(ref _blocked, false);
            LastActivity = Environment.TickCount64; // the wait was not silence: the idle time-out counts from its end
        }
    }

    /// <summary>The value's bytes as GET returns them (empty for none).</summary>
    private static ReadOnlySpan<byte> ValueBytes(KvEntry? entry)
    {
        if (entry is null)
        {
            return [];
        }
        var reply = RespWriter.BulkReply(entry.ValueJson);
        var start = reply.AsSpan().IndexOf((byte)'\n') + 1;
        return reply.AsSpan(start, reply.Length - start - 2);
    }

    /// <summary>The refusal of a value over the limit, before it is built, as Redis refuses one over its 512 MB.</summary>
    private void ReplyTooLarge() =>
        _reply.Error($"ERR string exceeds maximum allowed size ({_kv.Options.MaxValueBytes} bytes, Engram:KeyValue:MaxValueBytes)");

    /// <summary>A new key gets the default TTL; a changed one keeps its own, as in Redis.</summary>
    private long? KeptExpiry(KvEntry? current) => current is null ? _kv.DefaultExpiresAtMs() : current.ExpiresAtMs;

    private async ValueTask AppendAsync(Caller caller, CancellationToken ct)
    {
        var suffix = Arg(2).ToArray();
        long length = 0;
        var tooLarge = false;
        await _kv.UpdateAsync(caller, Text(1), (current, _) =>
        {
            var old = ValueBytes(current);
            length = old.Length + suffix.Length;
            tooLarge = length > _kv.Options.MaxValueBytes;
            if (tooLarge)
            {
                return KvChange.Keep;
            }
            var joined = new byte[length];
            old.CopyTo(joined);
            suffix.CopyTo(joined.AsSpan(old.Length));
            return KvChange.Write(RespValues.ToJson(joined), KeptExpiry(current));
        }, ct).ConfigureAwait(false);
        if (tooLarge)
        {
            ReplyTooLarge();
        }
        else
        {
            _reply.Integer(length);
        }
    }

    private async ValueTask IncrementByFloatAsync(Caller caller, CancellationToken ct)
    {
        if (!TryFloat(Arg(2), out var by))
        {
            _reply.Error("ERR value is not a valid float");
            return;
        }
        string? result = null;
        string? error = null;
        await _kv.UpdateAsync(caller, Text(1), (current, _) =>
        {
            result = null;
            if (!TryFloat(ValueBytes(current), out var old) && current is not null)
            {
                error = "ERR value is not a valid float";
                return KvChange.Keep;
            }
            var sum = (current is null ? 0 : old) + by;
            if (!double.IsFinite(sum))
            {
                error = "ERR increment would produce NaN or Infinity";
                return KvChange.Keep;
            }
            error = null;
            result = DecimalSum(current is null ? "0"u8 : ValueBytes(current), Arg(2)) ?? FormatFloat(sum);
            return KvChange.Write(RespValues.ToJson(Encoding.ASCII.GetBytes(result)), KeptExpiry(current));
        }, ct).ConfigureAwait(false);
        if (error is not null)
        {
            _reply.Error(error);
        }
        else
        {
            _reply.Bulk(result!);
        }
    }

    /// <summary>
    /// A float as Redis takes one (strtold, whole text): decimal or exponent notation, hexadecimal (0x1.8p3), or inf / -inf
    /// (which then fails as an infinite result); no spaces, not NaN. A number past a double's range (1e400, 0x1p2000) is
    /// taken as the infinity it rounds to, so it also fails as an infinite result ("increment would produce NaN or
    /// Infinity", the key unchanged): Redis adds in long double, where 1e400 is finite, and Engram cannot keep the
    /// result; the number itself is well written, so "not a valid float" would mislead.
    /// </summary>
    private static bool TryFloat(ReadOnlySpan<byte> text, out double value)
    {
        value = 0;
        if (text.Length is 0 or > 128 || text[0] is (byte)' ' or (byte)'\t' || text[^1] is (byte)' ' or (byte)'\t')
        {
            return false;
        }
        var sign = text[0] == (byte)'-' ? -1 : 1;
        var unsigned = text[0] is (byte)'-' or (byte)'+' ? text[1..] : text;
        if (Ascii.EqualsIgnoreCase(unsigned, "inf"u8) || Ascii.EqualsIgnoreCase(unsigned, "infinity"u8))
        {
            value = sign * double.PositiveInfinity;
            return true;
        }
        if (unsigned.Length > 1 && unsigned[0] == (byte)'0' && (unsigned[1] | 0x20) == 'x')
        {
            if (!TryHexFloat(unsigned[2..], out value))
            {
                return false;
            }
            value *= sign;
            return true;
        }
        // .NET parses an overflowing number to an infinity, and also takes words (NaN, Infinity) strtold spells otherwise;
        // only digits may overflow here.
        return double.TryParse(Encoding.ASCII.GetString(text), NumberStyles.Float, CultureInfo.InvariantCulture, out value)
            && (double.IsFinite(value) || (double.IsInfinity(value) && unsigned.Length > 0 && (char.IsAsciiDigit((char)unsigned[0]) || unsigned[0] == (byte)'.')));
    }

    /// <summary>The hexadecimal float after "0x": hex digits with an optional point, then an optional binary exponent (p-3).</summary>
    private static bool TryHexFloat(ReadOnlySpan<byte> text, out double value)
    {
        value = 0;
        double mantissa = 0;
        long exponent = 0;
        var digits = 0;
        var point = false;
        var i = 0;
        for (; i < text.Length; i++)
        {
            if (text[i] == (byte)'.' && !point)
            {
                point = true;
                continue;
            }
            var digit = HexDigit(text[i]);
            if (digit < 0)
            {
                break;
            }
            mantissa = (mantissa * 16) + digit;
            digits++;
            exponent -= point ? 4 : 0;
        }
        if (digits == 0)
        {
            return false;
        }
        if (i < text.Length && (text[i] | 0x20) == 'p')
        {
            if (!long.TryParse(Encoding.ASCII.GetString(text[(i + 1)..]), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var power)
                || text.Length == i + 1 || text[i + 1] is (byte)' ')
            {
                return false;
            }
            exponent += Math.Clamp(power, -100_000, 100_000);
            i = text.Length;
        }
        if (i != text.Length)
        {
            return false;
        }
        value = Math.ScaleB(mantissa, (int)Math.Clamp(exponent, -100_000, 100_000));
        return !double.IsNaN(value); // past a double's range: an infinity, as for decimal notation (see TryFloat)
    }

    private static int HexDigit(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };

    /// <summary>
    /// The sum in decimal arithmetic, printed as Redis prints its sums (fixed-point, at most 17 decimals, no trailing
    /// zeros); null when either number is outside decimal's range. Exact where a binary float is not: 1.5007 - 2.25 is
    /// -0.7493, which a double gives as -0.7493000000000001. Redis adds in long double, whose error shows only past the
    /// 17th significant digit, so the two agree wherever Redis's own answer is exact.
    /// </summary>
    private static string? DecimalSum(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (!decimal.TryParse(Encoding.ASCII.GetString(a), NumberStyles.Float, CultureInfo.InvariantCulture, out var x)
            || !decimal.TryParse(Encoding.ASCII.GetString(b), NumberStyles.Float, CultureInfo.InvariantCulture, out var y))
        {
            return null;
        }
        decimal sum;
        try
        {
            sum = Math.Round(x + y, 17, MidpointRounding.ToEven);
        }
        catch (OverflowException)
        {
            return null;
        }
        var text = sum.ToString("F17", CultureInfo.InvariantCulture).TrimEnd('0');
        text = text.EndsWith('.') ? text[..^1] : text;
        return text == "-0" ? "0" : text;
    }

    /// <summary>Fixed-point, the shortest digits that read back as the same double, no exponent (Redis's human-friendly form: 3.5, 10.6, 1e20 as digits).</summary>
    internal static string FormatFloat(double value)
    {
        var shortest = value.ToString("R", CultureInfo.InvariantCulture);
        if (!shortest.Contains('E', StringComparison.Ordinal))
        {
            return shortest;
        }
        var fixedPoint = value.ToString("F17", CultureInfo.InvariantCulture).TrimEnd('0');
        return fixedPoint.EndsWith('.') ? fixedPoint[..^1] : fixedPoint;
    }

    private async ValueTask GetRangeAsync(Caller caller, CancellationToken ct)
    {
        if (!TryLong(2, out var start) || !TryLong(3, out var end))
        {
            _reply.Error(WrongInteger);
            return;
        }
        var entry = await _kv.GetEntryAsync(caller, Text(1), ct).ConfigureAwait(false);
        var bytes = ValueBytes(entry);
        long length = bytes.Length;
        // Redis's getrangeCommand, step by step.
        if (start < 0 && end < 0 && start > end)
        {
            _reply.Bulk(ReadOnlySpan<byte>.Empty);
            return;
        }
        start = start < 0 ? Math.Max(0, length + start) : start;
        end = end < 0 ? Math.Max(0, length + end) : end;
        end = Math.Min(end, length - 1);
        if (length == 0 || start > end)
        {
            _reply.Bulk(ReadOnlySpan<byte>.Empty);
            return;
        }
        _reply.Bulk(bytes[(int)start..(int)(end + 1)]);
    }

    private async ValueTask SetRangeAsync(Caller caller, CancellationToken ct)
    {
        if (!TryLong(2, out var offset))
        {
            _reply.Error(WrongInteger);
            return;
        }
        if (offset < 0)
        {
            _reply.Error("ERR offset is out of range");
            return;
        }
        var patch = Arg(3).ToArray();
        if (patch.Length > 0 && Math.Min(offset, int.MaxValue) + (long)patch.Length > _kv.Options.MaxValueBytes) // (no overflow past long.MaxValue)
        {
            ReplyTooLarge();
            return;
        }
        long length = 0;
        var tooLarge = false;
        await _kv.UpdateAsync(caller, Text(1), (current, _) =>
        {
            var old = ValueBytes(current);
            length = old.Length;
            if (patch.Length == 0)
            {
                return KvChange.Keep; // nothing to write: the length, or 0 for a missing key (which stays missing)
            }
            length = Math.Max(old.Length, offset + patch.Length);
            tooLarge = length > _kv.Options.MaxValueBytes;
            if (tooLarge)
            {
                return KvChange.Keep;
            }
            var patched = new byte[length]; // zeros where the old value ends before the offset
            old.CopyTo(patched);
            patch.CopyTo(patched.AsSpan((int)offset));
            return KvChange.Write(RespValues.ToJson(patched), KeptExpiry(current));
        }, ct).ConfigureAwait(false);
        if (tooLarge)
        {
            ReplyTooLarge();
        }
        else
        {
            _reply.Integer(length);
        }
    }

    /// <summary>
    /// Runs <paramref name="run"/> over <paramref name="keys"/> with no other write between its reads and its writes: in a
    /// transaction of its own, or inside the running one (MULTI, a script), whose commands complete without waiting.
    /// </summary>
    private async ValueTask<T> AtomicallyAsync<T>(Caller caller, IReadOnlyList<string> keys, Func<KvService, T> run, CancellationToken ct) =>
        _transactionCaller is not null ? run(_kv) : await _kv.TransactAsync(caller, keys, view => run(view.Kv), ct).ConfigureAwait(false);

    /// <summary>The result of a call on a transaction's service, which has finished it.</summary>
    private static T Done<T>(Task<T> task) =>
        task.IsCompleted ? task.GetAwaiter().GetResult() : throw new InvalidOperationException("a key-value call waited inside a transaction");

    private async ValueTask RenameAsync(Caller caller, bool onlyIfMissing, CancellationToken ct)
    {
        var (source, target) = (Text(1), Text(2));
        var outcome = await AtomicallyAsync(caller, [source, target], kv =>
        {
            if (Done(kv.GetEntryAsync(caller, source)) is not { } entry)
            {
                return -1;
            }
            if (source == target)
            {
                return onlyIfMissing ? 0 : 1;
            }
            if (onlyIfMissing && Done(kv.GetEntryAsync(caller, target)) is not null)
            {
                return 0;
            }
            Done(kv.UpdateAsync(caller, target, (_, _) => KvChange.Write(entry.ValueJson, entry.ExpiresAtMs)));
            Done(kv.DeleteKeyAsync(caller, source));
            return 1;
        }, ct).ConfigureAwait(false);
        if (outcome < 0)
        {
            _reply.Error("ERR no such key");
        }
        else if (onlyIfMissing)
        {
            _reply.Integer(outcome);
        }
        else
        {
            _reply.Ok();
        }
    }

    private async ValueTask CopyAsync(Caller caller, CancellationToken ct)
    {
        var replace = false;
        for (var i = 3; i < _argCount; i++)
        {
            if (Is(i, "REPLACE"u8))
            {
                replace = true;
            }
            else if (Is(i, "DB"u8) && i + 1 < _argCount)
            {
                if (!TryLong(++i, out var db))
                {
                    _reply.Error(WrongInteger);
                    return;
                }
                if (db != 0)
                {
                    _reply.Error("ERR DB index is out of range");
                    return;
                }
            }
            else
            {
                _reply.Error(Syntax);
                return;
            }
        }
        var (source, target) = (Text(1), Text(2));
        if (source == target)
        {
            _reply.Error("ERR source and destination objects are the same");
            return;
        }
        var copied = await AtomicallyAsync(caller, [source, target], kv =>
        {
            if (Done(kv.GetEntryAsync(caller, source)) is not { } entry || (!replace && Done(kv.GetEntryAsync(caller, target)) is not null))
            {
                return false;
            }
            Done(kv.UpdateAsync(caller, target, (_, _) => KvChange.Write(entry.ValueJson, entry.ExpiresAtMs)));
            return true;
        }, ct).ConfigureAwait(false);
        _reply.Integer(copied ? 1 : 0);
    }

    private async ValueTask MSetIfNoneExistAsync(Caller caller, CancellationToken ct)
    {
        var items = new (string Key, string ValueJson)[(_argCount - 1) / 2];
        for (var i = 0; i < items.Length; i++)
        {
            items[i] = (Text(1 + (2 * i)), Json(2 + (2 * i)));
        }
        var expiry = _kv.DefaultExpiresAtMs();
        var written = await AtomicallyAsync(caller, [.. items.Select(i => i.Key)], kv =>
        {
            if (items.Any(item => Done(kv.GetEntryAsync(caller, item.Key)) is not null))
            {
                return false;
            }
            Done(kv.SetManyJsonAsync(caller, items, expiry, limit: int.MaxValue));
            return true;
        }, ct).ConfigureAwait(false);
        _reply.Integer(written ? 1 : 0);
    }
    /// <summary>
    /// LASTSAVE and INFO's <c>rdb_last_save_time</c>: the Unix time of the last good backup (Engram's snapshot of the
    /// store, as an RDB save is Redis's), else when the endpoint started, as Redis reports its start before a first save.
    /// </summary>
    private long LastSaveSeconds =>
        (Engram.Core.Operations.BackupMetrics.LastSuccessAt ?? DateTimeOffset.UtcNow - _listener.Uptime).ToUnixTimeSeconds();
}
