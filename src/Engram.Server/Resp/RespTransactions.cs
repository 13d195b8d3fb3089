using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;

namespace Engram.Server.Resp;

/// <summary>
/// MULTI / EXEC / DISCARD / WATCH / UNWATCH. After MULTI the key commands are checked and queued (+QUEUED); EXEC runs
/// them as one transaction of the store (<see cref="KvService.TransactAsync{T}"/>): their keys are read in one write
/// step, the commands run on those entries through the very code that runs them outside a transaction (this
/// connection with <see cref="_kv"/> pointed at the transaction and the replies going to a buffer), and their changes
/// are written in the same step, so no other client's write (RESP, REST, another instance) comes between them. As in
/// Redis, a command that fails at run time answers its error inside EXEC's reply and the others still run; an error
/// while queueing (unknown command, wrong arity, AUTH or HELLO) discards the
/// transaction at EXEC (EXECABORT). WATCH remembers each key's history head; EXEC answers a null array and writes
/// nothing when one has moved (any write of the key, this connection's included, or its expiry swept).
/// </summary>
internal sealed partial class RespConnection
{
    /// <summary>
    /// The most commands one transaction may queue. It was 10,000: redis-py's default pipeline wraps its commands in
    /// MULTI … EXEC, and a pipeline of 20,000 SETs failed on Engram where Redis runs it. Now the bytes queued
    /// (<see cref="MaxQueuedBytes"/>) are what bounds a transaction in practice.
    /// </summary>
    internal const int MaxQueuedCommands = 1_000_000;

    /// <summary>
    /// The most bytes one transaction's queued commands may hold (<see cref="QueuedBytes"/>; all connections together may
    /// queue <see cref="RespListener.MaxQueuedTransactionBytes"/>): some 300,000 SETs of a 20-byte key and a 50-byte value.
    /// </summary>
    internal const int MaxQueuedBytes = 64 * 1024 * 1024;

    /// <summary>The most bytes of replies an EXEC may build, and of what a script returns or serialises.</summary>
    internal const int MaxTransactionBytes = 16 * 1024 * 1024;

    // The commands that run inside a transaction: those that name their keys, the listings (the store's keys as the step
    // finds them, with the transaction's own changes so far), and the replies that need no store. Not AUTH and HELLO
    // (the caller is fixed for the whole transaction at EXEC), SCRIPT (the cache is not the store's), FLUSHDB/FLUSHALL
    // (a transaction changes only the keys it declared) and WAIT/WAITAOF (a step of the store cannot wait for its own sync).
    private static readonly HashSet<string> TransactionCommands =
    [
        "GET", "SET", "SETNX", "SETEX", "PSETEX", "GETDEL", "GETEX", "GETSET", "MGET", "MSET", "DEL", "UNLINK", "EXISTS", "EXPIRE", "PEXPIRE",
        "EXPIREAT", "PEXPIREAT", "TTL", "PTTL", "PERSIST", "INCR", "INCRBY", "DECR", "DECRBY", "TYPE", "STRLEN", "EXPIRETIME", "PEXPIRETIME",
        "OBJECT", "MEMORY", "KEYS", "SCAN", "DBSIZE", "INFO", "PING", "ECHO", "SELECT", "CLIENT", "COMMAND", "CONFIG", "APPEND", "INCRBYFLOAT",
        "GETRANGE", "SUBSTR", "SETRANGE", "RENAME", "RENAMENX", "COPY", "MSETNX", "TOUCH", "TIME", "LASTSAVE", "ROLE",
    ];

    /// <summary>
    /// Transaction commands a script may not call (Redis marks them noscript too). Listings and keys a script did not
    /// declare read the store through the step's connection (scripts run on the step's own thread).
    /// </summary>
    private static readonly HashSet<string> NotFromScripts = ["CLIENT", "CONFIG"];

    private List<byte[][]>? _queued; // not null between MULTI and EXEC / DISCARD
    private long _queuedBytes;
    private bool _queueFailed;
    private Dictionary<string, Watched>? _watched;

