using System.Text;
using Engram.Core.Common;

namespace Engram.Core.KeyValue;

/// <summary>
/// A Redis-style key pattern (<c>*</c>, <c>?</c>, <c>[abc]</c>, <c>[^a-z]</c>, <c>\x</c> for a literal x),
/// translated to SQLite's GLOB (same wildcards, no escape character: a literal special is written
/// <c>[*]</c>).
/// <para>
/// A pattern matches a key by either of its names: as the caller sees it (<see cref="KvKeys.ToDisplay"/>) or as it is
/// stored. The two differ only for a key of three segments, stored (and also nameable) with the caller's tenant as its
/// second segment: <c>app:sess:*</c> finds <c>app:sess:x</c> (stored <c>app:acme:sess:x</c>) as well as
/// <c>app:sess:x:y</c>, and a swarm's <c>app:acme:*</c> finds the keys it wrote as <c>app:acme:task:1</c> (shown as
/// <c>app:task:1</c>). Patterns used to be rewritten as keys are, so a three-segment pattern matched only stored
/// four-segment keys: <c>KEYS app:sess:*</c> missed <c>app:sess:x:y</c> and a cleanup by it left keys behind.
/// </para>
/// <para>
/// <see cref="Prefix"/> bounds the store's scan: the literal text before the first wildcard, cut where it and its
/// stored form (the tenant after its first ':') part.
/// </para>
/// </summary>
public sealed class KvGlob
{
    public const int MaxPatternChars = 1024;

    private KvGlob(string sql, string prefix, string tenant)
    {
        Sql = sql;
        Prefix = prefix;
        Tenant = tenant;
    }

    /// <summary>Matches every key.</summary>
    public static KvGlob All { get; } = new("*", "", "");

    /// <summary>The pattern in SQLite GLOB syntax, matched against a key's stored name and its shown name.</summary>
    public string Sql { get; }

    /// <summary>Every stored key a match can have starts with this.</summary>
    public string Prefix { get; }

    /// <summary>The tenant whose keys are shown without it (<see cref="KvKeys.ToDisplay"/>).</summary>
    public string Tenant { get; }

    /// <summary>
    /// Whether <paramref name="storedKey"/> matches by either name, exactly as the stores decide with SQLite's GLOB and
    /// <see cref="Sql"/> (code point by code point; a class is <c>[^…]</c>, ranges <c>a-z</c>, a <c>]</c> first is literal):
    /// for keys a store does not list itself, such as those a transaction has changed but not written yet.
    /// </summary>
    public bool Matches(string storedKey)
    {
        if (GlobMatches(Sql, storedKey))
        {
            return true;
        }
        var shown = Tenant.Length == 0 ? storedKey : KvKeys.ToDisplay(Tenant, storedKey);
        return !ReferenceEquals(shown, storedKey) && GlobMatches(Sql, shown);
    }

    /// <summary>
    /// The SQL condition the stores use (SQLite GLOB here; PostgreSQL passes its regular-expression operator): the stored
    /// key matches, or it is a key shown without the tenant (<paramref name="tenantParameter"/>: four segments, the second
    /// the tenant) whose shown name matches. <see cref="KvKeys.ToDisplay"/> in SQL.
    /// </summary>
    public static string SqlCondition(string tenantParameter, string patternParameter, string matchOperator = "GLOB", string position = "instr") =>
        $"(key {matchOperator} {patternParameter} OR (CASE WHEN length(key) - length(replace(key, ':', '')) = 3 " +
        $"AND substr(key, {position}(key, ':') + 1, length({tenantParameter}) + 1) = {tenantParameter} || ':' " +
        $"THEN substr(key, 1, {position}(key, ':')) || substr(key, {position}(key, ':') + length({tenantParameter}) + 2) END) {matchOperator} {patternParameter})";

