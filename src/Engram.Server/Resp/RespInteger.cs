namespace Engram.Server.Resp;

/// <summary>
/// Integers as Redis reads them from a client (its <c>string2ll</c>): an optional '-', then digits without a leading
/// zero ("0" alone is zero), within 64 bits. "+1", "01", "-0", " 1" and "" are not integers, so a command given one
/// answers Redis's error instead of running (the runtime's parsers take the sign and leading zeros).
/// </summary>
internal static class RespInteger
{
    public static bool TryParse(ReadOnlySpan<byte> text, out long value)
    {
        value = 0;
        if (text.Length == 1 && text[0] == '0')
        {
            return true;
        }
        var negative = text.Length > 0 && text[0] == '-';
        var digits = negative ? text[1..] : text;
        if (digits.IsEmpty || digits.Length > 19 || digits[0] is < (byte)'1' or > (byte)'9')
        {
            return false;
        }
        ulong magnitude = 0;
        foreach (var digit in digits)
        {
            if (digit is < (byte)'0' or > (byte)'9')
            {
                return false;
            }
            magnitude = (magnitude * 10) + (ulong)(digit - '0'); // 19 digits stay below 2^64
        }
        if (negative ? magnitude > (ulong)long.MaxValue + 1 : magnitude > long.MaxValue)
        {
            return false;
        }
        value = negative ? (long)(0 - magnitude) : (long)magnitude;
        return true;
    }
}
