using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using static Engram.Server.Resp.Scripting.LuaNative;

namespace Engram.Server.Resp.Scripting;

/// <summary>
/// Runs one Redis script (EVAL's Lua) in a Lua 5.4 state of its own: only the base, table, string, math and utf8
/// libraries (no io, os, package, debug, load or dofile), Redis's <c>redis</c> table, <c>KEYS</c> and <c>ARGV</c>, a
/// memory limit (the state's allocator refuses growth past it) and a stop (an instruction hook: past the time limit, on
/// SCRIPT KILL, the next instructions raise an error; the pattern functions are our own, which look at the same stop,
/// <see cref="LuaPattern"/>). Replies convert as in Redis:
/// integers to numbers, bulk strings to strings, nulls to false, status and error replies to <c>{ok=…}</c> and
/// <c>{err=…}</c>, and back.
/// <para>
/// Lua raises errors with <c>longjmp</c>, which must never unwind a managed frame. So the managed callbacks
/// (<c>redis.call</c>, the allocator, the hook) never raise one: <c>redis.call</c> returns an <c>{err=…}</c> table that a
/// Lua wrapper raises, the memory limit is not enforced while managed code pushes values, and the hook stops a script
/// by installing the library's own <c>luaL_error</c> as the hook, so the error is raised from C. Finalizers (<c>__gc</c>)
/// run with hooks off, so scripts may not set them.
/// </para>
/// </summary>
internal static unsafe partial class LuaSandbox
{
    /// <summary>How many Lua instructions run between two looks at the time limit.</summary>
    private const int HookEvery = 10_000;

    private const int MaxDepth = 64;
    private const int MaxMessageChars = 4096;
    private const int MaxLogLines = 100;

    [StructLayout(LayoutKind.Sequential)]
    private struct Budget
    {
        public long Used;
        public long Limit;
        public int Enforced;
        public int LogLines;
    }

    [ThreadStatic]
    private static ScriptRun? _run;

    [ThreadStatic]
    private static Budget* _budget;

    private static readonly nint RaiseError = Export("luaL_error");

    private static readonly (string Name, nint Open)[] Libraries =
    [
        ("_G", Export("luaopen_base")), ("table", Export("luaopen_table")), ("string", Export("luaopen_string")),
        ("math", Export("luaopen_math")), ("utf8", Export("luaopen_utf8")),
        ("debug", Export("luaopen_debug")), // for the prelude's error lines only: it takes getinfo and removes the library
    ];

    private static readonly byte[] Prelude = Encoding.UTF8.GetBytes(PreludeSource);

    /// <summary>
    /// A Lua state with the libraries and the prelude loaded, kept by the thread that runs scripts (the store's write step) between scripts (creating one
    /// costs about 100 µs, more than most scripts run). Each script gets a fresh, read-only environment over globals that
    /// every script shares (<c>__engram_fresh</c>): as in Redis 7 nothing global can be changed, so nothing one script
    /// does is seen by the next (copying the libraries for each script instead was most of a script's cost, bench/README.md
    /// session 27); its compiled function is cached by SHA1.
    /// A state whose script was stopped or ran out of memory is closed, not reused.
    /// </summary>
    private sealed class PreparedState(nint state, Budget* budget)
    {
        public nint State => state;

        public Budget* Budget => budget;

        public int Compiled;

        public void Close()
        {
            // Finalizers cannot be set by scripts; anything else Lua code would do while closing is stopped at once.
            lua_sethook(state, RaiseError, MaskCount, 1);
            lua_close(state);
            NativeMemory.Free(budget);
        }
    }

    /// <summary>Compiled scripts one state keeps before it is replaced by a new one.</summary>
    private const int MaxCompiled = 1000;

    [ThreadStatic]
    private static PreparedState? _prepared;

    private static PreparedState Prepared(long memoryLimit)
    {
        ref var slot = ref _prepared;
        if (slot is { } kept && kept.Budget->Limit == memoryLimit && kept.Compiled < MaxCompiled)
        {
            return kept;
        }
        slot?.Close();
        slot = null;
        var budget = (Budget*)NativeMemory.AllocZeroed((nuint)sizeof(Budget));
        budget->Limit = memoryLimit;
        var state = lua_newstate(&Allocate, (nint)budget);
        if (state == 0)
        {
            NativeMemory.Free(budget);
            throw new ScriptException("ERR the script's Lua state could not be created");
        }
        var prepared = new PreparedState(state, budget);
        try
        {
            Prepare(state);
        }
        catch
        {
            prepared.Close();
            throw;
        }
        return slot = prepared;
    }

