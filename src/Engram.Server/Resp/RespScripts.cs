using System.Diagnostics;
using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Server.Resp.Scripting;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Resp;

/// <summary>
/// EVAL / EVALSHA / EVAL_RO / EVALSHA_RO and SCRIPT (LOAD, EXISTS, FLUSH, KILL). A script is a transaction of the store, as
/// EXEC is (<see cref="KvService.TransactAsync{T}"/>): the keys it names in KEYS are read in one write step, its
/// <c>redis.call</c>s run through the very code that runs the commands outside (this connection pointed at the
/// transaction), and its changes are written in that step, so no other write comes between. A key the script did not
/// declare (a name it builds, the keys KEYS or SCAN found) is read when first touched, in the same step. Unlike Redis, a
/// script that fails (an error it does not catch, its time or memory limit, SCRIPT KILL) writes nothing at all. The Lua
/// side is <see cref="LuaSandbox"/>.
/// </summary>
internal sealed partial class RespConnection
{
    private static bool IsScript(string command) => command is "EVAL" or "EVALSHA" or "EVAL_RO" or "EVALSHA_RO";

    /// <summary>A checked EVAL/EVALSHA waiting to run with the scripts pipelined after it (<see cref="RunQueuedScriptsAsync"/>).</summary>
    private sealed record QueuedScript(byte[] Script, string Sha, byte[][] Keys, List<string> KeyNames, byte[][] Argv, bool ReadOnly)
    {
        /// <summary>What it holds in memory while queued (the script text is the cache's for EVALSHA, counted anyway).</summary>
        public long Bytes { get; } = Script.Length + Keys.Sum(k => (long)k.Length + 16) + Argv.Sum(a => (long)a.Length + 16);
    }

    /// <summary>
    /// The most scripts, keys they name and bytes they hold (script text, keys, arguments) queued to run as one write
    /// step: a client pipelining large EVALs keeps about one command's worth queued, as it did when each ran at once.
    /// </summary>
    private const int MaxQueuedScripts = 64;
    private const int MaxQueuedScriptKeys = 1024;
    private const long MaxQueuedScriptBytes = 1024 * 1024;

    /// <summary>
    /// Once the scripts of a write step have run this long, the rest wait for the next step, so a pipeline of scripts
    /// does not hold up every other write for the sum of their time limits.
    /// </summary>
    private static readonly TimeSpan ScriptStepBudget = TimeSpan.FromMilliseconds(50);

    private List<QueuedScript> _scripts = [];
    private int _scriptKeys;
    private long _scriptBytes;
    private Caller? _scriptsCaller;

    private static bool IsScriptCommand(ReadOnlySpan<byte> name) =>
        Ascii.EqualsIgnoreCase(name, "EVALSHA"u8) || Ascii.EqualsIgnoreCase(name, "EVAL"u8)
        || Ascii.EqualsIgnoreCase(name, "EVALSHA_RO"u8) || Ascii.EqualsIgnoreCase(name, "EVAL_RO"u8);

    /// <summary>
    /// EVAL and the rest. Outside MULTI a checked script is queued, and the scripts a read holds in a row run as one
    /// write step of the store, each on its own savepoint (<see cref="RunQueuedScriptsAsync"/>), at the next command
    /// that is not a script or the end of the read; a pipeline of scripts then costs one hand-off to the writer, not one
    /// each. Queued in MULTI, a script runs in EXEC's step as soon as EXEC reaches it.
    /// </summary>
    private async ValueTask EvalAsync(string command, CancellationToken ct)
    {
        if (_argCount < 3)
        {
            await RunQueuedScriptsAsync(ct).ConfigureAwait(false);
            WrongArity(); // before the key check, as Redis answers
            return;
        }
        var caller = await CallerAsync(ct).ConfigureAwait(false);
        QueuedScript? queued = null;
        var error = caller is null ? NoAuth : TryPrepareScript(command, caller, out queued);
        if (error is not null)
        {
            await RunQueuedScriptsAsync(ct).ConfigureAwait(false); // its error follows the replies of the scripts before it
            _reply.Error(error);
            return;
        }
        var ready = queued!; // (checked: no error)
        if (_transactionView is { } view)
        {
            // Queued in MULTI: EXEC's transaction is the script's; a script that fails leaves nothing of itself in it.
            var savepoint = view.Save();
            try
            {
                _reply.Raw(RunScript(caller!, view.Kv, ready).WrittenSpan);
            }
            catch (ScriptException ex)
            {
                view.RollBack(savepoint);
                _reply.Error(ex.Reply);
            }
            return;
        }
        if (_scripts.Count >= MaxQueuedScripts || _scriptKeys + ready.Keys.Length > MaxQueuedScriptKeys
            || _scriptBytes + ready.Bytes > MaxQueuedScriptBytes || (_scriptsCaller is not null && !ReferenceEquals(_scriptsCaller, caller)))
        {
            await RunQueuedScriptsAsync(ct).ConfigureAwait(false);
        }
        _scripts.Add(ready);
        _scriptKeys += ready.Keys.Length;
        _scriptBytes += ready.Bytes;
        _scriptsCaller = caller;
        if (_scriptBytes > MaxQueuedScriptBytes)
        {
            await RunQueuedScriptsAsync(ct).ConfigureAwait(false); // one large script: at once, as if alone
        }
    }

