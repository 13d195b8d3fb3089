using System.Text;

namespace Engram.Server.Resp.Scripting;

/// <summary>Why a script was stopped before it finished.</summary>
internal enum ScriptStop
{
    None,
    TimeLimit,
    Killed,
}

/// <summary>
/// One execution of a script: what its <c>redis.call</c> runs, its limits, and whether it must stop. It runs on the
/// store's write step; SCRIPT KILL (another connection's thread) only sets its stop.
/// </summary>
internal sealed class ScriptRun(string tenant, bool readOnly, Func<byte[][], ReadOnlyMemory<byte>> commands, long timeLimitMs)
{
    /// <summary>The tenant whose keys the script runs on (SCRIPT KILL stops only its own tenant's script).</summary>
    public string Tenant => tenant;

    /// <summary>EVAL_RO / EVALSHA_RO: a write command from the script is refused.</summary>
    public bool ReadOnly => readOnly;

    public long TimeLimitMs => timeLimitMs;

    /// <summary>Where redis.log writes (level 0-3: debug, verbose, notice, warning).</summary>
    public Action<int, string>? Log { get; init; }

    private readonly long _deadline = Environment.TickCount64 + timeLimitMs;
    private int _stop;

    public ScriptStop Stop => (ScriptStop)Volatile.Read(ref _stop);

    /// <summary>Whether the Lua code must stop now (the instruction hook and the pattern matcher ask): past its time, or killed.</summary>
    public bool ShouldStop()
    {
        if (_stop == 0 && Environment.TickCount64 > _deadline)
        {
            Interlocked.CompareExchange(ref _stop, (int)ScriptStop.TimeLimit, 0);
        }
        return Volatile.Read(ref _stop) != 0;
    }

    public void Kill() => Interlocked.CompareExchange(ref _stop, (int)ScriptStop.Killed, 0);

    /// <summary>The most commands one script may run: each write is a history row written in the script's one step.</summary>
    public const int MaxCommands = 100_000;

    /// <summary>The most bytes of command arguments one script may pass: its writes are held until the step writes them.</summary>
    public const long MaxArgumentBytes = 64L * 1024 * 1024;

    private int _commands;
    private long _argumentBytes;

    /// <summary>Runs one command of the script (its arguments as bytes) and returns its RESP2 reply; past a bound, an error reply.</summary>
    public ReadOnlyMemory<byte> Command(byte[][] args)
    {
        if (++_commands > MaxCommands)
        {
            return Encoding.ASCII.GetBytes($"-ERR the script ran over {MaxCommands} commands (a script's commands are bounded)\r\n");
        }
        foreach (var arg in args)
        {
            _argumentBytes += arg.Length;
        }
        if (_argumentBytes > MaxArgumentBytes)
        {
            return Encoding.ASCII.GetBytes($"-ERR the script passed over {MaxArgumentBytes / (1024 * 1024)} MB to its commands (a script's arguments are bounded)\r\n");
        }
        return commands(args);
    }
}

/// <summary>A script that did not complete: <see cref="Reply"/> is the error reply (with its code); nothing it did is written.</summary>
internal sealed class ScriptException(string reply) : Exception(reply)
{
    public string Reply => Message;
}
