using System.Globalization;
using System.IO.Enumeration;
using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Resp;

/// <summary>The commands: Redis's reply shapes and error texts, each going through <see cref="KvService"/>.</summary>
internal sealed partial class RespConnection
{
    private const string WrongInteger = "ERR value is not an integer or out of range";
    private const string Syntax = "ERR syntax error";
    private Caller? _authenticated;
    private string? _presentedKey;
    private long _checkedAt;

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
            _reply.Error("NOAUTH Authentication required.");
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
                        Defer(_kv.DeleteKeyAsync(caller, Text(1), ct), PendingKind.OneOrZero);
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
                    Defer(_kv.IncrementAsync(caller, Text(1), command == "INCR" ? 1 : -1, textIntegers: true, ct), PendingKind.Integer);
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
                        Defer(_kv.IncrementAsync(caller, Text(1), command == "INCRBY" ? by : -by, textIntegers: true, ct), PendingKind.Integer);
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

    // ---- Authentication ----------------------------------------------------------------------------------

    /// <summary>
    /// The caller of this connection: the key's (AUTH), re-checked once a second so a revoked key stops
    /// working as it does over HTTP; with no keys at all, a loopback client acts as the open-mode caller.
    /// </summary>
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

    /// <summary>The caller when <see cref="CallerAsync"/> would know it without reading anything (no key check or refresh due).</summary>
    private bool TryCallerNow([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Caller? caller)
    {
        if (_authenticated is not null)
        {
            caller = _authenticated;
            return _presentedKey is null || Environment.TickCount64 - _checkedAt <= 1000;
        }
        var keys = _listener.Keys;
        caller = _listener.OpenCaller;
        return _loopback && !keys.RefreshDue && !keys.HasActiveKeys;
    }

    private ValueTask<Caller?> CallerAsync(CancellationToken ct) =>
        _transactionCaller is not null ? new(_transactionCaller) // EXEC checked it for the whole transaction
        : TryCallerNow(out var caller) ? new(caller) : CheckCallerAsync(ct);

    private async ValueTask<Caller?> CheckCallerAsync(CancellationToken ct)
    {
        var keys = _listener.Keys;
        if (_authenticated is not null)
        {
            var now = Environment.TickCount64;
            if (_presentedKey is not null && now - _checkedAt > 1000)
            {
                if (OnEventThread)
                {
                    await Task.Yield(); // the key check may read the store
                }
                _checkedAt = now;
                if (await keys.AuthenticateAsync(_presentedKey, ct).ConfigureAwait(false) is null)
                {
                    _authenticated = null;
                    _presentedKey = null;
                }
            }
            if (_authenticated is not null)
            {
                return _authenticated;
            }
        }
        if (keys.RefreshDue && OnEventThread)
        {
            await Task.Yield(); // the refresh reads the store
        }
        await keys.RefreshIfDueAsync(ct).ConfigureAwait(false);
        return !keys.HasActiveKeys && _loopback ? _listener.OpenCaller : null;
    }

    private static bool IPAddressIsLoopback(System.Net.IPEndPoint remote) =>
        System.Net.IPAddress.IsLoopback(remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address);

    private async ValueTask AuthAsync(CancellationToken ct)
    {
        if (_argCount < 2)
        {
            WrongArity();
            return;
        }
        if (_argCount > 3)
        {
            _reply.Error(Syntax); // as Redis: AUTH takes a password, or a user and a password
            return;
        }
        if (_argCount == 3 && !Is(1, "DEFAULT"u8))
        {
            await DenyAsync("a user other than 'default'", ct).ConfigureAwait(false);
            return;
        }
        if (await TryAuthenticateAsync(Text(_argCount - 1), ct).ConfigureAwait(false))
        {
            _reply.Ok();
        }
    }

    /// <summary>Checks the key; on failure writes the error reply (WRONGPASS, or a throttle error) and returns false.</summary>
    private async ValueTask<bool> TryAuthenticateAsync(string presented, CancellationToken ct)
    {
        var keys = _listener.Keys;
        await keys.RefreshIfDueAsync(ct).ConfigureAwait(false);
        if (!keys.HasActiveKeys)
        {
            _reply.Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            return false;
        }
        var key = await keys.AuthenticateAsync(presented, ct).ConfigureAwait(false);
        if (key is null)
        {
            await DenyAsync("unknown, revoked or expired key", ct).ConfigureAwait(false);
            return false;
        }
        _authenticated = new Caller(key.Tenant, key.Actor, key.Role, key.Scope, key.Id);
        _presentedKey = presented;
        _checkedAt = Environment.TickCount64;
        return true;
    }

    private ValueTask DenyAsync(string reason, CancellationToken ct)
    {
        _ = ct;
        if (!_listener.Throttle.TryCount(Remote?.Address, out _))
        {
            _reply.Error("ERR too many bad API keys from this address; wait before trying again");
            _closeAfterReply = true;
        }
        else
        {
            _reply.Error("WRONGPASS invalid username-password pair or user is disabled.");
        }
        _listener.AuditDenied(Remote, reason);
        return ValueTask.CompletedTask;
    }

    private async ValueTask HelloAsync(CancellationToken ct)
    {
        var position = 1;
        var protocol = _reply.Resp3 ? 3L : 2L;
        if (_argCount > 1)
        {
            if (!TryLong(1, out protocol))
            {
                _reply.Error("ERR Protocol version is not an integer or out of range");
                return;
            }
            if (protocol is < 2 or > 3)
            {
                _reply.Error("NOPROTO unsupported protocol version");
                return;
            }
            position = 2;
        }
        string? name = null;
        while (position < _argCount)
        {
            if (Is(position, "AUTH"u8) && position + 2 < _argCount)
            {
                if (!Is(position + 1, "DEFAULT"u8))
                {
                    await DenyAsync("a user other than 'default'", ct).ConfigureAwait(false);
                    return;
                }
                if (!await TryAuthenticateAsync(Text(position + 2), ct).ConfigureAwait(false))
                {
                    return;
                }
                position += 3;
            }
            else if (Is(position, "SETNAME"u8) && position + 1 < _argCount)
            {
                name = Text(position + 1);
                position += 2;
            }
            else
            {
                _reply.Error($"ERR Syntax error in HELLO option '{Encoding.UTF8.GetString(Arg(position))}'");
                return;
            }
        }
        if (await CallerAsync(ct).ConfigureAwait(false) is null)
        {
            _reply.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
            return;
        }
        if (name is not null && !TrySetName(name))
        {
            return; // as Redis: the name is checked as CLIENT SETNAME checks it, and a bad one ends HELLO with its error
        }
        _reply.Resp3 = protocol == 3;
        _reply.Map(7);
        _reply.Bulk("server");
        _reply.Bulk("redis");
        _reply.Bulk("version");
        _reply.Bulk(RespListener.RedisVersion);
        _reply.Bulk("proto");
        _reply.Integer(protocol);
        _reply.Bulk("id");
        _reply.Integer(Id);
        _reply.Bulk("mode");
        _reply.Bulk("standalone");
        _reply.Bulk("role");
        _reply.Bulk("master");
        _reply.Bulk("modules");
        _reply.Array(0);
    }

    // ---- Strings ------------------------------------------------------------------------------------------

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
            _reply.Error("NOAUTH Authentication required.");
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
            _reply.Error("NOAUTH Authentication required.");
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
        Defer(ExpireInStoreAsync(caller, Text(1), command, nx, xx, gt, lt, expiresAt, ct), PendingKind.OneOrZero);
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
        CancellationToken ct)
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
        }, ct).ConfigureAwait(false);
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

    // ---- Keys ---------------------------------------------------------------------------------------------

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

    // ---- Server -------------------------------------------------------------------------------------------

    private void Ping()
    {
        if (_argCount > 2)
        {
            WrongArity();
        }
        else if (_argCount == 2)
        {
            _reply.Bulk(Arg(1));
        }
        else
        {
            _reply.Raw("+PONG\r\n"u8);
        }
    }

    private async ValueTask InfoAsync(Caller caller, CancellationToken ct)
    {
        var wanted = _argCount > 1 ? Encoding.ASCII.GetString(Arg(1)).ToLowerInvariant() : "default";
        bool Wants(string section) => wanted is "default" or "all" or "everything" || wanted == section;
        var text = new StringBuilder();
        if (Wants("server"))
        {
            var process = Environment.ProcessId;
            text.Append("# Server\r\n")
                .Append("redis_version:").Append(RespListener.RedisVersion).Append("\r\n")
                .Append("engram_version:").Append(typeof(RespConnection).Assembly.GetName().Version).Append("\r\n")
                .Append("redis_mode:standalone\r\n")
                .Append("process_id:").Append(process).Append("\r\n")
                .Append("tcp_port:").Append(_listener.Port).Append("\r\n")
                .Append("uptime_in_seconds:").Append((long)_listener.Uptime.TotalSeconds).Append("\r\n")
                .Append("\r\n");
        }
        if (Wants("clients"))
        {
            // No command blocks (no BLPOP and the like); redis-cli --stat prints garbage when the field is missing.
            text.Append("# Clients\r\nconnected_clients:").Append(_listener.ConnectionCount).Append("\r\nblocked_clients:").Append(_listener.BlockedCount)
                .Append("\r\n\r\n");
        }
        if (Wants("stats"))
        {
            var stats = _listener.Stats;
            stats.Add(_tally); // this connection's commands so far, this INFO included
            text.Append("# Stats\r\ntotal_connections_received:").Append(stats.Accepted).Append("\r\n")
                .Append("total_commands_processed:").Append(stats.TotalCommands).Append("\r\n")
                .Append("total_net_input_bytes:").Append(stats.BytesIn).Append("\r\n")
                .Append("total_net_output_bytes:").Append(stats.BytesOut).Append("\r\n")
                .Append("rejected_connections:").Append(stats.Closed(RespStats.ClosedMaxClients)).Append("\r\n")
                .Append("total_error_replies:").Append(stats.TotalErrors).Append("\r\n")
                .Append("engram_closed_idle_timeout:").Append(stats.Closed(RespStats.ClosedIdle)).Append("\r\n")
                .Append("engram_closed_oversized_input:").Append(stats.Closed(RespStats.ClosedOversized)).Append("\r\n")
                .Append("engram_closed_protocol_error:").Append(stats.Closed(RespStats.ClosedProtocol)).Append("\r\n")
                .Append("engram_closed_cross_protocol:").Append(stats.Closed(RespStats.ClosedCrossProtocol)).Append("\r\n\r\n");
        }
        if (wanted is "all" or "everything" or "commandstats")
        {
            var stats = _listener.Stats;
            stats.Add(_tally);
            text.Append("# Commandstats\r\n");
            for (var i = 0; i < RespStats.CommandNames.Length; i++)
            {
                if (stats.Commands(i) is var calls && calls > 0)
                {
                    text.Append("cmdstat_").Append(RespStats.CommandNames[i]).Append(":calls=").Append(calls).Append("\r\n");
                }
            }
            text.Append("\r\n");
        }
        if (wanted is "all" or "everything" or "errorstats")
        {
            var stats = _listener.Stats;
            text.Append("# Errorstats\r\n");
            for (var i = 0; i < RespStats.ErrorKinds.Length; i++)
            {
                if (stats.Errors(i) is var count && count > 0)
                {
                    text.Append("errorstat_").Append(RespStats.ErrorKinds[i]).Append(":count=").Append(count).Append("\r\n");
                }
            }
            text.Append("\r\n");
        }
        if (Wants("memory"))
        {
            var used = GC.GetTotalMemory(false);
            text.Append("# Memory\r\nused_memory:").Append(used).Append("\r\n")
                .Append("used_memory_rss:").Append(Environment.WorkingSet).Append("\r\n")
                .Append("number_of_cached_scripts:").Append(_listener.Scripts.CachedCount).Append("\r\n")
                .Append("engram_arriving_bytes:").Append(_listener.ArrivingBytes).Append("\r\n")
                .Append("engram_max_arriving_bytes:").Append(_options.MaxArrivingBytes).Append("\r\n\r\n");
        }
        if (Wants("persistence"))
        {
            // Every write is appended to the key's history before it is acknowledged (Redis's AOF, with appendfsync no or
            // always as CONFIG GET reports it); backups are the snapshots (RDB saves).
            text.Append("# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:").Append(LastSaveSeconds)
                .Append("\r\nrdb_last_bgsave_status:").Append(Engram.Core.Operations.BackupMetrics.LastFailed ? "err" : "ok")
                .Append("\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\nengram_durability:").Append(_kv.Options.Durability.ToString().ToLowerInvariant())
                .Append("\r\n\r\n");
        }
        if (Wants("replication"))
        {
            text.Append("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
        }
        if (Wants("keyspace"))
        {
            text.Append("# Keyspace\r\n");
            var count = await _kv.CountAsync(caller, ct).ConfigureAwait(false);
            if (count.Keys > 0)
            {
                text.Append("db0:keys=").Append(count.Keys).Append(",expires=").Append(count.Expiring).Append(",avg_ttl=").Append(count.AverageTtlMs).Append("\r\n");
            }
        }
        _reply.Bulk(text.ToString());
    }

    private void Client()
    {
        if (_argCount < 2)
        {
            WrongArity();
            return;
        }
        var sub = Encoding.ASCII.GetString(Arg(1)).ToUpperInvariant();
        switch (sub)
        {
            case "SETNAME" when _argCount == 3:
                if (TrySetName(Text(2)))
                {
                    _reply.Ok();
                }
                return;
            case "GETNAME" when _argCount == 2:
                if (Name is null)
                {
                    _reply.Null();
                }
                else
                {
                    _reply.Bulk(Name);
                }
                return;
            case "ID" when _argCount == 2:
                _reply.Integer(Id);
                return;
            case "SETINFO" when _argCount == 4:
                // Accepted and not kept, as Redis checks it: a known attribute, and a value CLIENT LIST could show.
                var attribute = Encoding.ASCII.GetString(Arg(2)).ToLowerInvariant();
                if (attribute is not ("lib-name" or "lib-ver"))
                {
                    _reply.Error($"ERR Unrecognized option '{Encoding.UTF8.GetString(Arg(2))}'");
                }
                else if (!IsPrintableName(Text(3)))
                {
                    _reply.Error($"ERR {attribute} cannot contain spaces, newlines or special characters.");
                }
                else
                {
                    _reply.Ok();
                }
                return;
            case "INFO" when _argCount == 2:
                _reply.Bulk(ClientLine(this, "client|info"));
                return;
            case "LIST":
                ClientList();
                return;
            case "SETNAME" or "GETNAME" or "ID" or "SETINFO" or "INFO":
                _reply.Error($"ERR wrong number of arguments for 'client|{sub.ToLowerInvariant()}' command");
                return;
            default:
                _reply.Error($"ERR unknown subcommand '{Encoding.UTF8.GetString(Arg(1))}'. Try CLIENT HELP.");
                return;
        }
    }

    /// <summary>
    /// CLIENT LIST [TYPE type | ID id ...], with Redis 7.0's checks: one filter, a known type (every connection here is
    /// <c>normal</c>; <c>master</c>, <c>replica</c>/<c>slave</c> and <c>pubsub</c> list none), whole-number ids. The
    /// connections of this client's tenant only (in open mode: every loopback client); before AUTH, itself.
    /// </summary>
    private void ClientList()
    {
        HashSet<long>? ids = null;
        var none = false;
        if (_argCount > 3 && Is(2, "ID"u8))
        {
            ids = [];
            for (var i = 3; i < _argCount; i++)
            {
                if (!TryLong(i, out var id))
                {
                    _reply.Error("ERR Invalid client ID");
                    return;
                }
                ids.Add(id);
            }
        }
        else if (_argCount == 4 && Is(2, "TYPE"u8))
        {
            if (!(Is(3, "NORMAL"u8) || Is(3, "MASTER"u8) || Is(3, "REPLICA"u8) || Is(3, "SLAVE"u8) || Is(3, "PUBSUB"u8)))
            {
                _reply.Error($"ERR Unknown client type '{Printable(Arg(3))}'");
                return;
            }
            none = !Is(3, "NORMAL"u8);
        }
        else if (_argCount != 2)
        {
            _reply.Error(Syntax);
            return;
        }
        var anonymousOpen = _authenticated is null && !_listener.Keys.HasActiveKeys;
        var lines = new StringBuilder();
        foreach (var other in _listener.Connections.OrderBy(c => c.Id))
        {
            if (!none && (ids is null || ids.Contains(other.Id))
                && (other == this || (Tenant is not null && other.Tenant == Tenant) || (anonymousOpen && other.Tenant is null)))
            {
                lines.Append(ClientLine(other, "client|list"));
            }
        }
        _reply.Bulk(lines.ToString());
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
            var keys = new string[Math.Min(DeleteChunk, _argCount - start)];
            for (var i = 0; i < keys.Length; i++)
            {
                keys[i] = Text(start + i);
            }
            // Inside MULTI, _kv is the transaction's: the call is done when it returns.
            deleted += await _kv.DeleteKeysAsync(caller, keys, ct).ConfigureAwait(false);
        }
        return deleted;
    }

    /// <summary>EXISTS/TOUCH: how many of the keys exist, a key named twice counted twice; read in chunks as MGET reads.</summary>
    private async ValueTask<long> CountExistingAsync(Caller caller, CancellationToken ct)
    {
        long found = 0;
        for (var start = 1; start < _argCount; start += MGetChunk)
        {
            var keys = new string[Math.Min(MGetChunk, _argCount - start)];
            for (var i = 0; i < keys.Length; i++)
            {
                keys[i] = Text(start + i);
            }
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

    /// <summary>
    /// CONFIG GET pattern…: the Redis settings clients and tools ask for (redis-benchmark warned "Could not fetch server
    /// CONFIG" without it), answered from Engram's own. Read-only: Engram reads its settings at start, so CONFIG SET,
    /// REWRITE and RESETSTAT are refused with the reason.
    /// </summary>
    private void Config()
    {
        var sub = _argCount >= 2 ? Encoding.ASCII.GetString(Arg(1)).ToUpperInvariant() : "";
        switch (sub)
        {
            case "" or "GET" when _argCount < 3:
                _reply.Error($"ERR wrong number of arguments for '{(sub.Length == 0 ? "config" : "config|get")}' command");
                return;
            case "GET":
                var patterns = Enumerable.Range(2, _argCount - 2).Select(Text).ToList();
                var matched = ConfigValues().Where(p => patterns.Any(pattern => FileSystemName.MatchesSimpleExpression(pattern, p.Name, ignoreCase: true))).ToList();
                _reply.Map(matched.Count);
                foreach (var (name, value) in matched)
                {
                    _reply.Bulk(name);
                    _reply.Bulk(value);
                }
                return;
            case "SET" or "REWRITE" or "RESETSTAT":
                _reply.Error($"ERR CONFIG {sub} is not supported: Engram reads its settings (Engram:Resp, Engram:KeyValue) at start");
                return;
            default:
                _reply.Error($"ERR unknown subcommand '{Encoding.UTF8.GetString(Arg(1))}'. Try CONFIG HELP.");
                return;
        }
    }

    /// <summary>
    /// MEMORY USAGE key [SAMPLES n]: an estimate of the bytes the key's entry takes in the store (its key, its value as
    /// stored, about 64 bytes of the row's other columns; its history is not counted), nil for a missing key: what
    /// <c>redis-cli --memkeys</c> reads.
    /// </summary>
    private async ValueTask MemoryAsync(Caller caller, CancellationToken ct)
    {
        var sub = _argCount >= 2 ? Encoding.ASCII.GetString(Arg(1)).ToUpperInvariant() : "";
        if (sub != "USAGE")
        {
            _reply.Error(sub.Length == 0 ? "ERR wrong number of arguments for 'memory' command" : $"ERR unknown subcommand '{Encoding.UTF8.GetString(Arg(1))}'. Try MEMORY HELP.");
            return;
        }
        if (_argCount < 3)
        {
            _reply.Error("ERR wrong number of arguments for 'memory|usage' command");
            return;
        }
        for (var i = 3; i < _argCount; i += 2) // SAMPLES n, parsed as Redis does (any number: one value is no sample)
        {
            if (!Is(i, "SAMPLES"u8) || i + 1 >= _argCount)
            {
                _reply.Error(Syntax);
                return;
            }
            if (!TryLong(i + 1, out _))
            {
                _reply.Error(WrongInteger);
                return;
            }
        }
        var key = Text(2);
        var entry = await _kv.GetEntryAsync(caller, key, ct).ConfigureAwait(false);
        if (entry is null)
        {
            _reply.Null();
            return;
        }
        _reply.Integer(Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(entry.ValueJson) + StoredEntryOverheadBytes);
    }

    /// <summary>What a stored entry takes beyond its key and value: tenant, version, seq, times and the B-tree cell (about).</summary>
    private const int StoredEntryOverheadBytes = 64;

    private IEnumerable<(string Name, string Value)> ConfigValues()
    {
        var endpoint = _options.EndPoint();
        var full = _kv.Options.Durability == Core.Storage.WriteDurability.Full;
        return
        [
            ("appendonly", "yes"), // every write is in the store before it is acknowledged
            ("appendfsync", full ? "always" : "no"), // relaxed: synced by the next full write or checkpoint
            ("save", ""),
            ("databases", "1"),
            ("bind", endpoint.Address.ToString()),
            ("port", endpoint.Port.ToString(CultureInfo.InvariantCulture)),
            ("maxclients", _options.MaxConnections.ToString(CultureInfo.InvariantCulture)),
            ("timeout", _options.IdleTimeoutSeconds.ToString(CultureInfo.InvariantCulture)),
            ("proto-max-bulk-len", _options.MaxCommandBytes.ToString(CultureInfo.InvariantCulture)),
            ("maxmemory", "0"),
            ("maxmemory-policy", "noeviction"),
        ];
    }

    /// <summary>
    /// One line of CLIENT LIST / CLIENT INFO in Redis's format (the fields clients read); <paramref name="running"/> is the
    /// command this connection runs (its own line's <c>cmd</c>; other connections' last commands are not kept).
    /// </summary>
    private string ClientLine(RespConnection c, string running)
    {
        var now = Environment.TickCount64;
        return string.Create(CultureInfo.InvariantCulture,
            $"id={c.Id} addr={c.Remote} name={c.Name} age={(now - c.OpenedAt) / 1000} idle={(now - c.LastActivity) / 1000} db=0 resp={(c == this && _reply.Resp3 ? 3 : 2)} cmd={(c == this ? running : "NULL")} tot-net-in={c.TotalBytesIn} tot-net-out={c.TotalBytesOut} tot-cmds={c.TotalCommands}\n");
    }

    /// <summary>OBJECT ENCODING key (int, embstr or raw, as Redis would keep the value; nil for a missing key), OBJECT HELP.</summary>
    private async ValueTask ObjectAsync(Caller caller, CancellationToken ct)
    {
        if (_argCount == 3 && Is(1, "ENCODING"u8))
        {
            var entry = await _kv.GetEntryAsync(caller, Text(2), ct).ConfigureAwait(false);
            if (entry is null)
            {
                _reply.Null();
                return;
            }
            var json = entry.ValueJson;
            _reply.Bulk(long.TryParse(json, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _) ? "int"
                : Encoding.UTF8.GetByteCount(json) - 2 <= 44 ? "embstr" : "raw");
            return;
        }
        if (_argCount == 2 && Is(1, "HELP"u8))
        {
            _reply.Lines(["OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "ENCODING <key>"]);
            return;
        }
        _reply.Error($"ERR unknown subcommand or wrong number of arguments for '{(_argCount > 1 ? Encoding.UTF8.GetString(Arg(1)) : "")}'. Try OBJECT HELP.");
    }

    /// <summary>
    /// COMMAND, COMMAND COUNT, COMMAND INFO [name…], COMMAND LIST [FILTERBY PATTERN p | MODULE m], COMMAND GETKEYS, COMMAND
    /// DOCS (empty), COMMAND HELP: what clients probe (redis-cli's hints, cluster clients' key positions).
    /// </summary>
    private void CommandInfo()
    {
        var sub = _argCount > 1 ? Encoding.ASCII.GetString(Arg(1)).ToUpperInvariant() : "";
        switch (sub)
        {
            case "":
                _reply.Array(Commands.Length);
                foreach (var command in Commands)
                {
                    WriteCommand(command);
                }
                return;
            case "COUNT":
                _reply.Integer(Commands.Length);
                return;
            case "INFO" when _argCount == 2:
                goto case "";
            case "INFO":
                _reply.Array(_argCount - 2);
                for (var i = 2; i < _argCount; i++)
                {
                    if (FindCommand(i) is { } found)
                    {
                        WriteCommand(found);
                    }
                    else
                    {
                        _reply.Null();
                    }
                }
                return;
            case "LIST":
                CommandList();
                return;
            case "GETKEYS":
                CommandGetKeys();
                return;
            case "DOCS":
                _reply.Map(0);
                return;
            case "HELP":
                _reply.Lines(
                [
                    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "(no subcommand)", "    Return details about all commands.",
                    "COUNT", "    Return the total number of commands.",
                    "GETKEYS <full-command>", "    Return the keys from a full command.",
                    "INFO [<command-name> ...]", "    Return details about the named commands, or all of them.",
                    "LIST [FILTERBY (MODULE <module-name>|PATTERN <pattern>)]", "    Return the names of the commands, filtered.",
                    "DOCS [<command-name> ...]", "    Return documentary information (none here).",
                    "HELP", "    Print this help.",
                ]);
                return;
            default:
                _reply.Error($"ERR unknown subcommand '{Encoding.UTF8.GetString(Arg(1))}'. Try COMMAND HELP.");
                return;
        }
    }

    private CommandSpec? FindCommand(int arg)
    {
        var wanted = Encoding.UTF8.GetString(Arg(arg)).ToLowerInvariant();
        var found = Array.FindIndex(Commands, c => c.Name == wanted);
        return found < 0 ? null : Commands[found];
    }

    /// <summary>COMMAND LIST [FILTERBY PATTERN p | MODULE m] (no modules here: that filter lists nothing).</summary>
    private void CommandList()
    {
        if (_argCount == 2)
        {
            _reply.Array(Commands.Length);
            foreach (var command in Commands)
            {
                _reply.Bulk(command.Name);
            }
            return;
        }
        if (_argCount != 5 || !Is(2, "FILTERBY"u8) || !(Is(3, "PATTERN"u8) || Is(3, "MODULE"u8)))
        {
            _reply.Error(Syntax);
            return;
        }
        if (Is(3, "MODULE"u8))
        {
            _reply.Array(0);
            return;
        }
        var pattern = Encoding.UTF8.GetString(Arg(4)); // as CONFIG GET matches: * and ? (Redis's [] classes are not needed for names)
        var names = Commands.Where(c => FileSystemName.MatchesSimpleExpression(pattern, c.Name, ignoreCase: true)).ToArray();
        _reply.Array(names.Length);
        foreach (var command in names)
        {
            _reply.Bulk(command.Name);
        }
    }

    /// <summary>COMMAND GETKEYS command arg…: the key arguments, by the command's key positions (a script's by its numkeys).</summary>
    private void CommandGetKeys()
    {
        if (_argCount < 3)
        {
            WrongArity();
            return;
        }
        if (FindCommand(2) is not { } command)
        {
            _reply.Error("ERR Invalid command specified");
            return;
        }
        var argc = _argCount - 2; // the command's own arguments, its name included
        if (command.Arity > 0 ? argc != command.Arity : argc < -command.Arity)
        {
            _reply.Error("ERR Invalid number of arguments specified for command");
            return;
        }
        var keys = new List<int>();
        if (command.Movable)
        {
            if (!TryLong(4, out var numKeys) || numKeys < 0 || numKeys > argc - 3)
            {
                _reply.Error(!TryLong(4, out _) ? WrongInteger
                    : numKeys < 0 ? "ERR Number of keys can't be negative"
                    : "ERR Number of keys can't be greater than number of args");
                return;
            }
            for (var i = 0; i < numKeys; i++)
            {
                keys.Add(5 + i);
            }
        }
        else if (command.First > 0)
        {
            var last = command.Last < 0 ? argc - 1 : command.Last;
            for (var k = command.First; k <= last; k += command.Step)
            {
                keys.Add(2 + k);
            }
        }
        if (keys.Count == 0)
        {
            _reply.Error("ERR The command has no key arguments");
            return;
        }
        _reply.Array(keys.Count);
        foreach (var at in keys)
        {
            _reply.Bulk(Arg(at));
        }
    }

    private void WriteCommand(CommandSpec command)
    {
        _reply.Array(6);
        _reply.Bulk(command.Name);
        _reply.Integer(command.Arity);
        _reply.Array(command.Movable ? 2 : 1);
        _reply.Simple(command.Write ? "write" : "readonly");
        if (command.Movable)
        {
            _reply.Simple("movablekeys");
        }
        _reply.Integer(command.First);
        _reply.Integer(command.Last);
        _reply.Integer(command.First == 0 ? 0 : command.Step);
    }

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