    /// <summary>A watched key's history head at WATCH, and when it expires if it was live then with an expiry.</summary>
    private readonly record struct Watched(long Head, long? ExpiresAtMs)
    {
        /// <summary>
        /// Whether the key changed since WATCH: any write moves its head; a key that was live with an expiry also changed
        /// once that time passed, whether or not the sweeper has removed it yet (as Redis 6.0.9 and later).
        /// </summary>
        public bool ChangedIn(KvTransactionView view, string key) =>
            view.HeadAtStart(key) != Head || (ExpiresAtMs is { } expires && expires <= view.NowMs);
    }
    private Caller? _transactionCaller; // while EXEC runs the queued commands
    private KvTransactionView? _transactionView; // the same, for a script among them (its savepoint)
    private ReplyBuffer? _transactionReplies; // their replies

    private bool InMulti => _queued is not null;

    /// <summary>Commands while MULTI is open: checked and queued, or (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET) run.</summary>
    private bool TryQueue(string command)
    {
        if (command is "EXEC" or "DISCARD" or "MULTI" or "WATCH" or "UNWATCH" or "QUIT" or "RESET")
        {
            return false;
        }
        var known = Array.FindIndex(Commands, c => c.Name.Equals(command, StringComparison.OrdinalIgnoreCase));
        if (known < 0)
        {
            Unknown();
            FailQueue();
            return true;
        }
        var arity = Commands[known].Arity;
        if (arity > 0 ? _argCount != arity : _argCount < -arity)
        {
            WrongArity();
            FailQueue();
            return true;
        }
        if (!TransactionCommands.Contains(command) && !IsScript(command))
        {
            _reply.Error($"ERR '{command.ToLowerInvariant()}' cannot run inside MULTI on Engram: AUTH, HELLO, SCRIPT, FLUSHDB, FLUSHALL, WAIT and WAITAOF run outside a transaction");
            FailQueue();
            return true;
        }
        if (_queueFailed)
        {
            _reply.Raw("+QUEUED\r\n"u8); // EXEC will discard it anyway: keep nothing
            return true;
        }
        var args = CopyArguments();
        var bytes = QueuedBytes(args);
        if (_queued!.Count >= MaxQueuedCommands || _queuedBytes + bytes > MaxQueuedBytes)
        {
            _reply.Error($"ERR the transaction is over {MaxQueuedCommands} commands or {MaxQueuedBytes / (1024 * 1024)} MB; it is discarded at EXEC");
            FailQueue();
            return true;
        }
        if (!_listener.TryReserveQueued(bytes))
        {
            _reply.Error("ERR the server holds too many queued transaction commands; this transaction is discarded at EXEC");
            FailQueue();
            return true;
        }
        _queued.Add(args);
        _queuedBytes += bytes;
        _reply.Raw("+QUEUED\r\n"u8);
        return true;
    }

    private async ValueTask MultiAsync(CancellationToken ct)
    {
        if (!Arity(1, exact: true))
        {
            return;
        }
        if (InMulti)
        {
            _reply.Error("ERR MULTI calls can not be nested");
            return;
        }
        if (await CallerAsync(ct).ConfigureAwait(false) is null)
        {
            _reply.Error(NoAuth);
            return;
        }
        _queued = [];
        _queuedBytes = 0;
        _queueFailed = false;
        _reply.Ok();
    }

    private void Discard()
    {
        if (!Arity(1, exact: true))
        {
            return;
        }
        if (!InMulti)
        {
            _reply.Error("ERR DISCARD without MULTI");
            return;
        }
        EndTransaction();
        _reply.Ok();
    }

    /// <summary>Ends MULTI (EXEC, DISCARD, the connection closing): the queue and its share of the server's bound go, and the watches.</summary>
    private void EndTransaction()
    {
        _listener.ReleaseQueued(_queuedBytes);
        _queued = null;
        _queuedBytes = 0;
        _queueFailed = false;
        _watched = null;
    }

    /// <summary>A queueing error: EXEC will answer EXECABORT, so nothing queued is kept until then.</summary>
    private void FailQueue()
    {
        _queueFailed = true;
        _queued?.Clear();
        _listener.ReleaseQueued(_queuedBytes);
        _queuedBytes = 0;
    }