    /// <summary>Checks an EVAL's arguments and finds its script; null when it can run, else the error to answer.</summary>
    private string? TryPrepareScript(string command, Caller caller, out QueuedScript? queued)
    {
        queued = null;
        if (!TryLong(2, out var keyCount))
        {
            return WrongInteger;
        }
        if (keyCount < 0)
        {
            return "ERR Number of keys can't be negative";
        }
        if (keyCount > _argCount - 3)
        {
            return "ERR Number of keys can't be greater than number of args";
        }
        var scripts = _listener.Scripts;
        byte[] script;
        string sha;
        if (command is "EVAL" or "EVAL_RO")
        {
            script = Arg(1).ToArray();
            scripts.TryAdd(caller.Tenant, script, out sha); // a full cache still runs the script
        }
        else
        {
            sha = Encoding.ASCII.GetString(Arg(1));
            if (scripts.Find(caller.Tenant, sha) is not { } found)
            {
                return "NOSCRIPT No matching script. Please use EVAL.";
            }
            script = found;
            sha = sha.ToLowerInvariant();
        }
        var keys = new byte[keyCount][];
        var keyNames = new List<string>((int)keyCount);
        for (var i = 0; i < keyCount; i++)
        {
            keys[i] = Arg(3 + i).ToArray();
            if (RespWriter.TryDecode(keys[i]) is { } name)
            {
                keyNames.Add(name); // a key that is not text is not read: a command on it fails as it would outside
            }
        }
        var argv = new byte[_argCount - 3 - keyCount][];
        for (var i = 0; i < argv.Length; i++)
        {
            argv[i] = Arg(3 + (int)keyCount + i).ToArray();
        }
        queued = new QueuedScript(script, sha, keys, keyNames, argv, command.EndsWith("_RO", StringComparison.Ordinal));
        return null;
    }