    /// <summary>
    /// Runs <paramref name="script"/> and writes its result to <paramref name="output"/>; throws
    /// <see cref="ScriptException"/> when it does not compile, raises an error, runs out of memory or is stopped.
    /// </summary>
    public static void Execute(ScriptRun run, ReadOnlySpan<byte> script, string sha, byte[][] keys, byte[][] argv, RespWriter output, long memoryLimit)
    {
        var prepared = Prepared(memoryLimit);
        var state = prepared.State;
        var budget = prepared.Budget;
        var outerRun = _run;
        var outerBudget = _budget;
        _run = run;
        _budget = budget;
        budget->LogLines = 0;
        var keep = false;
        try
        {
            lua_settop(state, 0);
            // 1: the script's environment.
            lua_getglobal(state, "__engram_fresh");
            PushArray(state, keys);
            PushArray(state, argv);
            if (lua_pcallk(state, 2, 1, 0, 0, 0) != Ok)
            {
                throw new InvalidOperationException("the script environment could not be made: " + Text(state, -1));
            }
            // 2: the cache of compiled scripts; 3: this one.
            lua_getglobal(state, "__engram_scripts");
            PushString(state, sha);
            if (lua_rawget(state, 2) != TypeFunction)
            {
                Pop(state, 1);
                byte none = 0;
                int loaded;
                fixed (byte* p = script)
                {
                    loaded = luaL_loadbufferx(state, script.IsEmpty ? &none : p, (nuint)script.Length, "@user_script", "t");
                }
                if (loaded != Ok)
                {
                    keep = true;
                    throw new ScriptException("ERR Error compiling script (new function): " + Text(state, -1));
                }
                PushString(state, sha);
                lua_pushvalue(state, 3);
                lua_rawset(state, 2);
                prepared.Compiled++;
            }
            // The chunk's first upvalue is its _ENV: this run's environment, never the state's globals.
            lua_pushvalue(state, 1);
            lua_setupvalue(state, 3, 1);

            // 3: the message handler (the line an error came from, as Redis reports it), 4: the function.
            lua_getglobal(state, "__engram_error");
            lua_rotate(state, 3, 1);

            lua_sethook(state, (nint)(delegate* unmanaged<nint, nint, void>)&Hook, MaskCount, HookEvery);
            budget->Enforced = 1;
            var status = lua_pcallk(state, 0, 1, 3, 0, 0);
            budget->Enforced = 0;
            lua_sethook(state, 0, 0, 0);
            run.ShouldStop(); // a long C call at the end runs past the limit with no hook after it
            switch (run.Stop)
            {
                case ScriptStop.TimeLimit:
                    throw new ScriptException($"BUSY the script ran over its time limit of {run.TimeLimitMs} ms and was stopped; nothing it did was written");
                case ScriptStop.Killed:
                    throw new ScriptException("ERR the script was killed by SCRIPT KILL; nothing it did was written");
            }
            if (status == ErrorMemory)
            {
                throw new ScriptException($"OOM the script used more than {memoryLimit / (1024 * 1024)} MB of memory and was stopped; nothing it did was written");
            }
            if (status != Ok)
            {
                keep = status == ErrorRun;
                throw new ScriptException(Failure(state, sha));
            }
            long bytes = 0;
            WriteValue(state, lua_gettop(state), output, 0, ref bytes);
            keep = true;
        }
        finally
        {
            budget->Enforced = 0;
            if (keep)
            {
                lua_settop(state, 0);
            }
            else
            {
                prepared.Close();
                _prepared = null;
            }
            _run = outerRun;
            _budget = outerBudget;
        }
    }

    /// <summary>The script's SHA1 as EVALSHA names it (40 lowercase hex digits).</summary>
    public static string Sha1(ReadOnlySpan<byte> script) => Convert.ToHexStringLower(SHA1.HashData(script));