    private async ValueTask WatchAsync(CancellationToken ct)
    {
        if (!Arity(2, exact: false))
        {
            return;
        }
        if (InMulti)
        {
            _reply.Error("ERR WATCH inside MULTI is not allowed");
            return;
        }
        var caller = await CallerAsync(ct).ConfigureAwait(false);
        if (caller is null)
        {
            _reply.Error(NoAuth);
            return;
        }
        var keys = new List<string>(_argCount - 1);
        for (var i = 1; i < _argCount; i++)
        {
            var key = Text(i);
            KvKeys.Validate(key);
            keys.Add(key);
        }
        _watched ??= new Dictionary<string, Watched>(StringComparer.Ordinal);
        if (_watched.Count + keys.Count > KvService.MaxTransactionKeys)
        {
            _reply.Error($"ERR a connection may watch up to {KvService.MaxTransactionKeys} keys");
            return;
        }
        // A read in a step of the store's writer: the heads are those of every write acknowledged before.
        var states = await _kv.TransactAsync(caller, keys, view => keys.Select(k => new Watched(view.HeadAtStart(k), view.ExpiryAtStart(k))).ToList(), ct)
            .ConfigureAwait(false);
        for (var i = 0; i < keys.Count; i++)
        {
            _watched.TryAdd(keys[i], states[i]); // a key watched twice keeps its first state, as in Redis
        }
        _reply.Ok();
    }

    private async ValueTask ExecAsync(CancellationToken ct)
    {
        if (!Arity(1, exact: true))
        {
            return;
        }
        if (!InMulti)
        {
            _reply.Error("ERR EXEC without MULTI");
            return;
        }
        var queued = _queued!;
        var failed = _queueFailed;
        var watched = _watched;
        EndTransaction();
        if (failed)
        {
            _reply.Error("EXECABORT Transaction discarded because of previous errors.");
            return;
        }
        var caller = await CallerAsync(ct).ConfigureAwait(false);
        if (caller is null)
        {
            _reply.Error(NoAuth);
            return;
        }
        var keys = new List<string>();
        foreach (var args in queued)
        {
            AddKeys(args, keys);
        }
        if (watched is not null)
        {
            keys.AddRange(watched.Keys);
        }
        var replies = await _kv.TransactAsync(caller, keys, view =>
        {
            if (watched is not null && watched.Any(w => w.Value.ChangedIn(view, w.Key)))
            {
                return null; // a watched key moved: nothing runs
            }
            return RunQueued(caller, view, queued);
        }, ct).ConfigureAwait(false);
        if (replies is null)
        {
            _reply.Raw(_reply.Resp3 ? "_\r\n"u8 : "*-1\r\n"u8);
            return;
        }
        _reply.Array(queued.Count);
        _reply.Raw(replies.WrittenSpan);
    }

    /// <summary>
    /// Runs the queued commands on <paramref name="kv"/> (a service over the transaction's working set, so each one
    /// completes without waiting), their replies into a buffer of their own: this may run again when the store
    /// retries the write, and nothing of a run that was not kept may reach the client.
    /// </summary>
    private ReplyBuffer RunQueued(Caller caller, KvTransactionView view, List<byte[][]> queued)
    {
        var buffer = new ReplyBuffer();
        _transactionReplies = buffer;
        var (savedKv, savedReply) = (_kv, _reply);
        _kv = view.Kv;
        _transactionView = view;
        _reply = new RespWriter(buffer) { Resp3 = savedReply.Resp3, Tally = _tally };
        _transactionCaller = caller;
        try
        {
            foreach (var args in queued)
            {
                RunInTransaction(args);
            }
            return buffer;
        }
        finally
        {
            _kv = savedKv;
            _reply = savedReply;
            _transactionCaller = null;
            _transactionReplies = null;
            _transactionView = null;
        }
    }

    /// <summary>
    /// Runs one command of a transaction (EXEC's queue, a script's redis.call) to its end on this thread: on the
    /// transaction's working set every call completes without waiting. Its reply goes to <see cref="_reply"/>.
    /// </summary>
    private void RunInTransaction(byte[][] args)
    {
        LoadArguments(args);
        var run = ExecuteAsync(CancellationToken.None);
        if (!run.IsCompleted)
        {
            throw new InvalidOperationException($"'{Encoding.ASCII.GetString(args[0])}' waited inside a transaction");
        }
        run.GetAwaiter().GetResult();
        var drained = DrainAsync();
        if (!drained.IsCompleted)
        {
            throw new InvalidOperationException("a write waited inside a transaction");
        }
        drained.GetAwaiter().GetResult();
        CheckTransactionReplies();
    }

    /// <summary>Inside EXEC: throws (the transaction then writes nothing) once its replies are over the bound.</summary>
    private void CheckTransactionReplies()
    {
        if (_transactionReplies is { WrittenCount: > MaxTransactionBytes })
        {
            throw new ValidationException("transaction", $"its replies are over {MaxTransactionBytes / (1024 * 1024)} MB; nothing was written");
        }
    }