    /// <summary>
    /// Runs the queued scripts as one write step over the keys they name, in order, and writes their replies. Each runs
    /// on a savepoint and sees only its own KEYS (as alone); one that fails is rolled back alone. Past
    /// <see cref="ScriptStepBudget"/> the rest run in another step.
    /// </summary>
    private async ValueTask RunQueuedScriptsAsync(CancellationToken ct)
    {
        while (_scripts.Count > 0)
        {
            var batch = _scripts;
            var caller = _scriptsCaller!;
            _scripts = [];
            _scriptKeys = 0;
            _scriptBytes = 0;
            _scriptsCaller = null;
            var keys = batch.SelectMany(s => s.KeyNames).Distinct(StringComparer.Ordinal).ToList();
            var results = new (ReplyBuffer? Reply, string? Error)[batch.Count];
            int ran;
            try
            {
                ran = await _kv.TransactAsync(caller, keys, view =>
                {
                    var started = Stopwatch.GetTimestamp();
                    var done = 0;
                    for (; done < batch.Count && (done == 0 || Stopwatch.GetElapsedTime(started) < ScriptStepBudget); done++)
                    {
                        var savepoint = view.Save();
                        try
                        {
                            results[done] = (RunScript(caller, view.Kv, batch[done]), null);
                        }
                        catch (ScriptException ex)
                        {
                            view.RollBack(savepoint);
                            results[done] = (null, ex.Reply);
                        }
                    }
                    return done;
                }, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                for (var i = 0; i < batch.Count; i++)
                {
                    ReplyFailure(ex);
                }
                continue;
            }
            for (var i = 0; i < ran; i++)
            {
                if (results[i].Error is { } error)
                {
                    _reply.Error(error);
                }
                else
                {
                    _reply.Raw(results[i].Reply!.WrittenSpan);
                }
            }
            if (ran < batch.Count)
            {
                // Not reached in this step: first in line for the next one.
                batch.RemoveRange(0, ran);
                batch.AddRange(_scripts);
                _scripts = batch;
                _scriptKeys = batch.Sum(s => s.Keys.Length);
                _scriptBytes = batch.Sum(s => s.Bytes);
                _scriptsCaller = caller;
            }
        }
    }

    /// <summary>
    /// Runs the script in the store's write step, on this thread; returns its reply. May run twice (a retried write); when it throws, nothing is written.
    /// </summary>
    private ReplyBuffer RunScript(Caller caller, KvService kv, QueuedScript queued)
    {
        var (script, sha, keys, argv, readOnly, resp3) = (queued.Script, queued.Sha, queued.Keys, queued.Argv, queued.ReadOnly, _reply.Resp3);
        var output = new ReplyBuffer();
        var writer = new RespWriter(output) { Resp3 = resp3, Tally = _tally };
        var scratch = new ReplyBuffer();
        var host = _listener.Scripts;
        var run = new ScriptRun(caller.Tenant, readOnly, args => ScriptCommand(args, scratch, readOnly), host.TimeLimitMs)
        {
            Log = (level, message) => _listener.Log.Log(level switch { 3 => LogLevel.Warning, 2 => LogLevel.Information, _ => LogLevel.Debug },
                "Script {Sha}: {Message}", sha, message),
        };
        var (savedKv, savedReply, savedCaller, savedReplies) = (_kv, _reply, _transactionCaller, _transactionReplies);
        _kv = kv;
        _transactionCaller = caller;
        try
        {
            host.Run(run, () => LuaSandbox.Execute(run, script, sha, keys, argv, writer, host.MemoryLimitBytes));
            return output;
        }
        finally
        {
            // (Inside EXEC these are EXEC's own, which its next commands use.)
            (_kv, _reply, _transactionCaller, _transactionReplies) = (savedKv, savedReply, savedCaller, savedReplies);
        }
    }

    /// <summary>One redis.call of a script (inside the store's step): its RESP2 reply, errors included.</summary>
    private ReadOnlyMemory<byte> ScriptCommand(byte[][] args, ReplyBuffer scratch, bool readOnly)
    {
        scratch.Clear();
        _reply = new RespWriter(scratch) { Tally = _tally }; // RESP2, as Redis gives scripts by default
        _transactionReplies = scratch;
        var name = Encoding.ASCII.GetString(args[0]).ToUpperInvariant();
        var known = Array.FindIndex(Commands, c => c.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
        if (known < 0)
        {
            _reply.Error("ERR Unknown Redis command called from script");
        }
        else if (!TransactionCommands.Contains(name) || NotFromScripts.Contains(name))
        {
            _reply.Error("ERR This Redis command is not allowed from script");
        }
        else if (Commands[known].Arity is var arity && (arity > 0 ? args.Length != arity : args.Length < -arity))
        {
            _reply.Error("ERR Wrong number of args calling Redis command from script");
        }
        else if (readOnly && Commands[known].Write)
        {
            _reply.Error("ERR Write commands are not allowed from read-only scripts.");
        }
        else
        {
            RunInTransaction(args);
        }
        return scratch.WrittenMemory;
    }

    private async ValueTask ScriptAsync(CancellationToken ct)
    {
        if (!Arity(2, exact: false))
        {
            return;
        }
        var sub = Encoding.ASCII.GetString(Arg(1)).ToUpperInvariant();
        if (sub == "HELP")
        {
            _reply.Lines(
            [
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "EXISTS <sha1> [<sha1> ...]", "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache (this tenant's).",
                "KILL", "    Kill the currently executing Lua script (nothing it did is written).",
                "LOAD <script>", "    Load a script into the scripts cache without executing it.",
                "HELP", "    Print this help.",
            ]);
            return;
        }
        var caller = await CallerAsync(ct).ConfigureAwait(false);
        if (caller is null)
        {
            _reply.Error(NoAuth);
            return;
        }
        var scripts = _listener.Scripts;
        switch (sub)
        {
            case "LOAD" when _argCount == 3:
                if (scripts.TryAdd(caller.Tenant, Arg(2).ToArray(), out var sha))
                {
                    _reply.Bulk(sha);
                }
                else
                {
                    _reply.Error($"ERR the script cache is full ({ScriptHost.MaxTenantScripts} scripts or {ScriptHost.MaxTenantBytes / (1024 * 1024)} MB per tenant, {ScriptHost.MaxCachedScripts} or {ScriptHost.MaxCachedBytes / (1024 * 1024)} MB in all); SCRIPT FLUSH empties this tenant's part");
                }
                return;
            case "EXISTS" when _argCount >= 3:
                _reply.Array(_argCount - 2);
                for (var i = 2; i < _argCount; i++)
                {
                    _reply.Integer(scripts.Find(caller.Tenant, Encoding.ASCII.GetString(Arg(i))) is null ? 0 : 1);
                }
                return;
            case "FLUSH" when _argCount == 2 || (_argCount == 3 && (Is(2, "ASYNC"u8) || Is(2, "SYNC"u8))):
                scripts.Flush(caller.Tenant);
                _reply.Ok();
                return;
            case "KILL" when _argCount == 2:
                if (scripts.Kill(caller.Tenant))
                {
                    _reply.Ok();
                }
                else
                {
                    _reply.Error("NOTBUSY No scripts in execution right now.");
                }
                return;
            case "FLUSH":
                _reply.Error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
                return;
            case "LOAD" or "EXISTS" or "KILL":
                _reply.Error($"ERR wrong number of arguments for 'script|{sub.ToLowerInvariant()}' command");
                return;
            default:
                _reply.Error($"ERR unknown subcommand '{Printable(Arg(1))}'. Try SCRIPT HELP.");
                return;
        }
    }
}
