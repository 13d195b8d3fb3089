using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using static Engram.Server.Resp.Scripting.LuaNative;

namespace Engram.Server.Resp.Scripting;

/// <summary>
/// string.find, match, gmatch and gsub over <see cref="LuaPattern"/> instead of the C library's matcher, which no hook
/// interrupts (a crafted pattern ran for hours). The callbacks follow the sandbox's rule: they raise no Lua error. A
/// failure comes back as the <c>FAIL</c> sentinel and a message, and the Lua wrappers (<see cref="PatternsSource"/>)
/// raise it at the level the C function would have (the caller's line); a run that must stop installs the hook that
/// raises, as the instruction hook does. gsub with a function or table runs its loop in Lua (a managed callback cannot
/// call Lua code that may raise), one <c>step</c> call per match.
/// </summary>
internal static unsafe partial class LuaSandbox
{
    /// <summary>
    /// Replaces the four pattern functions of the state's <c>string</c> table (the library itself, so the scripts' view
    /// and strings' methods both reach them). Also used by tests on a plain state.
    /// </summary>
    internal static void InstallPatterns(nint state)
    {
        fixed (byte* p = PatternsChunk)
        {
            if (luaL_loadbufferx(state, p, (nuint)PatternsChunk.Length, "=patterns", "t") != Ok)
            {
                throw new InvalidOperationException("the pattern functions did not compile: " + Text(state, -1));
            }
        }
        lua_createtable(state, 0, 0); // FAIL
        lua_createtable(state, 0, 0); // LOOP
        lua_pushvalue(state, -2);
        lua_pushcclosure(state, &PatternFind, 1);
        lua_pushvalue(state, -3);
        lua_pushcclosure(state, &PatternMatch, 1);
        lua_pushvalue(state, -4);
        lua_pushcclosure(state, &PatternGmatch, 1);
        lua_pushvalue(state, -5);
        lua_pushvalue(state, -5);
        lua_pushcclosure(state, &PatternGsub, 2);
        lua_pushvalue(state, -6);
        lua_pushcclosure(state, &PatternGsubStep, 1);
        if (lua_pcallk(state, 7, 0, 0, 0, 0) != Ok)
        {
            throw new InvalidOperationException("the pattern functions could not be installed: " + Text(state, -1));
        }
    }

    private static readonly byte[] PatternsChunk = Encoding.UTF8.GetBytes(PatternsSource);

    /// <summary>
    /// The Lua side: wrappers that raise what the callbacks report, and gsub's loop for a function or table. The
    /// libraries' functions it uses are taken once, here (scripts cannot change them anyway).
    /// </summary>
    private const string PatternsSource = """
        local FAIL, LOOP, find, match, gmatch, gsub, step = ...
        local error, type, tostring, srep, sub, concat = error, type, tostring, string.rep, string.sub, table.concat
        -- Raised from the caller of the wrapper (level 3: raise, then check in the wrapper's place, then the caller).
        local function raise(message)
          if type(message) == 'number' then
            srep(' ', message) -- a result over the memory limit: the allocation fails as the C library's would
            error('not enough memory', 0)
          end
          error(message, 3)
        end
        local function check(first, ...)
          if first == FAIL then raise(...) end
          return first, ...
        end
        local function apply(repl, istable, from, to, ...)
          if from == nil or from == FAIL then return from, to end
          if istable then return from, to, repl[(...)] end
          return from, to, (repl(...))
        end
        local function gsubloop(s, p, repl, max, anchor)
          local istable = type(repl) == 'table'
          local parts, count, at, last, n, changed = {}, 0, 0, -1, 0, false
          while n < max do
            local from, to, value = apply(repl, istable, step(s, p, at, last, istable))
            if from == nil then break end
            if from == FAIL then
              if type(to) == 'number' then raise(to) end
              error(to, 2)
            end
            n = n + 1
            if from > at then count = count + 1 parts[count] = sub(s, at + 1, from) end
            if value then
              local t = type(value)
              if t ~= 'string' and t ~= 'number' then error('invalid replacement value (a ' .. t .. ')', 2) end
              changed = true
              count = count + 1 parts[count] = value
            elseif to > from then
              count = count + 1 parts[count] = sub(s, from + 1, to)
            end
            at, last = to, to
            if anchor then break end
          end
          if not changed then return type(s) == 'number' and tostring(s) or s, n end
          count = count + 1 parts[count] = sub(s, at + 1)
          return concat(parts, '', 1, count), n
        end
        string.find = function(s, p, init, plain) return check(find(s, p, init, plain)) end
        string.match = function(s, p, init) return check(match(s, p, init)) end
        string.gmatch = function(s, p, init)
          local iterate, failure = gmatch(s, p, init)
          if iterate == FAIL then
            if type(failure) == 'number' then raise(failure) end
            error(failure, 2)
          end
          return function() return check(iterate()) end
        end
        string.gsub = function(s, p, repl, n)
          local result, count, anchor = gsub(s, p, repl, n)
          if result == LOOP then return gsubloop(s, p, repl, count, anchor) end
          if result == FAIL then
            if type(count) == 'number' then raise(count) end
            error(count, 2)
          end
          return result, count
        end
        """;

