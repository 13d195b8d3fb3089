using System.Diagnostics;
using System.Text;
using Engram.Server.Resp.Scripting;
using static Engram.Server.Resp.Scripting.LuaNative;

namespace Engram.Tests.Resp;

/// <summary>
/// The scripts' string.find / match / gmatch / gsub (our <see cref="LuaPattern"/>, bounded by the script's stop) against
/// the C library's, differentially: the same Lua code runs in a plain Lua 5.4 state (liblua54's own string library) and
/// in one with our four functions installed, over hand-written cases for every feature of the pattern language and
/// random patterns and subjects, and every result (values, types, error messages with their positions) must be equal.
/// </summary>
public sealed class RespScriptPatternTests : IDisposable
{
    private readonly nint _native;
    private readonly nint _ours;

    /// <summary>The operations each case runs (globals S, P, I, X, R, N are the case's arguments).</summary>
    private const string Harness = """
        local select, type, tostring, format, concat, pcall = select, type, tostring, string.format, table.concat, pcall
        local function ser(...)
          local out = { tostring(select('#', ...)) }
          for i = 1, select('#', ...) do
            local v = select(i, ...)
            out[#out + 1] = type(v) .. ':' .. (type(v) == 'string' and format('%q', v) or tostring(v))
          end
          return concat(out, '|')
        end
        __ser = ser
        local ops = {}
        ops.find = function() return ser(pcall(string.find, S, P, I)) end
        ops.findplain = function() return ser(pcall(string.find, S, P, I, X)) end
        ops.findline = function() return ser(pcall(function() local a, b, c, d = string.find(S, P, I) return a, b, c, d end)) end
        ops.method = function() return ser(pcall(function() local a, b, c = S:match(P, I) return a, b, c end)) end
        ops.match = function() return ser(pcall(string.match, S, P, I)) end
        ops.gmatch = function()
          return ser(pcall(function()
            local out, k = {}, 0
            for a, b, c in string.gmatch(S, P, I) do
              k = k + 1
              out[k] = ser(a, b, c)
              if k >= 200 then break end
            end
            return concat(out, ';')
          end))
        end
        ops.gsub = function() return ser(pcall(string.gsub, S, P, R, N)) end
        ops.gsubfn = function()
          local calls = 0
          return ser(pcall(string.gsub, S, P, function(...)
            calls = calls + 1
            if calls % 3 == 0 then return nil end
            if calls % 5 == 0 then return calls end
            return '<' .. ser(...) .. '>'
          end, N))
        end
        ops.gsubtable = function() return ser(pcall(string.gsub, S, P, { a = 'A', b = false, ['1'] = 1, [1] = 'one', ab = 'AB' }, N)) end
        ops.gsubbad = function() return ser(pcall(string.gsub, S, P, function() return {} end)) end
        __ops = ops
        """;

    public RespScriptPatternTests()
    {
        _native = Open(ours: false);
        _ours = Open(ours: true);
    }

    public void Dispose()
    {
        lua_close(_native);
        lua_close(_ours);
    }

    private static nint Open(bool ours)
    {
        var state = luaL_newstate();
        luaL_openlibs(state);
        if (ours)
        {
            LuaSandbox.InstallPatterns(state);
        }
        Run(state, Harness, 0);
        // (Ours are Lua wrappers over managed callbacks; the library's are C functions.)
        Run(state, "assert(debug.getinfo(string.find, 'S').what == " + (ours ? "'Lua'" : "'C'") + ")", 0);
        return state;
    }

    private static void Run(nint state, string code, int results)
    {
        if (LoadChunk(state, Encoding.UTF8.GetBytes(code), "=harness") != Ok || lua_pcallk(state, 0, results, 0, 0, 0) != Ok)
        {
            throw new InvalidOperationException(Encoding.UTF8.GetString(ToBytes(state, -1)));
        }
    }

    private static void SetGlobal(nint state, string name, object? value)
    {
        switch (value)
        {
            case null: lua_pushnil(state); break;
            case byte[] bytes: PushBytes(state, bytes); break;
            case string text: PushBytes(state, Encoding.Latin1.GetBytes(text)); break;
            case long integer: lua_pushinteger(state, integer); break;
            case int integer: lua_pushinteger(state, integer); break;
            case double number: lua_pushnumber(state, number); break;
            case bool flag: lua_pushboolean(state, flag ? 1 : 0); break;
            default: throw new ArgumentException(value.GetType().Name);
        }
        lua_setglobal(state, name);
    }