    private static void Prepare(nint state)
    {
        foreach (var (name, open) in Libraries)
        {
            luaL_requiref(state, name, open, 1);
            Pop(state, 1);
        }
        // The C library's pattern functions are not bounded by the hook (a crafted pattern ran for hours): ours are.
        InstallPatterns(state);
        lua_pushcclosure(state, &Call, 0);
        lua_setglobal(state, "__engram_call");
        lua_pushcclosure(state, &Sha1Hex, 0);
        lua_setglobal(state, "__engram_sha1hex");
        lua_pushcclosure(state, &Log, 0);
        lua_setglobal(state, "__engram_log");
        // cjson: its null is a table of its own, an upvalue of both functions.
        lua_createtable(state, 0, 0);
        lua_pushvalue(state, -1);
        lua_setglobal(state, "__engram_json_null");
        lua_pushvalue(state, -1);
        lua_pushcclosure(state, &JsonDecode, 1);
        lua_setglobal(state, "__engram_json_decode");
        lua_pushcclosure(state, &JsonEncode, 1);
        lua_setglobal(state, "__engram_json_encode");
        fixed (byte* p = Prelude)
        {
            if (luaL_loadbufferx(state, p, (nuint)Prelude.Length, "=prelude", "t") != Ok || lua_pcallk(state, 0, 0, 0, 0, 0) != Ok)
            {
                throw new InvalidOperationException("the script prelude failed: " + Text(state, -1));
            }
        }
    }

    private static void PushArray(nint state, byte[][] items)
    {
        lua_createtable(state, items.Length, 0);
        for (var i = 0; i < items.Length; i++)
        {
            PushBytes(state, items[i]);
            lua_rawseti(state, -2, i + 1);
        }
    }

    /// <summary>
    /// A float argument of redis.call as Redis passes it on: C's <c>%.17g</c> (<c>0.1</c> is <c>0.10000000000000001</c>,
    /// <c>1e+17</c> with a lower-case, signed, two-digit exponent), and <c>inf</c>, <c>-inf</c>, <c>nan</c> or <c>-nan</c>
    /// (by the sign bit: the processor's 0/0 has it set) rather than .NET's <c>Infinity</c> and <c>NaN</c>.
    /// </summary>
    internal static string NumberArgument(double value)
    {
        if (double.IsNaN(value))
        {
            return BitConverter.DoubleToInt64Bits(value) < 0 ? "-nan" : "nan";
        }
        if (double.IsInfinity(value))
        {
            return value > 0 ? "inf" : "-inf";
        }
        // .NET's G17 is C's %.17g (fixed notation for exponents from -5 to 16, at least two exponent digits) but for the E.
        return value.ToString("G17", System.Globalization.CultureInfo.InvariantCulture).Replace('E', 'e');
    }

    /// <summary>The error reply for an error the script raised: a redis.call failure keeps its code, anything else is ERR.</summary>
    private static string Failure(nint state, string sha)
    {
        if (lua_type(state, -1) != TypeTable || RawGetField(state, -1, "err") != TypeString)
        {
            // The message handler makes a table of every string or number raised; anything else is no message.
            return $"ERR the script raised an error that is not a string script: {sha}";
        }
        var message = Text(state, -1);
        Pop(state, 1);
        // Redis 7's suffix: the line of the script the error came from (the message handler's).
        return RawGetField(state, -1, "line") == TypeNumber
            ? $"{message} script: {sha}, on @user_script:{lua_tointegerx(state, -1, 0)}."
            : $"{message} script: {sha}";
    }

    /// <summary>The string at <paramref name="index"/> as text (bounded, invalid UTF-8 replaced); empty for other types.</summary>
    private static string Text(nint state, int index)
    {
        if (lua_type(state, index) is not (TypeString or TypeNumber))
        {
            return "";
        }
        var bytes = ToBytes(state, index);
        var text = Encoding.UTF8.GetString(bytes.Length > MaxMessageChars ? bytes[..MaxMessageChars] : bytes);
        return text;
    }