    private static readonly string[] TypeNames = ["nil", "boolean", "userdata", "number", "string", "table", "function", "userdata", "thread"];

    /// <summary>A failure the callbacks report (the wrappers raise it); <see cref="Size"/> when it is memory.</summary>
    private sealed class PatternFailure(string message, long size = 0) : Exception(message)
    {
        public long Size => size;
    }

    private static string TypeName(nint state, int index) => lua_type(state, index) is var t && t >= 0 && t < TypeNames.Length ? TypeNames[t] : "no value";

    /// <summary>luaL_argerror's message, the function named as its caller named the wrapper (its frame is level 1).</summary>
    private static PatternFailure ArgError(nint state, int arg, string function, string extra)
    {
        var debug = stackalloc byte[512];
        new Span<byte>(debug, 512).Clear();
        if (lua_getstack(state, 1, debug) == 0)
        {
            return new PatternFailure($"bad argument #{arg} ({extra})");
        }
        lua_getinfo(state, "n", debug);
        // lua_Debug: int event; const char *name; const char *namewhat; ...
        var name = Marshal.PtrToStringUTF8(*(nint*)(debug + 8));
        var namewhat = Marshal.PtrToStringUTF8(*(nint*)(debug + 16));
        if (namewhat == "method")
        {
            arg--;
            if (arg == 0)
            {
                return new PatternFailure($"calling '{name}' on bad self ({extra})");
            }
        }
        return new PatternFailure($"bad argument #{arg} to '{name ?? "string." + function}' ({extra})");
    }

    private static ReadOnlySpan<byte> CheckBytes(nint state, int index, string function)
    {
        if (lua_type(state, index) is not (TypeString or TypeNumber))
        {
            throw ArgError(state, index, function, $"string expected, got {TypeName(state, index)}");
        }
        return ToBytes(state, index);
    }

    private static long OptInteger(nint state, int index, long value, string function)
    {
        if (lua_type(state, index) <= TypeNil)
        {
            return value;
        }
        var integer = lua_tointegerx(state, index, out int isNumber);
        if (isNumber != 0)
        {
            return integer;
        }
        throw ArgError(state, index, function,
            lua_isnumber(state, index) != 0 ? "number has no integer representation" : $"number expected, got {TypeName(state, index)}");
    }

    /// <summary>posrelatI: a 1-based start from a position that may count from the end.</summary>
    private static long StartAt(long position, int length) =>
        position > 0 ? position : position == 0 ? 1 : position < -(long)length ? 1 : length + position + 1;

