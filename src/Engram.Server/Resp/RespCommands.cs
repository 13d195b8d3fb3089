using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Resp;

/// <summary>
/// The commands: one is read and dispatched here, with Redis's reply shapes and error texts, each going through
/// <see cref="KvService"/>. The commands themselves are in RespKeyCommands (the state), RespStringCommands (Redis's other
/// string commands), RespServerCommands (INFO, CLIENT, COMMAND…), RespAuthentication, RespTransactions and RespScripts.
/// </summary>
internal sealed partial class RespConnection
{
    private const string WrongInteger = "ERR value is not an integer or out of range";
    private const string Syntax = "ERR syntax error";
    private const string NoAuth = "NOAUTH Authentication required.";

    private async ValueTask ExecuteAsync(CancellationToken ct)
    {
        if (_argCount == 0)
        {
            return;
        }
        try
        {
            await RunCommandAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            await DrainAsync().ConfigureAwait(false);
            ReplyFailure(ex);
        }
    }

    private async ValueTask RunCommandAsync(CancellationToken ct)
    {
        if (Ascii.EqualsIgnoreCase(Arg(0), "POST"u8) || Ascii.EqualsIgnoreCase(Arg(0), "HOST:"u8))
        {
            RefuseHttp();
            return;
        }
        if (_scripts.Count != 0 && !IsScriptCommand(Arg(0)))
        {
            // The scripts before this command run first; their redis.calls load their own arguments, so this command's are kept.
            var args = CopyArguments();
            await RunQueuedScriptsAsync(ct).ConfigureAwait(false);
            LoadArguments(args);
        }
        if (InMulti)
        {
            await DrainAsync().ConfigureAwait(false);
            if (TryQueue(Encoding.ASCII.GetString(Arg(0)).ToUpperInvariant()))
            {
                return;
            }
        }
        var name = Arg(0);
        // The hot commands first.
        if (Ascii.EqualsIgnoreCase(name, "GET"u8))
        {
            _tally.Commands[RespStats.Get]++;
            await GetAsync(ct).ConfigureAwait(false);
            return;
        }
        if (Ascii.EqualsIgnoreCase(name, "SET"u8))
        {
            _tally.Commands[RespStats.Set]++;
            await SetAsync(ct).ConfigureAwait(false);
            return;
        }
        var command = Encoding.ASCII.GetString(name).ToUpperInvariant();
        _tally.Commands[RespStats.CommandIndex(command)]++;
        if (OnEventThread && !RunsInline(command))
        {
            await Task.Yield(); // to the thread pool: the command may block (see OnEventThread)
        }
        switch (command)
        {
            case "PING":
                await DrainAsync().ConfigureAwait(false);
                Ping();
                return;
            case "ECHO":
                await DrainAsync().ConfigureAwait(false);
                if (Arity(2, exact: true))
                {
                    _reply.Bulk(Arg(1));
                }
                return;
            case "QUIT":
                await DrainAsync().ConfigureAwait(false);
                _reply.Ok();
                _closeAfterReply = true;
                return;
            case "RESET":
                // As Redis 6.2+: the connection as it was when it opened, but still open. A MULTI block is discarded,
                // watches go, RESP2 again, the name goes (redis-server 7.0 answers CLIENT GETNAME with nil after RESET),
                // and the caller is forgotten (with keys, AUTH is needed again).
                await DrainAsync().ConfigureAwait(false);
                if (Arity(1, exact: true))
                {
                    EndTransaction();
                    _authenticated = null;
                    _presentedKey = null;
                    _reply.Resp3 = false;
                    Name = null;
                    _reply.Simple("RESET");
                }
                return;
            case "HELLO":
                await DrainAsync().ConfigureAwait(false);
                await HelloAsync(ct).ConfigureAwait(false);
                return;
            case "AUTH":
                await DrainAsync().ConfigureAwait(false);
                await AuthAsync(ct).ConfigureAwait(false);
                return;
            case "SELECT":
                await DrainAsync().ConfigureAwait(false);
                if (Arity(2, exact: true))
                {
                    if (!TryLong(1, out var db))
                    {
                        _reply.Error(WrongInteger);
                    }
                    else if (db != 0)
                    {
                        _reply.Error("ERR DB index is out of range");
                    }
                    else
                    {
                        _reply.Ok();
                    }
                }
                return;
            case "CLIENT":
                await DrainAsync().ConfigureAwait(false);
                Client();
                return;
            case "COMMAND":
                await DrainAsync().ConfigureAwait(false);
                CommandInfo();
                return;
            case "MULTI":
                await DrainAsync().ConfigureAwait(false);
                await MultiAsync(ct).ConfigureAwait(false);
                return;
            case "EXEC":
                await DrainAsync().ConfigureAwait(false);
                await ExecAsync(ct).ConfigureAwait(false);
                return;
            case "DISCARD":
                await DrainAsync().ConfigureAwait(false);
                Discard();
                return;
            case "WATCH":
                await DrainAsync().ConfigureAwait(false);
                await WatchAsync(ct).ConfigureAwait(false);
                return;
            case "UNWATCH":
                await DrainAsync().ConfigureAwait(false);
                if (Arity(1, exact: true))
                {
                    _watched = null;
                    _reply.Ok();
                }
                return;
            case "EVAL" or "EVALSHA" or "EVAL_RO" or "EVALSHA_RO":
                if (_scripts.Count == 0)
                {
                    await DrainAsync().ConfigureAwait(false); // (with scripts queued, nothing else is under way)
                }
                await EvalAsync(command, ct).ConfigureAwait(false);
                return;
            case "SCRIPT":
                await DrainAsync().ConfigureAwait(false);
                await ScriptAsync(ct).ConfigureAwait(false);
                return;
        }
        if (!Known(command))
        {
            await DrainAsync().ConfigureAwait(false);
            Unknown();
            return;
        }
        var caller = await CallerAsync(ct).ConfigureAwait(false);
        if (caller is null)
        {
            await DrainAsync().ConfigureAwait(false);
            _reply.Error(NoAuth);
            return;
        }
        if (PendingCount >= MaxPending)
        {
            await DrainAsync().ConfigureAwait(false); // bounded: a client pipelining thousands of writes waits for the earlier ones
        }
        if (command is not ("SETEX" or "PSETEX"))
        {
            SubmitSets(); // the SETs queued so far reach the store's writer before this command's write does
        }
        switch (command)
        {
            case "SETNX":
                if (await ArityAsync(3, exact: true).ConfigureAwait(false))
                {
                    StartSet(caller, Text(1), 2, _kv.DefaultExpiresAtMs(), KvCondition.IfMissing, PendingKind.OneOrZero);
                }
                return;
            case "SETEX" or "PSETEX":
                if (await ArityAsync(4, exact: true).ConfigureAwait(false))
                {
                    if (!TryLong(2, out var ttl))
                    {
                        await DrainAsync().ConfigureAwait(false);
                        _reply.Error(WrongInteger);
                    }
                    else if (!TryExpiry(command == "SETEX" ? "EX"u8 : "PX"u8, ttl, out var at))
                    {
                        await DrainAsync().ConfigureAwait(false);
                        _reply.Error($"ERR invalid expire time in '{command.ToLowerInvariant()}' command");
                    }
                    else
                    {
                        StartSet(caller, Text(1), 3, at, KvCondition.Always, PendingKind.Ok);
                    }
                }
                return;
            case "DEL" or "UNLINK":
                if (await ArityAsync(2, exact: false).ConfigureAwait(false))
                {
                    if (_argCount == 2)
                    {
                        Defer(_kv.DeleteKeyAsync(caller, Text(1), ct, afterWritesUnderWay: WritesUnderWay), PendingKind.OneOrZero);
                    }
                    else
                    {
                        await DrainAsync().ConfigureAwait(false);
                        _reply.Integer(await DeleteKeysAsync(caller, ct).ConfigureAwait(false));
                    }
                }
                return;
            case "INCR" or "DECR":
                if (await ArityAsync(2, exact: true).ConfigureAwait(false))
                {
                    Defer(_kv.IncrementAsync(caller, Text(1), command == "INCR" ? 1 : -1, textIntegers: true, ct, afterWritesUnderWay: WritesUnderWay), PendingKind.Integer);
                }
                return;
            case "INCRBY" or "DECRBY":
                if (await ArityAsync(3, exact: true).ConfigureAwait(false))
                {
                    if (!TryLong(2, out var by))
                    {
                        await DrainAsync().ConfigureAwait(false);
                        _reply.Error(WrongInteger);
                    }
                    else if (command == "DECRBY" && by == long.MinValue)
                    {
                        await DrainAsync().ConfigureAwait(false);
                        _reply.Error("ERR decrement would overflow");
                    }
                    else
                    {
                        Defer(_kv.IncrementAsync(caller, Text(1), command == "INCRBY" ? by : -by, textIntegers: true, ct, afterWritesUnderWay: WritesUnderWay), PendingKind.Integer);
                    }
                }
                return;
            case "EXPIRE" or "PEXPIRE" or "EXPIREAT" or "PEXPIREAT":
                await ExpireAsync(caller, command, ct).ConfigureAwait(false);
                return;
        }
        await DrainAsync().ConfigureAwait(false);
        switch (command)
        {
            case "GETDEL":
                if (Arity(2, exact: true))
                {
                    var (entry, deleted) = await _kv.UpdateAsync(caller, Text(1), (current, _) => current is null ? KvChange.Keep : KvChange.Remove, ct)
                        .ConfigureAwait(false);
                    if (deleted)
                    {
                        _reply.Value(entry!.ValueJson);
                    }
                    else
                    {
                        _reply.Null();
                    }
                }
                return;
            case "GETEX":
                await GetExAsync(caller, ct).ConfigureAwait(false);
                return;
            case "MGET":
                if (Arity(2, exact: false))
                {
                    await MGetAsync(caller, ct).ConfigureAwait(false);
                }
                return;
            case "MSET":
                if (_argCount < 3 || _argCount % 2 == 0)
                {
                    WrongArity();
                    return;
                }
                {
                    var items = new (string Key, string ValueJson)[(_argCount - 1) / 2];
                    for (var i = 0; i < items.Length; i++)
                    {
                        items[i] = (Text(1 + (2 * i)), Json(2 + (2 * i)));
                    }
                    await _kv.SetManyJsonAsync(caller, items, _kv.DefaultExpiresAtMs(), ct, limit: int.MaxValue, afterWritesUnderWay: WritesUnderWay).ConfigureAwait(false); // (bounded by MaxCommandBytes)
                    _reply.Ok();
                }
                return;
            case "EXISTS" or "TOUCH": // (no access times to touch: TOUCH counts the keys that exist, as EXISTS)
                if (Arity(2, exact: false))
                {
                    _reply.Integer(await CountExistingAsync(caller, ct).ConfigureAwait(false));
                }
                return;
            case "TTL" or "PTTL":
                if (Arity(2, exact: true))
                {
                    var entry = await _kv.GetEntryAsync(caller, Text(1), ct).ConfigureAwait(false);
                    if (entry is null)
                    {
                        _reply.Integer(-2);
                    }
                    else if (entry.ExpiresAtMs is not { } expires)
                    {
                        _reply.Integer(-1);
                    }
                    else
                    {
                        var left = Math.Max(0, expires - _kv.NowMs);
                        _reply.Integer(command == "PTTL" ? left : (left + 500) / 1000);
                    }
                }
                return;
            case "PERSIST":
                if (Arity(2, exact: true))
                {
                    var persisted = await _kv.UpdateAsync(caller, Text(1), (current, _) => current?.ExpiresAtMs is null ? KvChange.Keep : KvChange.ExpireAt(null), ct)
                        .ConfigureAwait(false);
                    _reply.Integer(persisted.Changed ? 1 : 0);
                }
                return;
            case "STRLEN":
                if (Arity(2, exact: true))
                {
                    var entry = await _kv.GetEntryAsync(caller, Text(1), ct).ConfigureAwait(false);
                    _reply.Integer(entry is null ? 0 : RespWriter.ValueLength(entry.ValueJson));
                }
                return;
            case "EXPIRETIME" or "PEXPIRETIME":
                if (Arity(2, exact: true))
                {
                    var entry = await _kv.GetEntryAsync(caller, Text(1), ct).ConfigureAwait(false);
                    _reply.Integer(entry is null ? -2 : entry.ExpiresAtMs is not { } at ? -1 : command == "PEXPIRETIME" ? at : at / 1000);
                }
                return;
            case "GETSET":
                if (Arity(3, exact: true))
                {
                    // SET key value GET: the old value, and the new one with the default TTL (Redis's GETSET drops the TTL).
                    var json = Json(2);
                    var expiry = _kv.DefaultExpiresAtMs();
                    var (old, _) = await _kv.UpdateAsync(caller, Text(1), (_, _) => KvChange.Write(json, expiry), ct).ConfigureAwait(false);
                    if (old is null)
                    {
                        _reply.Null();
                    }
                    else
                    {
                        _reply.Value(old.ValueJson);
                    }
                }
                return;
            case "CONFIG":
                Config();
                return;
            case "MEMORY":
                await MemoryAsync(caller, ct).ConfigureAwait(false);
                return;
            case "TYPE":
                if (Arity(2, exact: true))
                {
                    _reply.Simple(await _kv.GetEntryAsync(caller, Text(1), ct).ConfigureAwait(false) is null ? "none" : "string");
                }
                return;
            case "SCAN":
                await ScanAsync(caller, ct).ConfigureAwait(false);
                return;
            case "KEYS":
                if (Arity(2, exact: true))
                {
                    var keys = await AllKeysAsync(caller, Text(1), ct).ConfigureAwait(false);
                    _reply.Array(keys.Count);
                    foreach (var key in keys)
                    {
                        _reply.Bulk(key);
                    }
                }
                return;
            case "DBSIZE":
                if (Arity(1, exact: true))
                {
                    _reply.Integer((await _kv.CountAsync(caller, ct).ConfigureAwait(false)).Keys);
                }
                return;
            case "INFO":
                await InfoAsync(caller, ct).ConfigureAwait(false);
                return;
            case "OBJECT":
                await ObjectAsync(caller, ct).ConfigureAwait(false);
                return;
            default:
                await StringCommandAsync(command, caller, ct).ConfigureAwait(false);
                return;
        }
    }