    /// <summary>Lua → RESP, as Redis converts a script's result.</summary>
    private static void WriteValue(nint state, int index, RespWriter output, int depth, ref long bytes)
    {
        if (depth > MaxDepth || lua_checkstack(state, 4) == 0)
        {
            throw new ScriptException("ERR reached lua stack limit");
        }
        switch (lua_type(state, index))
        {
            case TypeString:
                var value = ToBytes(state, index);
                bytes += value.Length + 16;
                if (bytes > RespConnection.MaxTransactionBytes)
                {
                    throw new ScriptException($"ERR the script's reply is over {RespConnection.MaxTransactionBytes / (1024 * 1024)} MB");
                }
                output.Bulk(value);
                return;
            case TypeNumber:
                output.Integer(lua_isinteger(state, index) != 0 ? lua_tointegerx(state, index, out _) : Truncate(lua_tonumberx(state, index, out _)));
                return;
            case TypeBoolean:
                if (lua_toboolean(state, index) != 0)
                {
                    output.Integer(1);
                }
                else
                {
                    output.Null();
                }
                return;
            case TypeTable:
                if (RawGetField(state, index, "err") == TypeString)
                {
                    var error = Text(state, -1);
                    Pop(state, 1);
                    output.Error(error.Length == 0 ? "ERR" : error);
                    return;
                }
                Pop(state, 1);
                if (RawGetField(state, index, "ok") == TypeString)
                {
                    var status = Text(state, -1);
                    Pop(state, 1);
                    output.Simple(status);
                    return;
                }
                Pop(state, 1);
                var count = 0;
                while (lua_rawgeti(state, index, count + 1) != TypeNil)
                {
                    Pop(state, 1);
                    count++;
                    bytes += 16;
                    if (bytes > RespConnection.MaxTransactionBytes)
                    {
                        throw new ScriptException($"ERR the script's reply is over {RespConnection.MaxTransactionBytes / (1024 * 1024)} MB");
                    }
                }
                Pop(state, 1);
                output.Array(count);
                for (var i = 1; i <= count; i++)
                {
                    lua_rawgeti(state, index, i);
                    WriteValue(state, lua_gettop(state), output, depth + 1, ref bytes);
                    Pop(state, 1);
                }
                return;
            default:
                output.Null(); // nil, functions, coroutines
                return;
        }
    }

    /// <summary>A Lua float as Redis returns it: truncated toward zero (NaN and out-of-range values clamp).</summary>
    private static long Truncate(double value) =>
        double.IsNaN(value) ? 0 : value >= long.MaxValue ? long.MaxValue : value <= long.MinValue ? long.MinValue : (long)value;

    /// <summary>RESP2 (a command's reply) → Lua, as Redis converts for redis.call. False when the reply is not well-formed.</summary>
    private static bool PushReply(nint state, ReadOnlySpan<byte> reply, ref int at, int depth)
    {
        if (depth > MaxDepth || at >= reply.Length || lua_checkstack(state, 4) == 0)
        {
            return false;
        }
        var kind = reply[at];
        var end = reply[at..].IndexOf("\r\n"u8);
        if (end < 0)
        {
            return false;
        }
        var line = reply.Slice(at + 1, end - 1);
        at += end + 2;
        switch (kind)
        {
            case (byte)'+' or (byte)'-':
                lua_createtable(state, 0, 1);
                PushString(state, kind == (byte)'+' ? "ok" : "err");
                PushBytes(state, line);
                lua_rawset(state, -3);
                return true;
            case (byte)':':
                if (!long.TryParse(line, out var integer))
                {
                    return false;
                }
                lua_pushinteger(state, integer);
                return true;
            case (byte)'$':
                if (!int.TryParse(line, out var length) || length < -1 || (length >= 0 && at + length + 2 > reply.Length))
                {
                    return false;
                }
                if (length < 0)
                {
                    lua_pushboolean(state, 0);
                    return true;
                }
                PushBytes(state, reply.Slice(at, length));
                at += length + 2;
                return true;
            case (byte)'*':
                if (!int.TryParse(line, out var count) || count < -1)
                {
                    return false;
                }
                if (count < 0)
                {
                    lua_pushboolean(state, 0);
                    return true;
                }
                lua_createtable(state, count, 0);
                for (var i = 1; i <= count; i++)
                {
                    if (!PushReply(state, reply, ref at, depth + 1))
                    {
                        return false;
                    }
                    lua_rawseti(state, -2, i);
                }
                return true;
            default:
                return false;
        }
    }

    private static void PushError(nint state, string message)
    {
        lua_createtable(state, 0, 1);
        PushString(state, "err");
        PushString(state, message);
        lua_rawset(state, -3);
    }

    // ---- Callbacks from Lua. None may throw or raise a Lua error (see the class comment). ----