    private static bool GlobMatches(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text)
    {
        int p = 0, t = 0, starP = -1, starT = -1;
        while (t < text.Length)
        {
            Rune.DecodeFromUtf16(text[t..], out var ch, out var chLength);
            if (p < pattern.Length)
            {
                if (pattern[p] == '*')
                {
                    starP = ++p;
                    starT = t;
                    continue;
                }
                if (pattern[p] == '?')
                {
                    p++;
                    t += chLength;
                    continue;
                }
                if (pattern[p] == '[')
                {
                    if (ClassMatches(pattern, p + 1, ch, out var afterClass))
                    {
                        p = afterClass;
                        t += chLength;
                        continue;
                    }
                }
                else
                {
                    Rune.DecodeFromUtf16(pattern[p..], out var literal, out var literalLength);
                    if (literal == ch)
                    {
                        p += literalLength;
                        t += chLength;
                        continue;
                    }
                }
            }
            if (starP < 0)
            {
                return false;
            }
            // The last '*' takes one more character, and matching resumes after it.
            Rune.DecodeFromUtf16(text[starT..], out _, out var skipped);
            starT += skipped;
            t = starT;
            p = starP;
        }
        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }
        return p == pattern.Length;
    }

    /// <summary>SQLite's class rule from <paramref name="start"/> (after '['); <paramref name="end"/> is the index after its ']'.</summary>
    private static bool ClassMatches(ReadOnlySpan<char> pattern, int start, Rune ch, out int end)
    {
        var i = start;
        var invert = false;
        var seen = false;
        end = pattern.Length;
        if (!Next(pattern, ref i, out var member))
        {
            return false;
        }
        if (member.Value == '^')
        {
            invert = true;
            if (!Next(pattern, ref i, out member))
            {
                return false;
            }
        }
        if (member.Value == ']')
        {
            seen = ch.Value == ']';
            if (!Next(pattern, ref i, out member))
            {
                return false;
            }
        }
        var prior = 0;
        while (member.Value != ']')
        {
            if (member.Value == '-' && i < pattern.Length && pattern[i] != ']' && prior > 0)
            {
                Next(pattern, ref i, out var upper);
                seen |= ch.Value >= prior && ch.Value <= upper.Value;
                prior = 0;
            }
            else
            {
                seen |= ch == member;
                prior = member.Value;
            }
            if (!Next(pattern, ref i, out member))
            {
                return false; // no closing ']': SQLite matches nothing
            }
        }
        end = i;
        return seen != invert;
    }

    private static bool Next(ReadOnlySpan<char> pattern, ref int i, out Rune rune)
    {
        if (i >= pattern.Length)
        {
            rune = default;
            return false;
        }
        Rune.DecodeFromUtf16(pattern[i..], out rune, out var length);
        i += length;
        return true;
    }

    /// <summary>Parses the pattern <paramref name="tenant"/>'s caller wrote (see the class summary for what it matches).</summary>
    public static KvGlob Parse(string tenant, string? pattern, string field = "pattern")
    {
        if (string.IsNullOrEmpty(pattern))
        {
            throw new ValidationException(field, "the pattern must not be empty (use * for every key)");
        }
        if (pattern.Length > MaxPatternChars)
        {
            throw new ValidationException(field, $"the pattern is {pattern.Length} characters; the limit is {MaxPatternChars}");
        }
        if (pattern.Any(char.IsControl))
        {
            throw new ValidationException(field, "the pattern must not contain control characters");
        }
        var (sql, literal) = Translate(pattern, field);
        return new KvGlob(sql, RangePrefix(tenant, literal), tenant);
    }

    /// <summary>
    /// What every stored key matching by either name starts with, given the pattern's literal prefix: the prefix itself
    /// when it holds no ':' (a stored name with the tenant starts like its shown name up to the first ':'), else the part
    /// the prefix shares with its stored form, which has the tenant after the first ':'.
    /// </summary>
    private static string RangePrefix(string tenant, string literal)
    {
        var colon = literal.IndexOf(':');
        if (colon < 0)
        {
            return literal;
        }
        var stored = string.Concat(literal.AsSpan(0, colon + 1), tenant, ":", literal.AsSpan(colon + 1));
        return literal[..literal.AsSpan().CommonPrefixLength(stored)];
    }

    private static (string Sql, string Literal) Translate(string pattern, string field)
    {
        var sql = new StringBuilder(pattern.Length + 8);
        var prefix = new StringBuilder();
        var literal = true;
        for (var i = 0; i < pattern.Length; i++)
        {
            var ch = pattern[i];
            switch (ch)
            {
                case '\\' when i + 1 < pattern.Length:
                    AppendLiteral(sql, pattern[++i]);
                    if (literal)
                    {
                        prefix.Append(pattern[i]);
                    }
                    break;
                case '*' or '?':
                    sql.Append(ch);
                    literal = false;
                    break;
                case '[':
                    i = TranslateClass(pattern, i, sql, field);
                    literal = false;
                    break;
                default:
                    AppendLiteral(sql, ch);
                    if (literal)
                    {
                        prefix.Append(ch);
                    }
                    break;
            }
        }
        return (sql.ToString(), prefix.ToString());
    }

    private static void AppendLiteral(StringBuilder sql, char ch)
    {
        if (ch is '*' or '?' or '[')
        {
            sql.Append('[').Append(ch).Append(']');
        }
        else
        {
            sql.Append(ch);
        }
    }

    /// <summary>
    /// Translates the class starting at <paramref name="start"/> ('['); returns the index of its ']'. Redis's reading: a
    /// backslash makes the next character a member; <c>x-y</c> is a range, and a reversed one (<c>z-a</c>) is the same
    /// range as Redis swaps it. SQLite's syntax for the same set: a literal ']' first, a literal '^' anywhere but first, a
    /// literal '-' last (where it cannot make a range), ranges low to high.
    /// </summary>
    private static int TranslateClass(string pattern, int start, StringBuilder sql, string field)
    {
        var i = start + 1;
        var negate = i < pattern.Length && pattern[i] == '^';
        if (negate)
        {
            i++;
        }
        var members = new StringBuilder();
        var closeBracket = false;
        var caret = false;
        var dash = false;
        for (; i < pattern.Length; i++)
        {
            var ch = pattern[i];
            var escaped = false;
            if (ch == '\\' && i + 1 < pattern.Length)
            {
                ch = pattern[++i];
                escaped = true;
            }
            else if (ch == ']')
            {
                if (members.Length == 0 && !closeBracket && !caret && !dash)
                {
                    throw new ValidationException(field, $"the pattern has an empty character class at position {start + 1}");
                }
                sql.Append(SqliteClass(negate, closeBracket, members.ToString(), caret, dash));
                return i;
            }
            // A range: an unescaped member, an unescaped '-', and a last member that is not the class's end.
            if (!escaped && i + 2 < pattern.Length && pattern[i + 1] == '-' && pattern[i + 2] != ']')
            {
                var high = pattern[i + 2];
                i += 2;
                if (high == '\\' && i + 1 < pattern.Length)
                {
                    high = pattern[++i];
                }
                var (low, top) = ch <= high ? (ch, high) : (high, ch);
                if (low == top)
                {
                    AddMember(low);
                }
                else
                {
                    members.Append(low).Append('-').Append(top);
                }
                continue;
            }
            AddMember(ch);
        }
        throw new ValidationException(field, $"the pattern has an unclosed '[' at position {start + 1}");

        void AddMember(char member)
        {
            switch (member)
            {
                case ']':
                    closeBracket = true;
                    break;
                case '^':
                    caret = true;
                    break;
                case '-':
                    dash = true;
                    break;
                default:
                    members.Append(member);
                    break;
            }
        }
    }

    /// <summary>The SQLite GLOB class of the given members, placed where SQLite reads each as itself.</summary>
    private static string SqliteClass(bool negate, bool closeBracket, string members, bool caret, bool dash)
    {
        if (!negate && !closeBracket && members.Length == 0)
        {
            // Only '^' and '-': a class cannot start with '^' (it would negate), and outside one '^' is itself.
            return caret && dash ? "[-^]" : caret ? "^" : "-";
        }
        return "[" + (negate ? "^" : "") + (closeBracket ? "]" : "") + members + (caret ? "^" : "") + (dash ? "-" : "") + "]";
    }
}