    private static bool Known(string command) => command is "SETNX" or "SETEX" or "PSETEX" or "DEL" or "UNLINK" or "INCR" or "DECR" or "INCRBY" or "DECRBY"
        or "GETDEL" or "GETEX" or "MGET" or "MSET" or "EXISTS" or "EXPIRE" or "PEXPIRE" or "EXPIREAT" or "PEXPIREAT" or "TTL" or "PTTL" or "PERSIST"
        or "TYPE" or "SCAN" or "KEYS" or "DBSIZE" or "INFO" or "OBJECT" or "STRLEN" or "EXPIRETIME" or "PEXPIRETIME" or "GETSET" or "CONFIG" or "MEMORY"
        or "TOUCH" || IsStringCommand(command);

    /// <summary>
    /// The commands COMMAND lists: Redis's arity (negative: at least that many) and key positions (first, last, step;
    /// last -1: to the end; all 0: no keys, or keys a script's numkeys names), which cluster-aware clients route by.
    /// </summary>
    private static readonly CommandSpec[] Commands =
    [
        new("ping", -1), new("echo", 2), new("hello", -1), new("auth", -2), new("select", 2), new("quit", -1), new("reset", 1),
        new("client", -2), new("command", -1), new("get", 2, First: 1, Last: 1), new("set", -3, true, 1, 1),
        new("setex", 4, true, 1, 1), new("psetex", 4, true, 1, 1), new("setnx", 3, true, 1, 1), new("getdel", 2, true, 1, 1),
        new("getex", -2, true, 1, 1), new("mget", -2, First: 1, Last: -1), new("mset", -3, true, 1, -1, 2), new("del", -2, true, 1, -1),
        new("unlink", -2, true, 1, -1), new("exists", -2, First: 1, Last: -1), new("expire", -3, true, 1, 1), new("pexpire", -3, true, 1, 1),
        new("expireat", -3, true, 1, 1), new("pexpireat", -3, true, 1, 1), new("ttl", 2, First: 1, Last: 1), new("pttl", 2, First: 1, Last: 1),
        new("persist", 2, true, 1, 1), new("incr", 2, true, 1, 1), new("incrby", 3, true, 1, 1), new("decr", 2, true, 1, 1),
        new("decrby", 3, true, 1, 1), new("scan", -2), new("keys", 2), new("type", 2, First: 1, Last: 1), new("dbsize", 1),
        new("info", -1), new("object", -2), new("strlen", 2, First: 1, Last: 1), new("expiretime", 2, First: 1, Last: 1),
        new("pexpiretime", 2, First: 1, Last: 1), new("getset", 3, true, 1, 1), new("config", -2), new("memory", -2),
        new("multi", 1), new("exec", 1), new("discard", 1), new("watch", -2, First: 1, Last: -1), new("unwatch", 1),
        new("eval", -3, true, Movable: true), new("evalsha", -3, true, Movable: true), new("eval_ro", -3, Movable: true),
        new("evalsha_ro", -3, Movable: true), new("script", -2), new("append", 3, true, 1, 1), new("incrbyfloat", 3, true, 1, 1),
        new("getrange", 4, First: 1, Last: 1), new("substr", 4, First: 1, Last: 1), new("setrange", 4, true, 1, 1),
        new("rename", 3, true, 1, 2), new("renamenx", 3, true, 1, 2), new("copy", -3, true, 1, 2), new("msetnx", -3, true, 1, -1, 2),
        new("touch", -2, First: 1, Last: -1), new("time", 1), new("lastsave", 1), new("role", 1), new("flushdb", -1, true),
        new("flushall", -1, true), new("wait", 3), new("waitaof", 4),
    ];

