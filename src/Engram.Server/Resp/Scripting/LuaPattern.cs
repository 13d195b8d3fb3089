using System.Runtime.CompilerServices;

namespace Engram.Server.Resp.Scripting;

/// <summary>
/// Lua 5.4's pattern matching (string.find, match, gmatch, gsub) over bytes, written to give the very results and
/// errors of the C library (lstrlib.c's matcher: same recursion, same depth limit of 200 calls, same messages), but
/// bounded: every <see cref="CheckEvery"/> units of work it asks the script run whether it must stop (its time limit,
/// SCRIPT KILL), which the instruction hook cannot do inside a C function. The native matcher on a crafted pattern
/// (<c>('.-'):rep(6) .. 'b'</c> on 3,000 bytes) runs for hours; this one stops at the script's time limit.
/// <para>
/// Positions are 0-based byte offsets; -1 is "no match". A malformed pattern throws <see cref="LuaPatternException"/>
/// with Lua's message; a run that must stop throws <see cref="LuaPatternStopped"/>. Both are rare paths (the caller
/// turns them into a Lua error); the matching itself throws nothing.
/// </para>
/// </summary>
internal ref struct LuaPattern
{
    public const int MaxCaptures = 32;

    /// <summary>Lua's MAXCCALLS for the matcher: nested match calls past this are "pattern too complex".</summary>
    private const int MaxCalls = 200;

    /// <summary>Units of work (match calls, bytes scanned) between two looks at the run's stop condition.</summary>
    public const int CheckEvery = 4096;

    private const int CapUnfinished = -1;
    private const int CapPosition = -2;

    private readonly ReadOnlySpan<byte> _s;
    private readonly ReadOnlySpan<byte> _p;
    private readonly ScriptRun? _run;
    private int _depth;
    private int _ticks;
    private Slots _init;
    private Slots _len;

    /// <summary>Captures of the last match (finished or not; <see cref="Capture"/> reads them).</summary>
    public int Level { get; private set; }

    [InlineArray(MaxCaptures)]
    private struct Slots
    {
        private int _first;
    }

    public LuaPattern(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> pattern, ScriptRun? run)
    {
        _s = subject;
        _p = pattern;
        _run = run;
        _depth = MaxCalls;
        _ticks = CheckEvery;
    }

    /// <summary>Lua's special characters: a pattern with none of them is searched for as plain text by find.</summary>
    public static bool HasSpecials(ReadOnlySpan<byte> pattern) => pattern.IndexOfAny("^$*+?.([%-"u8) >= 0;

    /// <summary>Tries the pattern from <paramref name="patternStart"/> at subject offset <paramref name="at"/>; the end of the match or -1.</summary>
    public int MatchAt(int at, int patternStart)
    {
        Level = 0;
        return Match(at, patternStart);
    }

    /// <summary>
    /// The i-th capture as push_captures gives it: the whole match (<paramref name="start"/>..<paramref name="end"/>) when
    /// the pattern has none and i is 0; a position capture gives <paramref name="position"/> (1-based) and false.
    /// </summary>
    public readonly bool Capture(int i, int start, int end, out int from, out int length, out long position)
    {
        position = 0;
        if (i >= Level)
        {
            if (i != 0)
            {
                throw new LuaPatternException($"invalid capture index %{i + 1}");
            }
            from = start;
            length = end - start;
            return true;
        }
        from = _init[i];
        length = _len[i];
        if (length == CapUnfinished)
        {
            throw new LuaPatternException("unfinished capture");
        }
        if (length == CapPosition)
        {
            position = from + 1;
            return false;
        }
        return true;
    }

    /// <summary>How many values push_captures pushes: the captures, or the whole match when there are none (and a match is given).</summary>
    public readonly int CaptureCount(bool wholeMatch) => Level == 0 && wholeMatch ? 1 : Level;

    private readonly byte P(int i) => (uint)i < (uint)_p.Length ? _p[i] : (byte)0; // C reads the terminating '\0'

    private readonly byte S(int i) => (uint)i < (uint)_s.Length ? _s[i] : (byte)0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Tick(int units)
    {
        _ticks -= units;
        if (_ticks < 0)
        {
            Check();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Check()
    {
        _ticks = CheckEvery;
        if (_run is { } run && run.ShouldStop())
        {
            throw new LuaPatternStopped();
        }
    }

    private int Match(int s, int p)
    {
        if (_depth-- == 0)
        {
            throw new LuaPatternException("pattern too complex");
        }
        Tick(1);
        while (p != _p.Length)
        {
            switch (_p[p])
            {
                case (byte)'(':
                    s = P(p + 1) == ')' ? StartCapture(s, p + 2, CapPosition) : StartCapture(s, p + 1, CapUnfinished);
                    goto Done;
                case (byte)')':
                    s = EndCapture(s, p + 1);
                    goto Done;
                case (byte)'$' when p + 1 == _p.Length:
                    s = s == _s.Length ? s : -1;
                    goto Done;
                case (byte)'%' when P(p + 1) == 'b':
                    s = MatchBalance(s, p + 2);
                    if (s != -1)
                    {
                        p += 4;
                        continue;
                    }
                    goto Done;
                case (byte)'%' when P(p + 1) == 'f':
                    {
                        p += 2;
                        if (P(p) != '[')
                        {
                            throw new LuaPatternException("missing '[' after '%f' in pattern");
                        }
                        var ep = ClassEnd(p);
                        var previous = s == 0 ? (byte)0 : _s[s - 1];
                        if (!MatchBracketClass(previous, p, ep - 1) && MatchBracketClass(S(s), p, ep - 1))
                        {
                            p = ep;
                            continue;
                        }
                        s = -1;
                        goto Done;
                    }
                case (byte)'%' when P(p + 1) is >= (byte)'0' and <= (byte)'9':
                    s = MatchCapture(s, P(p + 1));
                    if (s != -1)
                    {
                        p += 2;
                        continue;
                    }
                    goto Done;
                default:
                    {
                        var ep = ClassEnd(p);
                        var suffix = P(ep);
                        if (!SingleMatch(s, p, ep))
                        {
                            if (suffix is (byte)'*' or (byte)'?' or (byte)'-')
                            {
                                p = ep + 1;
                                continue;
                            }
                            s = -1;
                            goto Done;
                        }
                        switch (suffix)
                        {
                            case (byte)'?':
                                var res = Match(s + 1, ep + 1);
                                if (res != -1)
                                {
                                    s = res;
                                    goto Done;
                                }
                                p = ep + 1;
                                continue;
                            case (byte)'+':
                                s = MaxExpand(s + 1, p, ep);
                                goto Done;
                            case (byte)'*':
                                s = MaxExpand(s, p, ep);
                                goto Done;
                            case (byte)'-':
                                s = MinExpand(s, p, ep);
                                goto Done;
                            default:
                                s++;
                                p = ep;
                                continue;
                        }
                    }
            }
        }
    Done:
        _depth++;
        return s;
    }

    private readonly int ClassEnd(int p)
    {
        var c = _p[p++];
        if (c == '%')
        {
            if (p == _p.Length)
            {
                throw new LuaPatternException("malformed pattern (ends with '%')");
            }
            return p + 1;
        }
        if (c == '[')
        {
            if (P(p) == '^')
            {
                p++;
            }
            do
            {
                if (p == _p.Length)
                {
                    throw new LuaPatternException("malformed pattern (missing ']')");
                }
                if (_p[p++] == '%' && p < _p.Length)
                {
                    p++;
                }
            }
            while (P(p) != ']');
            return p + 1;
        }
        return p;
    }

    /// <summary>A character class (%a and the rest) as C's ctype functions answer in the C locale (ASCII only).</summary>
    private static bool MatchClass(byte c, byte cl)
    {
        bool res;
        switch (cl | 0x20)
        {
            case 'a': res = IsAlpha(c); break;
            case 'c': res = c < 0x20 || c == 0x7f; break;
            case 'd': res = c is >= (byte)'0' and <= (byte)'9'; break;
            case 'g': res = c is > 0x20 and < 0x7f; break;
            case 'l': res = c is >= (byte)'a' and <= (byte)'z'; break;
            case 'p': res = c is > 0x20 and < 0x7f && !IsAlpha(c) && c is not (>= (byte)'0' and <= (byte)'9'); break;
            case 's': res = c is (byte)' ' or (>= 0x09 and <= 0x0d); break;
            case 'u': res = c is >= (byte)'A' and <= (byte)'Z'; break;
            case 'w': res = IsAlpha(c) || c is >= (byte)'0' and <= (byte)'9'; break;
            case 'x': res = c is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F'; break;
            case 'z': res = c == 0; break;
            default: return cl == c;
        }
        // (cl | 0x20 names a class only for an ASCII letter, so "lower case" is the 0x20 bit.)
        return (cl & 0x20) != 0 ? res : !res;

        static bool IsAlpha(byte c) => (uint)((c | 0x20) - 'a') <= 'z' - 'a';
    }

    private readonly bool MatchBracketClass(byte c, int p, int ec)
    {
        var sig = true;
        if (P(p + 1) == '^')
        {
            sig = false;
            p++;
        }
        while (++p < ec)
        {
            if (_p[p] == '%')
            {
                p++;
                if (MatchClass(c, P(p)))
                {
                    return sig;
                }
            }
            else if (P(p + 1) == '-' && p + 2 < ec)
            {
                p += 2;
                if (_p[p - 2] <= c && c <= _p[p])
                {
                    return sig;
                }
            }
            else if (_p[p] == c)
            {
                return sig;
            }
        }
        return !sig;
    }

    private readonly bool SingleMatch(int s, int p, int ep)
    {
        if (s >= _s.Length)
        {
            return false;
        }
        var c = _s[s];
        return _p[p] switch
        {
            (byte)'.' => true,
            (byte)'%' => MatchClass(c, P(p + 1)),
            (byte)'[' => MatchBracketClass(c, p, ep - 1),
            var literal => literal == c,
        };
    }

    private int MatchBalance(int s, int p)
    {
        if (p >= _p.Length - 1)
        {
            throw new LuaPatternException("malformed pattern (missing arguments to '%b')");
        }
        if (S(s) != _p[p])
        {
            return -1;
        }
        var open = _p[p];
        var close = _p[p + 1];
        var depth = 1;
        var start = s;
        while (++s < _s.Length)
        {
            var c = _s[s];
            if (c == close)
            {
                if (--depth == 0)
                {
                    Tick((s - start) >> 6);
                    return s + 1;
                }
            }
            else if (c == open)
            {
                depth++;
            }
        }
        Tick((s - start) >> 6);
        return -1;
    }

    private int MaxExpand(int s, int p, int ep)
    {
        var i = 0;
        while (SingleMatch(s + i, p, ep))
        {
            i++;
        }
        Tick(i >> 6);
        for (; i >= 0; i--)
        {
            var res = Match(s + i, ep + 1);
            if (res != -1)
            {
                return res;
            }
        }
        return -1;
    }

    private int MinExpand(int s, int p, int ep)
    {
        while (true)
        {
            var res = Match(s, ep + 1);
            if (res != -1)
            {
                return res;
            }
            if (!SingleMatch(s, p, ep))
            {
                return -1;
            }
            s++;
        }
    }

    private int StartCapture(int s, int p, int what)
    {
        var level = Level;
        if (level >= MaxCaptures)
        {
            throw new LuaPatternException("too many captures");
        }
        _init[level] = s;
        _len[level] = what;
        Level = level + 1;
        var res = Match(s, p);
        if (res == -1)
        {
            Level--;
        }
        return res;
    }

    private int EndCapture(int s, int p)
    {
        var l = CaptureToClose();
        _len[l] = s - _init[l];
        var res = Match(s, p);
        if (res == -1)
        {
            _len[l] = CapUnfinished;
        }
        return res;
    }

    private readonly int CaptureToClose()
    {
        for (var level = Level - 1; level >= 0; level--)
        {
            if (_len[level] == CapUnfinished)
            {
                return level;
            }
        }
        throw new LuaPatternException("invalid pattern capture");
    }

    private int MatchCapture(int s, byte digit)
    {
        var l = digit - '1';
        if (l < 0 || l >= Level || _len[l] == CapUnfinished)
        {
            throw new LuaPatternException($"invalid capture index %{l + 1}");
        }
        var length = _len[l];
        if (length < 0 || _s.Length - s < length) // a position capture's length is huge in C: never matches
        {
            return -1;
        }
        Tick(length >> 6);
        return _s.Slice(_init[l], length).SequenceEqual(_s.Slice(s, length)) ? s + length : -1;
    }
}

/// <summary>A malformed pattern or replacement: the message is Lua's.</summary>
internal sealed class LuaPatternException(string message) : Exception(message);

/// <summary>The script run must stop (time limit, SCRIPT KILL) while a pattern was being matched.</summary>
internal sealed class LuaPatternStopped : Exception;