    /// <summary>The state's allocator: frees, and grows only within the budget while the script's own code runs.</summary>
    [UnmanagedCallersOnly]
    private static nint Allocate(nint ud, nint block, nuint oldSize, nuint newSize)
    {
        var budget = (Budget*)ud;
        if (newSize == 0)
        {
            if (block != 0)
            {
                NativeMemory.Free((void*)block);
                budget->Used -= (long)oldSize;
            }
            return 0;
        }
        var old = block == 0 ? 0 : (long)oldSize; // for a new block, oldSize is the kind of object, not a size
        var growth = (long)newSize - old;
        if (growth > 0 && budget->Enforced != 0 && budget->Used + growth > budget->Limit)
        {
            return 0; // Lua raises its memory error (from C)
        }
        void* grown;
        try
        {
            grown = NativeMemory.Realloc((void*)block, newSize);
        }
        catch (OutOfMemoryException)
        {
            return 0; // (an exception must not leave a callback from native code)
        }
        if (grown is null)
        {
            return 0;
        }
        budget->Used += growth;
        return (nint)grown;
    }

    /// <summary>
    /// The memory limit lifted while a managed callback pushes values: a refused allocation there would raise a Lua
    /// error through the callback's managed frame. The script's own code is limited again when the callback returns.
    /// </summary>
    private readonly ref struct Unlimited
    {
        private readonly Budget* _target;
        private readonly int _enforced;

        public Unlimited()
        {
            _target = _budget;
            if (_target is not null) // (null: a plain state of the tests)
            {
                _enforced = _target->Enforced;
                _target->Enforced = 0;
            }
        }

        public void Dispose()
        {
            if (_target is not null)
            {
                _target->Enforced = _enforced;
            }
        }
    }

    /// <summary>Every <see cref="HookEvery"/> instructions: once the run must stop, the next instruction raises an error.</summary>
    [UnmanagedCallersOnly]
    private static void Hook(nint state, nint debug)
    {
        if (_run is { } run && run.ShouldStop())
        {
            // luaL_error as the hook: called as hook(L, ar), it raises an error from C with the message at ar (the event
            // number, a byte below 5: no format directive). The reason is known from the run, not from the message.
            lua_sethook(state, RaiseError, MaskCount, 1);
        }
    }

    /// <summary>redis.call / redis.pcall: runs the command and returns its reply, or an <c>{err=…}</c> table.</summary>
    [UnmanagedCallersOnly]
    private static int Call(nint state)
    {
        using var unlimited = new Unlimited();
        try
        {
            var run = _run;
            var count = lua_gettop(state);
            if (run is null)
            {
                PushError(state, "ERR no script is running");
                return 1;
            }
            if (count == 0)
            {
                PushError(state, "ERR Please specify at least one argument for this redis lib call");
                return 1;
            }
            var args = new byte[count][];
            for (var i = 1; i <= count; i++)
            {
                switch (lua_type(state, i))
                {
                    case TypeString:
                        args[i - 1] = ToBytes(state, i).ToArray();
                        break;
                    case TypeNumber when lua_isinteger(state, i) != 0:
                        args[i - 1] = Encoding.ASCII.GetBytes(lua_tointegerx(state, i, out _).ToString(System.Globalization.CultureInfo.InvariantCulture));
                        break;
                    case TypeNumber:
                        args[i - 1] = Encoding.ASCII.GetBytes(NumberArgument(lua_tonumberx(state, i, out _)));
                        break;
                    default:
                        PushError(state, "ERR Lua redis lib command arguments must be strings or integers");
                        return 1;
                }
            }
            var reply = run.Command(args);
            var top = lua_gettop(state);
            var at = 0;
            if (!PushReply(state, reply.Span, ref at, 0))
            {
                lua_settop(state, top);
                PushError(state, "ERR the command's reply could not be read");
            }
            return 1;
        }
        catch (Exception ex)
        {
            PushError(state, ex is ScriptException s ? s.Reply : "ERR " + ex.Message);
            return 1;
        }
    }

    /// <summary>redis.sha1hex(text): the prelude checked the argument.</summary>
    [UnmanagedCallersOnly]
    private static int Sha1Hex(nint state)
    {
        using var unlimited = new Unlimited();
        try
        {
            PushString(state, Sha1(ToBytes(state, 1)));
            return 1;
        }
        catch (Exception)
        {
            lua_pushnil(state);
            return 1;
        }
    }