    /// <summary>A command as COMMAND describes it; <paramref name="Movable"/>: its keys follow a numkeys argument (EVAL).</summary>
    private readonly record struct CommandSpec(string Name, int Arity, bool Write = false, int First = 0, int Last = 0, int Step = 1, bool Movable = false);

    // ---- Errors -------------------------------------------------------------------------------------------

    /// <summary>Checks the argument count; when it is wrong, writes the error (call only with no writes pending).</summary>
    private bool Arity(int count, bool exact)
    {
        if (exact ? _argCount == count : _argCount >= count)
        {
            return true;
        }
        WrongArity();
        return false;
    }

    /// <summary>As <see cref="Arity"/>, first waiting for the writes under way so the error follows their replies.</summary>
    private async ValueTask<bool> ArityAsync(int count, bool exact)
    {
        if (exact ? _argCount == count : _argCount >= count)
        {
            return true;
        }
        await DrainAsync().ConfigureAwait(false);
        WrongArity();
        return false;
    }

    /// <summary>
    /// Names the connection (empty: no name), or answers Redis's error for a name with a space, a newline or a character
    /// outside printable ASCII: CLIENT LIST shows it on a line of its own fields, which such a name could forge.
    /// </summary>
    private bool TrySetName(string name)
    {
        if (!IsPrintableName(name))
        {
            _reply.Error("ERR Client names cannot contain spaces, newlines or special characters.");
            return false;
        }
        Name = name.Length == 0 ? null : name;
        return true;
    }

