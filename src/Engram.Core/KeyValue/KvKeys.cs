using System.Buffers;
using System.Text;
using Engram.Core.Common;

namespace Engram.Core.KeyValue;

/// <summary>
/// Key validation and the tenant naming convention.
/// <para>
/// A key written with exactly three ':'-separated segments, <c>{prefix}:{type}:{id}</c>, is stored as
/// <c>{prefix}:{tenant}:{type}:{id}</c> with the caller's tenant; every other key is stored as written.
/// Stored keys of four segments whose second segment is the caller's tenant are shown back in the
/// three-segment form, so callers see keys as they wrote them (writing the four-segment form with
/// your own tenant names the same entry). The tenant comes only from the <see cref="Caller"/>, and
/// every row is also filed under the caller's tenant, so naming another tenant
/// (<c>app:other:type:id</c>) reaches an entry of your own, never theirs.
/// </para>
/// </summary>
public static class KvKeys
{
    /// <summary>Control characters and surrogates: one vectorized pass decides <see cref="IsValid"/>.</summary>
    private static readonly SearchValues<char> NotInFastKeys = SearchValues.Create(
        string.Concat(Enumerable.Range(0, 0x20).Concat(Enumerable.Range(0x7F, 0x21)).Concat(Enumerable.Range(0xD800, 0x800)).Select(c => (char)c)));

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Throws <see cref="ValidationException"/> naming <paramref name="field"/> unless the key is 1..512 UTF-8 bytes without control characters.</summary>
    public static void Validate(string? key, string field = "key")
    {
        if (string.IsNullOrEmpty(key))
        {
            throw new ValidationException(field, "the key must not be empty");
        }
        int bytes;
        try
        {
            bytes = StrictUtf8.GetByteCount(key);
        }
        catch (EncoderFallbackException)
        {
            throw new ValidationException(field, "the key is not valid Unicode (a lone surrogate)");
        }
        if (bytes > KvOptions.MaxKeyBytes)
        {
            throw new ValidationException(field, $"the key is {bytes} UTF-8 bytes; the limit is {KvOptions.MaxKeyBytes}");
        }
        // char.IsControl is U+0000-U+001F and U+007F-U+009F; searched on the span (no enumerator per key: RESP GETs run this per command).
        if (key.AsSpan().IndexOfAnyInRange('\u0000', '\u001F') >= 0 || key.AsSpan().IndexOfAnyInRange('\u007F', '\u009F') >= 0)
        {
            throw new ValidationException(field, "the key must not contain control characters");
        }
    }

    /// <summary>
    /// <see cref="Validate"/> for a write that may create the key (SET, INCR, APPEND, RENAME's target, import): also
    /// refused when the key holds an invisible character (<see cref="UnicodeText.RequireVisible"/>: a zero-width space or
    /// joiner between ASCII characters, a byte order mark, a format character at either end), since "job:1" and
    /// "job:\u200B1" would be two keys that look alike in every listing. Reads, deletes and expiries take such a key
    /// (<see cref="Validate"/>), so one written before this rule can still be read, renamed and removed. Over RESP a key
    /// is its bytes decoded as UTF-8, so the same key is refused there and over REST alike.
    /// </summary>
    public static void ValidateForWrite(string? key, string field = "key")
    {
        Validate(key, field);
        UnicodeText.RequireVisible(key, field);
    }

    /// <summary>
    /// <see cref="Validate"/>'s checks without an exception, for fast paths that fall back to the checked one. Stricter:
    /// a key holding any surrogate (a character outside the Basic Multilingual Plane) is left to <see cref="Validate"/>.
    /// </summary>
    public static bool IsValid(string? key) => IsValid(key.AsSpan());

    /// <inheritdoc cref="IsValid(string?)"/>
    public static bool IsValid(ReadOnlySpan<char> key)
    {
        if (key.IsEmpty || key.ContainsAny(NotInFastKeys))
        {
            return false;
        }
        // Without surrogates a character is at most 3 UTF-8 bytes: short keys need no count.
        return key.Length <= KvOptions.MaxKeyBytes / 3 || Encoding.UTF8.GetByteCount(key) <= KvOptions.MaxKeyBytes;
    }

    /// <summary>The stored form of a key the caller wrote (see the class summary).</summary>
    public static string ToStored(string tenant, string key)
    {
        var first = TenantGoesAfter(key);
        return first < 0 ? key : string.Concat(key.AsSpan(0, first + 1), tenant, key.AsSpan(first));
    }

    /// <summary>
    /// <see cref="ToStored(string, string)"/> without a string: the key itself, or the stored form written into
    /// <paramref name="buffer"/>; false when that is too short.
    /// </summary>
    public static bool TryToStored(string tenant, ReadOnlySpan<char> key, Span<char> buffer, out ReadOnlySpan<char> stored)
    {
        stored = key;
        var first = TenantGoesAfter(key);
        if (first < 0)
        {
            return true;
        }
        if (key.Length + tenant.Length + 1 > buffer.Length)
        {
            return false;
        }
        key[..(first + 1)].CopyTo(buffer);
        tenant.CopyTo(buffer[(first + 1)..]);
        key[first..].CopyTo(buffer[(first + 1 + tenant.Length)..]);
        stored = buffer[..(key.Length + tenant.Length + 1)];
        return true;
    }

    /// <summary>Where the tenant goes in a stored key: after the first ':' of a three-segment key; -1 for any other key.</summary>
    private static int TenantGoesAfter(ReadOnlySpan<char> key) =>
        key.Count(':') == 2 ? key.IndexOf(':') : -1; // one vectorized pass decides for most keys

    /// <summary>The key as the caller wrote it: the inverse of <see cref="ToStored"/> for this tenant.</summary>
    public static string ToDisplay(string tenant, string storedKey)
    {
        var first = storedKey.IndexOf(':');
        if (first < 0)
        {
            return storedKey;
        }
        var second = storedKey.IndexOf(':', first + 1);
        if (second < 0 || second - first - 1 != tenant.Length
            || string.CompareOrdinal(storedKey, first + 1, tenant, 0, tenant.Length) != 0)
        {
            return storedKey;
        }
        var third = storedKey.IndexOf(':', second + 1);
        if (third < 0 || storedKey.IndexOf(':', third + 1) >= 0)
        {
            return storedKey;
        }
        return string.Concat(storedKey.AsSpan(0, first), storedKey.AsSpan(second));
    }

    /// <summary>
    /// Orders stored keys as the stores do (SQLite's binary collation, PostgreSQL's "C": UTF-8 bytes, which is code point
    /// order). Ordinal UTF-16 order differs from it only where a surrogate pair meets a character from U+E000 up.
    /// </summary>
    public static int CompareStored(string a, string b)
    {
        var common = a.AsSpan().CommonPrefixLength(b);
        if (common == a.Length || common == b.Length)
        {
            return a.Length.CompareTo(b.Length);
        }
        char x = a[common], y = b[common];
        var (surrogateX, surrogateY) = (char.IsSurrogate(x), char.IsSurrogate(y));
        return surrogateX == surrogateY ? x.CompareTo(y) : surrogateX ? 1 : -1;
    }
}