    /// <summary>redis.log(level, message): to the server's log, at most <see cref="MaxLogLines"/> lines per run.</summary>
    [UnmanagedCallersOnly]
    private static int Log(nint state)
    {
        using var unlimited = new Unlimited();
        try
        {
            if (_run is { } run && _budget->LogLines++ < MaxLogLines)
            {
                run.Log?.Invoke((int)lua_tointegerx(state, 1, out _), Text(state, 2));
            }
        }
        catch (Exception)
        {
            // a failing logger must not reach Lua
        }
        return 0;
    }

    /// <summary>
    /// Trusted Lua run before each script: Redis's <c>redis</c> table over the callbacks, Lua 5.1's <c>unpack</c> and a
    /// <c>bit</c> library (scripts written for Redis use both), and the sandbox (no loading of code, no finalizers).
    /// </summary>
    private const string PreludeSource = """
        local call, sha1hex, log = __engram_call, __engram_sha1hex, __engram_log
        local getinfo, getmetatable_ = debug.getinfo, debug.getmetatable
        debug = nil
        -- The line of the innermost frame of the script itself (not the prelude's functions, not C), as Redis reports.
        local function userline(level)
          while true do
            local frame = getinfo(level, 'Sl')
            if frame == nil then return nil end
            if frame.source == '@user_script' then return frame.currentline end
            level = level + 1
          end
        end
        -- The message handler of every script run: a string or number raised becomes Redis's {err=...}, and an error
        -- table gets the line it was raised from (redis.call's already has it).
        function __engram_error(e)
          local t = type(e)
          if t == 'string' or t == 'number' then
            return { err = 'ERR ' .. tostring(e), line = userline(2) }
          end
          if t == 'table' and rawget(e, 'err') ~= nil and rawget(e, 'line') == nil then
            rawset(e, 'line', userline(2))
          end
          return e
        end
        local json_null, json_decode, json_encode = __engram_json_null, __engram_json_decode, __engram_json_encode
        __engram_call, __engram_sha1hex, __engram_log = nil, nil, nil
        __engram_json_null, __engram_json_decode, __engram_json_encode = nil, nil, nil
        local type, rawget, error, select, tostring, concat = type, rawget, error, select, tostring, table.concat
        local setmetatable_ = setmetatable
        local load_ = load -- (for the run's globals below only)
        dofile, loadfile, load, print, collectgarbage = nil, nil, nil, nil, nil
        string.dump = nil
        -- The globals' tables (below) carry this mark in their real metatables: rawset and setmetatable refuse them.
        local function refuseifreadonly(t)
          local mt = getmetatable_(t)
          if mt ~= nil and rawget(mt, '__engram_readonly') == true then error('Attempt to modify a readonly table', 0) end
        end
        function setmetatable(t, mt)
          if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then error('scripts may not set __gc', 2) end
          refuseifreadonly(t)
          return setmetatable_(t, mt)
        end
        unpack = table.unpack
        local function failed(r) return type(r) == 'table' and rawget(r, 'err') ~= nil end
        local function text(value, what)
          if type(value) ~= 'string' then error('wrong number or type of arguments to ' .. what, 3) end
          return value
        end
        redis = {
          call = function(...)
            local r = call(...)
            if failed(r) then r.line = userline(2) error(r, 0) end
            return r
          end,
          pcall = function(...) return call(...) end,
          error_reply = function(message) return { err = text(message, 'redis.error_reply') } end,
          status_reply = function(message) return { ok = text(message, 'redis.status_reply') } end,
          sha1hex = function(value)
            if type(value) ~= 'string' and type(value) ~= 'number' then error('wrong number of arguments', 2) end
            return sha1hex(tostring(value))
          end,
          log = function(level, ...)
            if type(level) ~= 'number' or select('#', ...) == 0 then error('redis.log() requires two arguments or more.', 2) end
            local parts = { ... }
            for i = 1, #parts do parts[i] = tostring(parts[i]) end
            log(level, concat(parts, ' '))
          end,
          setresp = function(version)
            if version ~= 2 and version ~= 3 then error('RESP version must be 2 or 3.', 2) end
          end,
          set_repl = function() end,
          replicate_commands = function() return true end,
          breakpoint = function() return false end,
          debug = function() end,
          LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
          REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
          REDIS_VERSION = '7.0.15', REDIS_VERSION_NUM = 0x07000f,
        }
        local function tobit(x)
          x = math.tointeger(x) or math.floor(x)
          x = x & 0xffffffff
          if x >= 0x80000000 then x = x - 0x100000000 end
          return x
        end
        local function fold(op, a, ...)
          local r = tobit(a)
          for i = 1, select('#', ...) do r = tobit(op(r, tobit((select(i, ...))))) end
          return r
        end
        bit = {
          tobit = tobit,
          bnot = function(x) return tobit(~tobit(x)) end,
          band = function(...) return fold(function(a, b) return a & b end, ...) end,
          bor = function(...) return fold(function(a, b) return a | b end, ...) end,
          bxor = function(...) return fold(function(a, b) return a ~ b end, ...) end,
          lshift = function(x, n) return tobit((tobit(x) & 0xffffffff) << (n & 31)) end,
          rshift = function(x, n) return tobit((tobit(x) & 0xffffffff) >> (n & 31)) end,
          arshift = function(x, n) return tobit(tobit(x) // (1 << (n & 31))) end,
          tohex = function(x, n)
            n = n or 8
            local upper = n < 0
            if upper then n = -n end
            local s = string.format(upper and '%08X' or '%08x', tobit(x) & 0xffffffff)
            return s:sub(-n)
          end,
        }
        cjson = {
          null = json_null,
          decode = function(text)
            if type(text) ~= 'string' then error('bad argument #1 to \'decode\' (string expected)', 2) end
            local value, failure = json_decode(text)
            if failure ~= nil then error(failure, 2) end
            return value
          end,
          encode = function(value)
            local text, failure = json_encode(value)
            if failure ~= nil then error(failure, 2) end
            return text
          end,
        }
        -- Globals as Redis 7 has them: read-only, and reading one that does not exist is an error. The libraries are
        -- read-only views of the real tables (rawset and setmetatable refuse them too) that every script shares; each run
        -- gets a table of its own holding the names (not copies of the libraries, which was most of a script's cost), so
        -- nothing one script does is seen by the next. A script keeps its state in locals and in tables it makes.
        local next, rawset_ = next, rawset
        local function readonly() error('Attempt to modify a readonly table', 2) end
        function rawset(t, k, v)
          if type(t) ~= 'table' then error("bad argument #1 to 'rawset' (table expected, got " .. type(t) .. ')', 2) end
          refuseifreadonly(t)
          return rawset_(t, k, v)
        end
        -- (pairs of a view iterates through a closure: handing out next with the real table would hand out the table.)
        local function view(t)
          return setmetatable_({}, { __index = t, __newindex = readonly, __metatable = false, __engram_readonly = true,
            __pairs = function()
              local key
              return function()
                local value
                key, value = next(t, key)
                return key, value
              end
            end,
            __len = function() return #t end })
        end
        local names, values = {}, {}
        for _, name in ipairs({ 'assert', 'error', 'ipairs', 'next', 'pairs', 'pcall', 'rawequal', 'rawget', 'rawlen', 'rawset',
            'select', 'setmetatable', 'getmetatable', 'tonumber', 'tostring', 'type', 'xpcall', 'unpack', '_VERSION' }) do
          names[#names + 1], values[#values + 1] = name, _G[name]
        end
        local views = {}
        for _, name in ipairs({ 'string', 'table', 'math', 'utf8', 'redis', 'bit', 'cjson' }) do
          views[name] = view(_G[name])
          names[#names + 1], values[#values + 1] = name, views[name]
        end
        -- The strings' shared metatable: scripts see a read-only stand-in whose __index is the string library's view.
        getmetatable('').__metatable = view({ __index = views.string })
        local envmeta = { __index = function(_, name)
          error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
        end, __newindex = readonly, __metatable = view({}), __engram_readonly = true }
        -- One table constructor for a run's globals (sized once, no rehashing), the shared values as its upvalues.
        local source = { 'local envmeta, setmetatable' }
        for i = 1, #names do source[#source + 1] = ', v' .. i end
        source[#source + 1] = ' = ...\nreturn function(keys, argv)\nlocal env = { KEYS = keys, ARGV = argv'
        for i = 1, #names do source[#source + 1] = ', ' .. names[i] .. ' = v' .. i end
        source[#source + 1] = ' }\nenv._G = env\nreturn setmetatable(env, envmeta)\nend'
        __engram_fresh = load_(concat(source), '=globals', 't', {})(envmeta, setmetatable_, table.unpack(values))
        __engram_scripts = {}
        """;
}