    private static bool IsPrintableName(string text) => !text.Any(c => c <= ' ' || c > '~');

    private void WrongArity() => _reply.Error($"ERR wrong number of arguments for '{Encoding.UTF8.GetString(Arg(0)).ToLowerInvariant()}' command");

    /// <summary>
    /// An HTTP request on the RESP port: a web page the user opened can make the browser POST to 127.0.0.1:6380, and the
    /// inline parser would answer each header line "unknown command", then run the body's lines (<c>SET …</c>,
    /// <c>FLUSHDB</c>) as commands, with the loopback trust of a server without keys. As Redis does, a command named
    /// <c>POST</c> or <c>Host:</c> closes the connection at once, without running anything after it.
    /// </summary>
    private void RefuseHttp()
    {
        _closeAfterReply = true;
        _closeReason = RespStats.ClosedCrossProtocol;
        _listener.Log.LogWarning("RESP: a client sent an HTTP request line or header ({Command}), likely a web page's cross-protocol request; the connection is closed",
            Printable(Arg(0)));
    }

    private void Unknown()
    {
        var text = new StringBuilder("ERR unknown command '").Append(Printable(Arg(0))).Append("', with args beginning with: ");
        for (var i = 1; i < _argCount && text.Length < 512; i++)
        {
            text.Append('\'').Append(Printable(Arg(i))).Append("' ");
        }
        _reply.Error(text.ToString());
    }

    private static string Printable(ReadOnlySpan<byte> bytes)
    {
        var text = Encoding.UTF8.GetString(bytes.Length > 128 ? bytes[..128] : bytes);
        return new string([.. text.Select(c => char.IsControl(c) ? ' ' : c)]);
    }
}
