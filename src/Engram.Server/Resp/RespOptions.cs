using System.Net;

namespace Engram.Server.Resp;

/// <summary>
/// The Redis protocol endpoint (configuration section <c>Engram:Resp</c>; ENGRAM_RESP or
/// <c>engram serve --resp</c> sets <see cref="Listen"/>). Off unless an address is given.
/// </summary>
public sealed class RespOptions
{
    /// <summary>
    /// The TCP address to listen on, <c>host:port</c> (e.g. <c>127.0.0.1:6380</c>); empty: no RESP endpoint. Port 0 takes a
    /// port the system picks (the start-up log and INFO's tcp_port say which), as Kestrel's own URLs do.
    /// </summary>
    public string? Listen { get; set; }

    /// <summary>A connection that sends nothing for this many seconds is closed; 0 never closes one. Default 300.</summary>
    public int IdleTimeoutSeconds { get; set; } = 300;

    /// <summary>
    /// The most bytes one command may take (its array and every bulk string of it); a client announcing more
    /// gets an error and is disconnected before anything of it is buffered. Default 4 MB: a 1 MB value written as
    /// JSON text escapes to at most this much.
    /// </summary>
    public int MaxCommandBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// The most bytes of commands still arriving that all connections together may hold (a connection's first 16 KB are
    /// its own). A client that starts a command and stalls makes the server hold what came so far, up to
    /// <see cref="MaxCommandBytes"/> per connection: without this bound, many such connections could hold
    /// <see cref="MaxConnections"/> times that. A command that would pass it gets an error and its connection is closed.
    /// Default 256 MB; at least <see cref="MaxCommandBytes"/>.
    /// </summary>
    public long MaxArrivingBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>
    /// The most arguments one command may have (an MSET of 1,000 keys has 2,001). Default 1,048,576: a DEL or MGET of
    /// many keys from a client library works, as against Redis; memory is bounded by <see cref="MaxCommandBytes"/> and
    /// 8 bytes per argument received (the count in a command's header reserves nothing).
    /// </summary>
    public int MaxArguments { get; set; } = 1024 * 1024;

    /// <summary>The most connections at once; further ones are answered with an error and closed. Default 10,000.</summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>
    /// Run commands on the socket event thread, as Redis runs them on its one thread: a GET answered from memory or a
    /// write handed to the store's writer then costs no hand-off to the thread pool (with the other session-19 changes,
    /// pipelined GET went from 0.68-1.09x to 0.98-1.10x Redis's rate, bench/README.md). Anything that may block moves to
    /// the pool first. Only the RESP connections are affected; false dispatches every completion to the pool. Default true.
    /// </summary>
    public bool InlineCompletions { get; set; } = true;

    /// <summary>
    /// On Linux x86-64, serve connections from Engram's own epoll loops (<see cref="EventLoops"/> threads, level-triggered, one
    /// <c>recv</c> and one <c>send</c> per request as Redis's loop makes) instead of the runtime's socket engine, which
    /// tries a second <c>recv</c> after every request. Elsewhere, or false: the runtime's sockets, with
    /// <see cref="InlineCompletions"/>. Default true.
    /// </summary>
    public bool EventLoop { get; set; } = true;

    /// <summary>
    /// How many event loops (threads) serve the connections when <see cref="EventLoop"/> is on; 0: one per two cores (at
    /// least one), leaving the other cores to the writer, the checkpointer and HTTP. One is Redis's model; on a 2-core
    /// machine shared with redis-benchmark one loop used 6-9% less CPU per request than two and served 6-7% more
    /// unpipelined SETs and GETs, with -P16 within noise (bench/README.md, sessions 38-39).
    /// </summary>
    public int EventLoops { get; set; }

    /// <summary>The loops <see cref="EventLoops"/> asks for on a machine of <paramref name="cores"/> cores.</summary>
    public int EventLoopsFor(int cores) => EventLoops > 0 ? EventLoops : Math.Max(1, cores / 2);

    /// <summary>
    /// The longest a script (EVAL) may run, in milliseconds; then it is stopped and nothing it did is written. A script runs
    /// inside one write step of the store, so no other write goes through meanwhile. Default 1000.
    /// </summary>
    public int ScriptTimeLimitMs { get; set; } = 1000;

    /// <summary>The most memory one script's Lua state may use, in MB; past it the script is stopped. Default 64.</summary>
    public int ScriptMemoryMb { get; set; } = 64;

    public bool Enabled => !string.IsNullOrWhiteSpace(Listen);

    /// <summary>The endpoint <see cref="Listen"/> names; throws <see cref="FormatException"/> when it names none.</summary>
    public IPEndPoint EndPoint()
    {
        var text = Listen!.Trim();
        if (text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase))
        {
            text = "127.0.0.1" + text["localhost".Length..];
        }
        return IPEndPoint.TryParse(text, out var endpoint) && endpoint.Port is >= 0 and <= 65535 && text.Contains(':')
            ? endpoint
            : throw new FormatException($"'{Listen}' is not host:port with an IP address (e.g. 127.0.0.1:6380)");
    }

    public IEnumerable<string> Validate()
    {
        if (Enabled)
        {
            string? error = null;
            try
            {
                EndPoint();
            }
            catch (FormatException ex)
            {
                error = "Engram:Resp:Listen (ENGRAM_RESP, --resp): " + ex.Message;
            }
            if (error is not null)
            {
                yield return error;
            }
        }
        if (IdleTimeoutSeconds is < 0 or > 86_400)
        {
            yield return "Engram:Resp:IdleTimeoutSeconds must be between 0 (never) and 86400";
        }
        if (MaxCommandBytes is < 1024 or > 512 * 1024 * 1024)
        {
            yield return "Engram:Resp:MaxCommandBytes must be between 1024 and 536870912";
        }
        if (MaxArrivingBytes < MaxCommandBytes || MaxArrivingBytes > 1L << 40)
        {
            yield return "Engram:Resp:MaxArrivingBytes must be at least Engram:Resp:MaxCommandBytes and at most 1099511627776";
        }
        if (MaxArguments is < 3 or > 16 * 1024 * 1024)
        {
            yield return "Engram:Resp:MaxArguments must be between 3 and 16777216";
        }
        if (MaxConnections is < 1 or > 1_000_000)
        {
            yield return "Engram:Resp:MaxConnections must be between 1 and 1000000";
        }
        if (EventLoops is < 0 or > 1024)
        {
            yield return "Engram:Resp:EventLoops must be between 0 (one per two cores) and 1024";
        }
        if (ScriptTimeLimitMs is < 10 or > 60_000)
        {
            yield return "Engram:Resp:ScriptTimeLimitMs must be between 10 and 60000";
        }
        if (ScriptMemoryMb is < 1 or > 4096)
        {
            yield return "Engram:Resp:ScriptMemoryMb must be between 1 and 4096";
        }
    }
}