    /// <summary>Whether <paramref name="bytes"/> more of strings fit in the script's memory limit (the pushes below are not limited).</summary>
    private static void Afford(long bytes)
    {
        if (_budget is not null && _budget->Limit - _budget->Used < bytes)
        {
            throw new PatternFailure("not enough memory", Math.Max(bytes, 1));
        }
    }

    /// <summary>Runs a pattern callback: its failures become FAIL and a message (or a size), a stop installs the raising hook.</summary>
    private static int Guarded(nint state, delegate*<nint, int> body)
    {
        using var unlimited = new Unlimited();
        var top = lua_gettop(state);
        try
        {
            return body(state);
        }
        catch (Exception ex)
        {
            lua_settop(state, top);
            switch (ex)
            {
                case LuaPatternStopped:
                    // As the instruction hook does: the next instruction raises, from C.
                    lua_sethook(state, RaiseError, MaskCount, 1);
                    return 0;
                case PatternFailure { Size: > 0 } memory:
                    lua_pushvalue(state, FirstUpvalue);
                    lua_pushinteger(state, memory.Size);
                    return 2;
                default:
                    lua_pushvalue(state, FirstUpvalue);
                    PushString(state, ex is LuaPatternException or PatternFailure ? ex.Message : "pattern matching failed: " + ex.Message);
                    return 2;
            }
        }
    }

    [UnmanagedCallersOnly]
    private static int PatternFind(nint state) => Guarded(state, &Find);

    [UnmanagedCallersOnly]
    private static int PatternMatch(nint state) => Guarded(state, &MatchFirst);

    [UnmanagedCallersOnly]
    private static int PatternGmatch(nint state) => Guarded(state, &Gmatch);

    [UnmanagedCallersOnly]
    private static int PatternGmatchNext(nint state) => Guarded(state, &GmatchNext);

    [UnmanagedCallersOnly]
    private static int PatternGsub(nint state) => Guarded(state, &Gsub);

    [UnmanagedCallersOnly]
    private static int PatternGsubStep(nint state) => Guarded(state, &GsubStep);

    private static int Find(nint state) => FindOrMatch(state, true);

    private static int MatchFirst(nint state) => FindOrMatch(state, false);

    /// <summary>str_find_aux: find (positions, then captures; plain text when asked or when the pattern has no specials) and match.</summary>
    private static int FindOrMatch(nint state, bool find)
    {
        var name = find ? "find" : "match";
        var s = CheckBytes(state, 1, name);
        var p = CheckBytes(state, 2, name);
        var init = StartAt(OptInteger(state, 3, 1, name), s.Length) - 1;
        if (init > s.Length)
        {
            lua_pushnil(state);
            return 1;
        }
        var at = (int)init;
        if (find && (lua_toboolean(state, 4) != 0 || !LuaPattern.HasSpecials(p)))
        {
            var found = s[at..].IndexOf(p);
            if (found < 0)
            {
                lua_pushnil(state);
                return 1;
            }
            lua_pushinteger(state, at + found + 1);
            lua_pushinteger(state, at + found + p.Length);
            return 2;
        }
        var matcher = new LuaPattern(s, p, _run);
        var anchor = p.Length > 0 && p[0] == '^';
        var patternStart = anchor ? 1 : 0;
        do
        {
            var end = matcher.MatchAt(at, patternStart);
            if (end != -1)
            {
                if (find)
                {
                    lua_pushinteger(state, at + 1);
                    lua_pushinteger(state, end);
                    return PushCaptures(state, ref matcher, s, -1, 0, 2) + 2;
                }
                return PushCaptures(state, ref matcher, s, at, end, 0);
            }
        }
        while (at++ < s.Length && !anchor);
        lua_pushnil(state);
        return 1;
    }

