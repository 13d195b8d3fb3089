using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Engram.Core.Common;

namespace Engram.Core.KeyValue;

/// <summary>The rules of a key-value write that every store applies the same way (SQLite, PostgreSQL, a transaction's working set).</summary>
public static class KvWrites
{
    /// <summary>Throws <see cref="ConflictException"/> when the write's nx/xx condition does not hold for a key that is (or is not) live.</summary>
    public static void CheckCondition(Caller partition, KvWrite write, bool live)
    {
        if (write.Condition == KvCondition.IfMissing && live)
        {
            throw new ConflictException($"key '{KvKeys.ToDisplay(partition.Tenant, write.StoredKey)}' exists (nx)");
        }
        if (write.Condition == KvCondition.IfExists && !live)
        {
            throw new ConflictException($"key '{KvKeys.ToDisplay(partition.Tenant, write.StoredKey)}' does not exist (xx)");
        }
    }

    /// <summary>
    /// The value after adding <paramref name="by"/> to the live entry's integer (a missing entry counts as 0).
    /// A value that is not an integer, or overflow: <see cref="ConflictException"/>.
    /// </summary>
    public static long Increment(Caller partition, string storedKey, KvEntry? live, long by, bool textIntegers = false)
    {
        long value = 0;
        // Read as Redis reads (textIntegers), the JSON number -0 is the text "-0", which Redis does not take for an integer.
        if (live is not null && (!long.TryParse(live.ValueJson, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value)
                || (textIntegers && live.ValueJson == "-0"))
            && !(textIntegers && TryTextInteger(live.ValueJson, out value)))
        {
            throw new ConflictException($"the value of '{KvKeys.ToDisplay(partition.Tenant, storedKey)}' is not an integer, so it cannot be incremented");
        }
        try
        {
            return checked(value + by);
        }
        catch (OverflowException)
        {
            throw new ConflictException($"incrementing '{KvKeys.ToDisplay(partition.Tenant, storedKey)}' by {by} would overflow a 64-bit integer");
        }
    }

    /// <summary>
    /// Redis's integers: an optional '-', no leading zeros or '+', within a 64-bit integer. Over RESP such a value is
    /// stored as a JSON number, and a JSON string holding one counts as one for INCR (<see cref="Increment"/>).
    /// </summary>
    public static bool IsCanonicalInteger(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty || value.Length > 20 || (value[0] == '0' && value.Length > 1) || (value[0] == '-' && (value.Length == 1 || value[1] == '0')))
        {
            return false;
        }
        return Utf8Parser.TryParse(value, out long _, out var consumed) && consumed == value.Length && value[0] != '+';
    }

    /// <summary>A JSON string whose text is a <see cref="IsCanonicalInteger">canonical integer</see> (<c>"42"</c>, <c>"-7"</c>).</summary>
    private static bool TryTextInteger(string json, out long value)
    {
        value = 0;
        Span<byte> text = stackalloc byte[20];
        return json.Length is >= 3 and <= 22 && json[0] == '"' && json[^1] == '"'
            && Ascii.FromUtf16(json.AsSpan(1, json.Length - 2), text, out var length) == OperationStatus.Done
            && IsCanonicalInteger(text[..length]) && Utf8Parser.TryParse(text[..length], out value, out _);
    }
}