    /// <summary>
    /// What a queued command holds in memory: its array (header and a reference per argument) and each argument's array
    /// (header and bytes). Counted as 16 bytes an argument until session 32, a third of what a queued PING held.
    /// </summary>
    private static long QueuedBytes(byte[][] args)
    {
        const long ArrayHeader = 24;
        var bytes = ArrayHeader;
        foreach (var arg in args)
        {
            bytes += 8 + ArrayHeader + arg.Length;
        }
        return bytes;
    }

    /// <summary>The current command's arguments, copied (what <see cref="LoadArguments"/> takes back).</summary>
    private byte[][] CopyArguments()
    {
        var args = new byte[_argCount][];
        for (var i = 0; i < args.Length; i++)
        {
            args[i] = Arg(i).ToArray();
        }
        return args;
    }

    /// <summary>Makes <paramref name="args"/> the current command's arguments.</summary>
    private void LoadArguments(byte[][] args)
    {
        EnsureArguments(args.Length);
        EnsureBytes(args.Sum(a => a.Length));
        var at = 0;
        for (var i = 0; i < args.Length; i++)
        {
            args[i].CopyTo(_argBytes.AsSpan(at));
            _argStart[i] = at;
            _argLength[i] = args[i].Length;
            at += args[i].Length;
        }
        _argCount = args.Length;
    }

    /// <summary>The keys a queued command names (those that are not text are left out: the command fails on them when it runs).</summary>
    private static void AddKeys(byte[][] args, List<string> keys)
    {
        var command = Encoding.ASCII.GetString(args[0]).ToUpperInvariant();
        if (IsScript(command))
        {
            // EVAL script numkeys key … arg …: the keys are the numkeys arguments after the count.
            if (args.Length >= 3 && long.TryParse(Encoding.ASCII.GetString(args[2]), out var count) && count >= 0 && count <= args.Length - 3)
            {
                for (var i = 3; i < 3 + count; i++)
                {
                    if (RespWriter.TryDecode(args[i]) is { } scriptKey)
                    {
                        keys.Add(scriptKey);
                    }
                }
            }
            return;
        }
        var (first, step) = command switch
        {
            "PING" or "ECHO" or "SELECT" or "KEYS" or "SCAN" or "DBSIZE" or "INFO" or "CLIENT" or "COMMAND" or "CONFIG" => (args.Length, 1),
            "OBJECT" or "MEMORY" => (2, args.Length), // OBJECT ENCODING key, MEMORY USAGE key
            "TIME" or "LASTSAVE" or "ROLE" => (args.Length, 1),
            "MGET" or "DEL" or "UNLINK" or "EXISTS" or "TOUCH" => (1, 1),
            "MSET" or "MSETNX" => (1, 2),
            "RENAME" or "RENAMENX" or "COPY" => (1, 1), // the two keys (COPY's options after them are not keys: see the end)
            _ => (1, args.Length), // one key, the first argument
        };
        var end = command == "COPY" ? Math.Min(args.Length, 3) : args.Length;
        for (var i = first; i < end; i += step)
        {
            if (RespWriter.TryDecode(args[i]) is { } key)
            {
                keys.Add(key);
            }
        }
    }
}

/// <summary>
/// Replies kept in memory (EXEC's, until the transaction is written). A <see cref="PipeWriter"/> because
/// <see cref="RespWriter"/> writes to one: typed as the abstract class, its calls on the socket's pipe stay virtual
/// calls the JIT devirtualizes (through <see cref="IBufferWriter{T}"/> they were interface calls: pipelined GET
/// measured about 8% dearer in server CPU, bench/README.md "Sessions 22-23").
/// </summary>
internal sealed class ReplyBuffer : PipeWriter
{
    private readonly ArrayBufferWriter<byte> _buffer = new();

    public int WrittenCount => _buffer.WrittenCount;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.WrittenSpan;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.WrittenMemory;

    /// <summary>Forgets what was written (the buffer is kept for the next reply).</summary>
    public void Clear() => _buffer.ResetWrittenCount();

    public override void Advance(int bytes) => _buffer.Advance(bytes);

    public override Memory<byte> GetMemory(int sizeHint = 0) => _buffer.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => _buffer.GetSpan(sizeHint);

    public override void CancelPendingFlush()
    {
    }

    public override void Complete(Exception? exception = null)
    {
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => new(new FlushResult(false, false));
}