    /// <summary>push_captures: the captures (or the whole match when there are none and <paramref name="start"/> is not -1).</summary>
    private static int PushCaptures(nint state, ref LuaPattern matcher, ReadOnlySpan<byte> s, int start, int end, int extra, bool firstOnly = false)
    {
        var count = firstOnly ? 1 : matcher.CaptureCount(start >= 0);
        long bytes = 0;
        for (var i = 0; i < count; i++)
        {
            if (matcher.Capture(i, start, end, out _, out var length, out _))
            {
                bytes += length + 32;
            }
        }
        Afford(bytes);
        if (lua_checkstack(state, count + extra + 2) == 0)
        {
            throw new LuaPatternException("stack overflow (too many captures)");
        }
        for (var i = 0; i < count; i++)
        {
            if (matcher.Capture(i, start, end, out var from, out var length, out var position))
            {
                PushBytes(state, s.Slice(from, length));
            }
            else
            {
                lua_pushinteger(state, position);
            }
        }
        return count;
    }

    /// <summary>gmatch: an iterator (a C closure holding the subject, the pattern, the position and the last match's end).</summary>
    private static int Gmatch(nint state)
    {
        var s = CheckBytes(state, 1, "gmatch");
        CheckBytes(state, 2, "gmatch");
        var init = StartAt(OptInteger(state, 3, 1, "gmatch"), s.Length) - 1;
        if (init > s.Length)
        {
            init = s.Length + 1;
        }
        lua_settop(state, 2);
        lua_pushvalue(state, FirstUpvalue);
        lua_rotate(state, 1, 1); // FAIL, s, p
        lua_pushinteger(state, init);
        lua_pushinteger(state, -1);
        lua_pushcclosure(state, &PatternGmatchNext, 5);
        return 1;
    }

    private static int GmatchNext(nint state)
    {
        var s = ToBytes(state, Upvalue(2));
        var p = ToBytes(state, Upvalue(3));
        var at = (int)lua_tointegerx(state, Upvalue(4), 0);
        var last = (int)lua_tointegerx(state, Upvalue(5), 0);
        var matcher = new LuaPattern(s, p, _run);
        for (; at <= s.Length; at++)
        {
            var end = matcher.MatchAt(at, 0);
            if (end != -1 && end != last)
            {
                var count = PushCaptures(state, ref matcher, s, at, end, 0);
                lua_pushinteger(state, end);
                lua_copy(state, -1, Upvalue(4));
                lua_copy(state, -1, Upvalue(5));
                Pop(state, 1);
                return count;
            }
        }
        return 0;
    }

    /// <summary>
    /// gsub: with a string (or number) replacement, the whole substitution here; with a function or table, LOOP, the
    /// most replacements and whether the pattern is anchored, for the Lua loop over <see cref="GsubStep"/>.
    /// </summary>
    private static int Gsub(nint state)
    {
        var s = CheckBytes(state, 1, "gsub");
        var p = CheckBytes(state, 2, "gsub");
        var kind = lua_type(state, 3);
        var max = OptInteger(state, 4, s.Length + 1L, "gsub");
        if (kind is not (TypeNumber or TypeString or TypeFunction or TypeTable))
        {
            throw ArgError(state, 3, "gsub", $"string/function/table expected, got {TypeName(state, 3)}");
        }
        var anchor = p.Length > 0 && p[0] == '^';
        if (kind is TypeFunction or TypeTable)
        {
            lua_pushvalue(state, Upvalue(2));
            lua_pushinteger(state, max);
            lua_pushboolean(state, anchor ? 1 : 0);
            return 3;
        }
        var replacement = ToBytes(state, 3);
        var matcher = new LuaPattern(s, p, _run);
        var patternStart = anchor ? 1 : 0;
        var output = new ByteBuilder(Math.Min(s.Length + 16, 4096));
        var room = _budget is null ? long.MaxValue : _budget->Limit - _budget->Used;
        var at = 0;
        var last = -1;
        long n = 0;
        while (n < max)
        {
            var end = matcher.MatchAt(at, patternStart);
            if (end != -1 && end != last)
            {
                n++;
                AddReplacement(ref output, replacement, ref matcher, s, at, end);
                at = last = end;
            }
            else if (at < s.Length)
            {
                output.Add(s[at++]);
            }
            else
            {
                break;
            }
            if (output.Count > room)
            {
                throw new PatternFailure("not enough memory", output.Count + s.Length - at);
            }
            if (anchor)
            {
                break;
            }
        }
        if (n == 0)
        {
            lua_pushvalue(state, 1);
        }
        else
        {
            output.Add(s[at..]);
            Afford(output.Count + 32L);
            PushBytes(state, output.Written);
        }
        lua_pushinteger(state, n);
        return 2;
    }

