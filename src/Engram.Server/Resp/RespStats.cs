using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Diagnostics.Metrics;
using Engram.Core.Telemetry;

namespace Engram.Server.Resp;

/// <summary>
/// The RESP endpoint's counts, one set per listener: commands by name (an unknown command counts as
/// <c>unknown</c>, never under the name a client sent), error replies by kind (their first word), connections
/// accepted and closed by reason, bytes in and out. Connections count into a <see cref="RespTally"/> of
/// their own without synchronisation and add it here once per read (one batch of pipelined commands), so
/// the hot path pays an array increment per command. <c>INFO stats</c> / <c>commandstats</c> /
/// <c>errorstats</c> read these counts, and the exporter reads them as observable counters on the
/// shared meter (summed over the listeners open in the process: one in production).
/// </summary>
internal sealed class RespStats
{
    /// <summary>The command label values: every command the endpoint answers, then <c>unknown</c>.</summary>
    public static readonly string[] CommandNames =
    [
        "get", "set", "ping", "echo", "quit", "reset", "hello", "auth", "select", "client", "command", "setnx", "setex", "psetex", "del", "unlink",
        "incr", "decr", "incrby", "decrby", "getdel", "getex", "mget", "mset", "exists", "expire", "pexpire", "expireat", "pexpireat",
        "ttl", "pttl", "persist", "type", "scan", "keys", "dbsize", "info", "object", "strlen", "expiretime", "pexpiretime", "getset", "config", "memory", "multi", "exec", "discard", "watch",
        "unwatch", "eval", "evalsha", "eval_ro", "evalsha_ro", "script", "append", "incrbyfloat", "getrange", "substr", "setrange", "rename",
        "renamenx", "copy", "msetnx", "touch", "time", "lastsave", "role", "flushdb", "flushall", "wait", "waitaof", "unknown",
    ];

    public const int Get = 0;
    public const int Set = 1;

    public static readonly int Unknown = CommandNames.Length - 1;

    /// <summary>The error label values: the codes Engram replies with, then <c>other</c>.</summary>
    public static readonly string[] ErrorKinds = ["ERR", "NOAUTH", "WRONGPASS", "NOPERM", "READONLY", "OOM", "NOPROTO", "EXECABORT", "other"];

    /// <summary>Why the server closed a connection (a client that leaves on its own or says QUIT counts as <c>client</c>).</summary>
    public static readonly string[] CloseReasons = ["client", "idle_timeout", "oversized_input", "protocol_error", "max_clients", "cross_protocol"];

    public const int ClosedByClient = 0;
    public const int ClosedIdle = 1;
    public const int ClosedOversized = 2;
    public const int ClosedProtocol = 3;
    public const int ClosedMaxClients = 4;
    public const int ClosedCrossProtocol = 5;

    private static readonly FrozenDictionary<string, int> Indexes = CommandNames.Select((n, i) => (n.ToUpperInvariant(), i))
        .ToFrozenDictionary(p => p.Item1, p => p.i, StringComparer.Ordinal);

    private static readonly ConcurrentDictionary<RespStats, byte> Open = new();

    private readonly long[] _commands = new long[CommandNames.Length];
    private readonly long[] _errors = new long[ErrorKinds.Length];
    private readonly long[] _closed = new long[CloseReasons.Length];
    private long _accepted;
    private long _bytesIn;
    private long _bytesOut;

    static RespStats()
    {
        var meter = EngramMeter.Meter;
        meter.CreateObservableCounter("engram_resp_commands_total", () => Labelled(s => s._commands, CommandNames, "command"),
            description: "RESP commands run, by command (lower case; commands Engram does not know count as unknown).");
        meter.CreateObservableCounter("engram_resp_errors_total", () => Labelled(s => s._errors, ErrorKinds, "kind"),
            description: "RESP error replies, by kind (the reply's code: ERR, NOAUTH, WRONGPASS, NOPERM, READONLY, OOM, NOPROTO, other).");
        meter.CreateObservableCounter("engram_resp_connections_accepted_total", () => Sum(s => Volatile.Read(ref s._accepted)),
            description: "RESP connections accepted (including those refused at the connection limit).");
        meter.CreateObservableCounter("engram_resp_connections_closed_total", () => Labelled(s => s._closed, CloseReasons, "reason"),
            description: "RESP connections closed, by reason: client (it left or sent QUIT), idle_timeout, oversized_input, protocol_error, max_clients.");
        meter.CreateObservableGauge("engram_resp_connections", () => Sum(s => s.Connections?.Invoke() ?? 0),
            description: "RESP connections open now.");
        meter.CreateObservableCounter("engram_resp_received_bytes_total", () => Sum(s => Volatile.Read(ref s._bytesIn)),
            description: "Bytes of RESP commands received.");
        meter.CreateObservableCounter("engram_resp_sent_bytes_total", () => Sum(s => Volatile.Read(ref s._bytesOut)),
            description: "Bytes of RESP replies sent.");
    }

