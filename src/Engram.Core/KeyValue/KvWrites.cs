using System.Globalization;
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
        if (live is not null && !long.TryParse(live.ValueJson, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value)
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
    /// A JSON string whose text is an integer as Redis writes one (<c>"42"</c>, <c>"-7"</c>; not <c>"+1"</c>, <c>"007"</c>,
    /// <c>"-0"</c>, <c>" 1"</c>) that fits 64 bits.
    /// </summary>
    private static bool TryTextInteger(string json, out long value)
    {
        value = 0;
        if (json.Length < 3 || json.Length > 22 || json[0] != '"' || json[^1] != '"')
        {
            return false;
        }
        var text = json.AsSpan(1, json.Length - 2);
        var digits = text[0] == '-' ? text[1..] : text;
        if (digits.IsEmpty || digits.ContainsAnyExceptInRange('0', '9') || (digits[0] == '0' && (digits.Length > 1 || text[0] == '-')))
        {
            return false;
        }
        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
    }
}