    /// <summary>add_s: the replacement with %0-%9 and %% expanded.</summary>
    private static void AddReplacement(ref ByteBuilder output, ReadOnlySpan<byte> replacement, ref LuaPattern matcher, ReadOnlySpan<byte> s,
        int start, int end)
    {
        while (true)
        {
            var escape = replacement.IndexOf((byte)'%');
            if (escape < 0)
            {
                output.Add(replacement);
                return;
            }
            output.Add(replacement[..escape]);
            var next = escape + 1 < replacement.Length ? replacement[escape + 1] : (byte)0; // C reads the terminating '\0'
            if (next == '%')
            {
                output.Add((byte)'%');
            }
            else if (next == '0')
            {
                output.Add(s[start..end]);
            }
            else if (next is >= (byte)'1' and <= (byte)'9')
            {
                if (matcher.Capture(next - '1', start, end, out var from, out var length, out var position))
                {
                    output.Add(s.Slice(from, length));
                }
                else
                {
                    output.Add(Encoding.ASCII.GetBytes(position.ToString(CultureInfo.InvariantCulture)));
                }
            }
            else
            {
                throw new LuaPatternException("invalid use of '%' in replacement string");
            }
            replacement = replacement[(escape + 2)..];
        }
    }

    /// <summary>
    /// One step of gsub's loop (s, p, at, last, first): from <c>at</c> on, the first match that does not end where the last
    /// one did (only at <c>at</c> when anchored); its start and end (0-based, end exclusive) and its captures (only the
    /// first when <c>first</c>: a table is indexed by it alone), or nothing.
    /// </summary>
    private static int GsubStep(nint state)
    {
        var s = ToBytes(state, 1);
        var p = ToBytes(state, 2);
        var at = (int)lua_tointegerx(state, 3, 0);
        var last = (int)lua_tointegerx(state, 4, 0);
        var firstOnly = lua_toboolean(state, 5) != 0;
        var matcher = new LuaPattern(s, p, _run);
        var anchor = p.Length > 0 && p[0] == '^';
        var patternStart = anchor ? 1 : 0;
        while (true)
        {
            var end = matcher.MatchAt(at, patternStart);
            if (end != -1 && end != last)
            {
                lua_pushinteger(state, at);
                lua_pushinteger(state, end);
                return PushCaptures(state, ref matcher, s, at, end, 0, firstOnly) + 2;
            }
            if (at >= s.Length || anchor)
            {
                return 0;
            }
            at++;
        }
    }

    /// <summary>gsub's result as it grows (a plain array: the loop adds a byte or a few at a time).</summary>
    private struct ByteBuilder(int capacity)
    {
        private byte[] _bytes = new byte[capacity];

        public int Count { get; private set; }

        public readonly ReadOnlySpan<byte> Written => _bytes.AsSpan(0, Count);

        public void Add(byte value)
        {
            if (Count == _bytes.Length)
            {
                Array.Resize(ref _bytes, _bytes.Length * 2);
            }
            _bytes[Count++] = value;
        }

        public void Add(ReadOnlySpan<byte> values)
        {
            if (Count + values.Length > _bytes.Length)
            {
                Array.Resize(ref _bytes, (int)Math.Min(Array.MaxLength, Math.Max(_bytes.Length * 2L, Count + (long)values.Length)));
            }
            values.CopyTo(_bytes.AsSpan(Count));
            Count += values.Length;
        }
    }
}