    /// <summary>The number of open connections (the listener's).</summary>
    public Func<int>? Connections { get; set; }

    public long Accepted => Volatile.Read(ref _accepted);

    public long BytesIn => Volatile.Read(ref _bytesIn);

    public long BytesOut => Volatile.Read(ref _bytesOut);

    public long Commands(int index) => Volatile.Read(ref _commands[index]);

    public long Errors(int index) => Volatile.Read(ref _errors[index]);

    public long Closed(int index) => Volatile.Read(ref _closed[index]);

    public long TotalCommands => _commands.Sum();

    public long TotalErrors => _errors.Sum();

    /// <summary>Exported from now on (until <see cref="Stop"/>).</summary>
    public void Start() => Open[this] = 0;

    public void Stop() => Open.TryRemove(this, out _);

    /// <summary>The index of a command's label, from its upper-case name.</summary>
    public static int CommandIndex(string upperName) => Indexes.TryGetValue(upperName, out var index) ? index : Unknown;

    /// <summary>The index of an error reply's kind, from its text (the code is the first word).</summary>
    public static int ErrorKind(string text)
    {
        var end = text.IndexOf(' ', StringComparison.Ordinal);
        var code = end < 0 ? text.AsSpan() : text.AsSpan(0, end);
        for (var i = 0; i < ErrorKinds.Length - 1; i++)
        {
            if (code.SequenceEqual(ErrorKinds[i]))
            {
                return i;
            }
        }
        return ErrorKinds.Length - 1;
    }

    public void Accept() => Interlocked.Increment(ref _accepted);

    public void Close(int reason) => Interlocked.Increment(ref _closed[reason]);

    /// <summary>Adds a connection's counts since its last report and clears them.</summary>
    public void Add(RespTally tally)
    {
        Drain(tally.Commands, _commands);
        Drain(tally.Errors, _errors);
        if (tally.BytesIn != 0)
        {
            Interlocked.Add(ref _bytesIn, tally.BytesIn);
            tally.BytesIn = 0;
        }
        if (tally.BytesOut != 0)
        {
            Interlocked.Add(ref _bytesOut, tally.BytesOut);
            tally.BytesOut = 0;
        }
    }

    private static void Drain(long[] from, long[] into)
    {
        for (var i = 0; i < from.Length; i++)
        {
            if (from[i] != 0)
            {
                Interlocked.Add(ref into[i], from[i]);
                from[i] = 0;
            }
        }
    }

    private static long Sum(Func<RespStats, long> read) => Open.Keys.Sum(read);

    private static IEnumerable<Measurement<long>> Labelled(Func<RespStats, long[]> counts, string[] labels, string tag)
    {
        var totals = new long[labels.Length];
        foreach (var stats in Open.Keys)
        {
            var values = counts(stats);
            for (var i = 0; i < totals.Length; i++)
            {
                totals[i] += Volatile.Read(ref values[i]);
            }
        }
        for (var i = 0; i < totals.Length; i++)
        {
            // Zero series of a command nobody sent are left out (some forty of them); errors and closes start at 0.
            if (totals[i] != 0 || tag != "command")
            {
                yield return new Measurement<long>(totals[i], new KeyValuePair<string, object?>(tag, labels[i]));
            }
        }
    }
}

/// <summary>One connection's counts since it last added them to <see cref="RespStats"/> (one thread: no synchronisation).</summary>
internal sealed class RespTally
{
    public readonly long[] Commands = new long[RespStats.CommandNames.Length];
    public readonly long[] Errors = new long[RespStats.ErrorKinds.Length];
    public long BytesIn;
    public long BytesOut;

    public void Error(string text) => Errors[RespStats.ErrorKind(text)]++;
}