    private static string Call(nint state, string op, object? s, object? p, object? i, object? x, object? r, object? n)
    {
        SetGlobal(state, "S", s);
        SetGlobal(state, "P", p);
        SetGlobal(state, "I", i);
        SetGlobal(state, "X", x);
        SetGlobal(state, "R", r);
        SetGlobal(state, "N", n);
        lua_getglobal(state, "__ops");
        RawGetField(state, -1, op);
        if (lua_pcallk(state, 0, 1, 0, 0, 0) != Ok)
        {
            var failure = Encoding.Latin1.GetString(ToBytes(state, -1));
            lua_settop(state, 0);
            return "harness error: " + failure;
        }
        var result = Encoding.Latin1.GetString(ToBytes(state, -1));
        lua_settop(state, 0);
        return result;
    }

    private static readonly string[] Ops = ["find", "findplain", "findline", "method", "match", "gmatch", "gsub", "gsubfn", "gsubtable", "gsubbad"];

    /// <summary>Runs every operation on both states; returns the disagreements.</summary>
    private List<string> Compare(object? s, object? p, object? i = null, object? x = null, object? r = null, object? n = null, string[]? ops = null)
    {
        var differences = new List<string>();
        foreach (var op in ops ?? Ops)
        {
            var expected = Call(_native, op, s, p, i, x, r ?? "<%0>", n);
            var actual = Call(_ours, op, s, p, i, x, r ?? "<%0>", n);
            if (expected != actual)
            {
                differences.Add($"{op}(s={Show(s)}, p={Show(p)}, init={Show(i)}, x={Show(x)}, r={Show(r)}, n={Show(n)}):\n  lua:  {expected}\n  ours: {actual}");
            }
        }
        return differences;
    }

    private static string Show(object? value) => value switch
    {
        null => "nil",
        string text => "'" + text.Replace("\0", "\\0", StringComparison.Ordinal) + "'",
        byte[] bytes => Convert.ToHexString(bytes),
        _ => value.ToString() ?? "",
    };

