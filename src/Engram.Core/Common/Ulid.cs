using System.Security.Cryptography;

namespace Engram.Core.Common;

/// <summary>
/// ULID text ids: 48 bits of milliseconds then 80 random bits in Crockford base32 (26 chars).
/// Ids sort by creation time; within one millisecond the random part is incremented so ids made
/// by one process stay strictly increasing.
/// </summary>
public static class Ulid
{
    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    private static readonly object Gate = new();
    private static long _lastMs = -1;
    private static UInt128 _lastRandom;

    public static string NewUlid(DateTimeOffset now)
    {
        var ms = now.ToUnixTimeMilliseconds();
        UInt128 random;
        lock (Gate)
        {
            if (ms <= _lastMs)
            {
                ms = _lastMs;
                random = _lastRandom + 1;
            }
            else
            {
                Span<byte> bytes = stackalloc byte[16];
                RandomNumberGenerator.Fill(bytes[..10]);
                random = new UInt128(BitConverter.ToUInt16(bytes[8..10]), BitConverter.ToUInt64(bytes[..8]));
                random &= (UInt128.One << 79) - 1; // leave headroom so increments never overflow 80 bits
            }
            _lastMs = ms;
            _lastRandom = random;
        }

        Span<char> chars = stackalloc char[26];
        var time = (ulong)ms;
        for (var i = 9; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(time & 31)];
            time >>= 5;
        }
        for (var i = 25; i >= 10; i--)
        {
            chars[i] = Alphabet[(int)(random & 31)];
            random >>= 5;
        }
        return new string(chars);
    }

    /// <summary>True when <paramref name="text"/> has the shape of a ULID (26 Crockford base32 chars).</summary>
    public static bool IsValid(ReadOnlySpan<char> text)
    {
        if (text.Length != 26 || text[0] > '7')
        {
            return false;
        }
        foreach (var c in text)
        {
            if (!Alphabet.Contains(c))
            {
                return false;
            }
        }
        return true;
    }
    /// <summary>
    /// The ULID's 128 bits written as a UUID (8-4-4-4-12 lowercase hex), as mem0's clients show memory ids;
    /// text that is not a ULID comes back unchanged.
    /// </summary>
    public static string ToUuid(string ulid)
    {
        if (!IsValid(ulid))
        {
            return ulid;
        }
        UInt128 value = 0;
        foreach (var c in ulid)
        {
            value = (value << 5) | (uint)Alphabet.IndexOf(c);
        }
        var hex = value.ToString("x32", System.Globalization.CultureInfo.InvariantCulture);
        return $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..]}";
    }

    /// <summary>
    /// An id in either form: a UUID (with or without dashes, any case) becomes the ULID with the same 128 bits;
    /// anything else (a ULID, a malformed id) comes back unchanged, so the caller's own checks still apply.
    /// </summary>
    public static string FromAny(string id)
    {
        if (id is null || (id.Length != 36 && id.Length != 32))
        {
            return id!;
        }
        var hex = id.Length == 36
            ? (id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-' ? id.Replace("-", "", StringComparison.Ordinal) : null)
            : id;
        if (hex is null || hex.Length != 32 || !UInt128.TryParse(hex, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var value))
        {
            return id;
        }
        Span<char> chars = stackalloc char[26];
        for (var i = 25; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(value & 31)];
            value >>= 5;
        }
        return new string(chars);
    }
}