    public static TheoryData<string, string> Features => new()
    {
        // classes and their complements, '.', literals
        { "hello world 123 \t\n x_y-Z!", "%a+" }, { "hello world 123", "%A+" }, { "a\x01\x7f b", "%c" }, { "a\u0001b", "%C+" },
        { "abc 123 def", "%d+" }, { "abc 123", "%D+" }, { "  x!y ", "%g+" }, { "  x y", "%G" }, { "ABCdef", "%l+" }, { "ABCdef", "%L+" },
        { "a,b.c!d", "%p" }, { "a,b", "%P+" }, { "a \t\r\n\v\fb", "%s+" }, { " \tab", "%S+" }, { "abcDEF", "%u+" }, { "abcDEF", "%U+" },
        { "a_b1 c", "%w+" }, { "ab1 %c", "%W+" }, { "0x1fG", "%x+" }, { "xyz09", "%X+" }, { "a\0b", "%z" }, { "a\0b", "%Z+" },
        { "a.b", "%." }, { "a%b", "%%" }, { "abc", "." }, { "abc", ".." }, { "", "." }, { "é\xff\x80", "%a" }, { "\xff", "[\x80-\xff]" },
        // sets
        { "hello", "[aeiou]" }, { "hello", "[^aeiou]+" }, { "a-b", "[a-]" }, { "a-b", "[-a]+" }, { "x]y", "[]]" }, { "x]y", "[^]]+" },
        { "a^b", "[%^a]+" }, { "a^b", "[a^]+" }, { "A1b2", "[%a%d]+" }, { "a1-", "[%w-]+" }, { "m", "[a-z]" }, { "M", "[a-z]" }, { "b", "[z-a]" },
        { "a]b", "[%]]" }, { "a%b", "[%%]" }, { "abc", "[a-c-e]+" }, { "a-e", "[a-c-e]+" },
        // quantifiers
        { "aaab", "a*" }, { "aaab", "a+" }, { "aaab", "a-b" }, { "aaab", "a?a?b" }, { "b", "a+" }, { "<a><b>", "<.->" }, { "<a><b>", "<.*>" },
        { "abc", "x*" }, { "abc", "x-" }, { "abc", "a?" }, { "aaa", "a-$" }, { "ab", "a-?" }, { "a+b", "a+%+b" }, { "a*", "a*%*" },
        // anchors
        { "abc", "^a" }, { "abc", "^b" }, { "abc", "c$" }, { "abc", "b$" }, { "a$b", "a$b" }, { "a^b", "a^b" }, { "", "^$" }, { "abc", "^abc$" },
        { "^a", "^^a" }, { "x^", "^" }, { "x", "$" },
        // captures, position captures, back-references
        { "key = value", "(%w+)%s*=%s*(%w+)" }, { "hello", "()ll()" }, { "hello", "(h)(e)(l)(l)(o)" }, { "abab", "(ab)%1" },
        { "abcabc", "(a(b)c)%1" }, { "xyzzy", "(z)%1" }, { "abba", "(a)(b)%2%1" }, { "aaa", "()a()%1" }, { "aa", "(()a)%2" },
        { "hello", "(h)(.-)()o" }, { "abc", "((a)(b))" }, { "abc", "(a)%2" }, { "abc", "(a%1)" }, { "abc", "%0" }, { "abc", "(a)%9" },
        // %b and %f
        { "f(a(b)c) d", "%b()" }, { "x[[y]] ]", "%b[]" }, { "((", "%b()" }, { "abc", "%b" }, { "abc", "%ba" }, { "aXbXa", "%bXX" },
        { "THE (quick) fox", "%f[%a]%a+" }, { "THE (quick) fox", "%f[%A]" }, { "hello world", "%f[%w]%w+%f[%W]" }, { "x", "%f[%z]" },
        { "abc", "%f" }, { "abc", "%fa" }, { "abc", "%f[a" }, { "a b", "%f[^%s]." },
        // malformed patterns and limits
        { "abc", "%" }, { "abc", "a%" }, { "abc", "[a" }, { "abc", "[^" }, { "abc", "[a%" }, { "abc", "[" }, { "abc", "[]" }, { "abc", "(a" },
        { "abc", "a)" }, { "abc", "(()" }, { "abc", "%g%" }, { "abc", "[%" }, { "abc", "[%]" },
        { "aaaaaaaaaa", "((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))" },
        { "aaaaaaaaaa", "()()()()()()()()()()()()()()()()()()()()()()()()()()()()()()()()" },
        { "aaaaaaaaaa", "()()()()()()()()()()()()()()()()()()()()()()()()()()()()()()()()()" },
        { new string('a', 300), string.Concat(Enumerable.Repeat("a?", 300)) }, { new string('a', 198), string.Concat(Enumerable.Repeat("a", 198)) + "()" },
        { new string('a', 250), new string('a', 250) }, { new string('a', 250), string.Concat(Enumerable.Repeat("(a)", 20)) + new string('a', 230) },
        // plain-looking patterns (find searches them as text), embedded zeros, empty ones
        { "hello world", "o w" }, { "a.b", "." }, { "a\0b\0c", "\0c" }, { "a\0b", "[\0]" }, { "", "" }, { "abc", "" }, { "abc", "()" },
    };

    [Theory]
    [MemberData(nameof(Features))]
    public void Pattern_functions_agree_with_the_C_library_on_every_feature(string subject, string pattern)
    {
        var differences = new List<string>();
        foreach (var init in new object?[] { null, 2L, -2L, 0L, 100L, -100L })
        {
            differences.AddRange(Compare(subject, pattern, init, true, null, null));
        }
        differences.Should().BeEmpty();
    }

    [Fact]
    public void Arguments_and_replacements_agree_with_the_C_library()
    {
        var differences = new List<string>();
        // init and plain of every kind; the arguments' types and conversions
        foreach (var init in new object?[] { 1L, 3L, 4L, 5L, -1L, -3L, long.MinValue, long.MaxValue, 2.0, 2.5, "2", "x", "0x2", true })
        {
            differences.AddRange(Compare("abc", "b", init, null));
            differences.AddRange(Compare("abc", "", init, null));
            differences.AddRange(Compare("a.c", ".", init, "yes"));
            differences.AddRange(Compare("abc", "()", init, false));
        }
        foreach (var subject in new object?[] { 12345L, 1.5, null, true })
        {
            differences.AddRange(Compare(subject, "%d", null, null, "[%0]"));
            differences.AddRange(Compare("a1", subject, null, null, "[%0]"));
            differences.AddRange(Compare("a1", "%w", null, null, subject));
        }
        // replacement strings: %0-%9, %%, a lone or unknown escape, captures that do not exist, position captures
        foreach (var replacement in new[] { "%0", "%1", "%2", "%%", "%", "x%", "%a", "%1%1", "<%1|%2>", "%9", "100%%", "" })
        {
            foreach (var pattern in new[] { "%w+", "(%w)(%w*)", "()%w", "(%w)()", "", "^%w", "(", "%d*" })
            {
                differences.AddRange(Compare("hello world 42", pattern, null, null, replacement, null, ["gsub"]));
            }
        }
        // the n limit
        foreach (var limit in new object?[] { 0L, 1L, 2L, -1L, 100L, 2.0, 2.5, "1", "z" })
        {
            differences.AddRange(Compare("a b c d", "%a", null, null, "%0%0", limit, ["gsub", "gsubfn", "gsubtable"]));
            differences.AddRange(Compare("abab", "", null, null, "-", limit, ["gsub", "gsubfn"]));
        }
        differences.AddRange(Compare("abc", "b", null, null, new byte[] { (byte)'%', 0 }, null, ["gsub"]));
        differences.Should().BeEmpty();
    }

    [Fact]
    public void Random_patterns_and_subjects_agree_with_the_C_library()
    {
        string[] tokens =
        [
            "a", "b", "c", ".", "%a", "%d", "%s", "%w", "%A", "%W", "%p", "%x", "%u", "%l", "%.", "%%", "[ab]", "[^a]", "[a-c]", "[%a%d]", "[%]]",
            "[^%s]", "*", "+", "-", "?", "*", "+", "-", "?", "(", ")", "(", ")", "()", "%1", "%2", "%b()", "%bab", "%f[%w]", "%f[%W]", "%f[a]",
            "^", "$", "%", "[", "]", "%z", "\0", "\xe9", "1", " ",
        ];
        string[] subjects = ["", "a", "ab", "aab", "abc", "abcabc", "ba(a)b", "a1 b2  c3", "((a)(b))", "aaaa", "a.b-c", "x\0y", "é1é", "abba cab"];
        var random = new Random(20260521);
        var differences = new List<string>();
        var cases = 0;
        for (var round = 0; round < 10_000 && differences.Count < 20; round++)
        {
            var pattern = new StringBuilder();
            for (var k = random.Next(1, 7); k > 0; k--)
            {
                pattern.Append(tokens[random.Next(tokens.Length)]);
            }
            string subject;
            if (random.Next(3) == 0)
            {
                const string Alphabet = "ab1 ()[]%.-\0\u00e9c";
                var chars = new char[random.Next(0, 16)];
                for (var i = 0; i < chars.Length; i++)
                {
                    chars[i] = Alphabet[random.Next(Alphabet.Length)];
                }
                subject = new string(chars);
            }
            else
            {
                subject = subjects[random.Next(subjects.Length)];
            }
            object? init = random.Next(4) switch { 0 => null, 1 => (long)random.Next(-5, 8), _ => null };
            var replacement = new[] { "<%0>", "%1", "[%2]", "%%", "x", "%" }[random.Next(6)];
            object? limit = random.Next(3) == 0 ? (long)random.Next(0, 4) : null;
            differences.AddRange(Compare(subject, pattern.ToString(), init, null, replacement, limit));
            cases++;
        }
        cases.Should().Be(10_000);
        differences.Should().BeEmpty();
    }

    [Fact]
    public void A_crafted_pattern_stops_at_the_run_time_limit()
    {
        // The probe's pattern: the C library's matcher runs it for hours. Ours asks the run every few thousand steps.
        var run = new ScriptRun("t", false, _ => default, 200);
        var subject = Encoding.ASCII.GetBytes(new string('a', 3000));
        var watch = Stopwatch.StartNew();
        var stopped = false;
        try
        {
            var matcher = new LuaPattern(subject, ".-.-.-.-.-.-b"u8, run);
            for (var at = 0; at <= subject.Length; at++)
            {
                matcher.MatchAt(at, 0);
            }
        }
        catch (LuaPatternStopped)
        {
            stopped = true;
        }
        watch.Stop();
        stopped.Should().BeTrue();
        run.Stop.Should().Be(ScriptStop.TimeLimit);
        watch.ElapsedMilliseconds.Should().BeLessThan(1500);
        // SCRIPT KILL too.
        var killed = new ScriptRun("t", false, _ => default, 60_000);
        killed.Kill();
        var act = () =>
        {
            var matcher = new LuaPattern(subject, ".-.-.-.-.-.-b"u8, killed);
            for (var at = 0; at <= subject.Length; at++)
            {
                matcher.MatchAt(at, 0);
            }
        };
        act.Should().Throw<LuaPatternStopped>();
    }
}
