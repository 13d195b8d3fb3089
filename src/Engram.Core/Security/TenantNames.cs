using Engram.Core.Common;

namespace Engram.Core.Security;

/// <summary>Tenant names: 1-64 characters of <c>A-Z a-z 0-9 . _ -</c>, so they are safe in headers, logs and key-value keys.</summary>
public static class TenantNames
{
    public const int MaxLength = 64;

    public static bool IsValid(ReadOnlySpan<char> name)
    {
        if (name.Length is 0 or > MaxLength)
        {
            return false;
        }
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Returns <paramref name="name"/> or throws a <see cref="ValidationException"/> naming <paramref name="field"/>.</summary>
    public static string Require(string? name, string field) =>
        name is not null && IsValid(name)
            ? name
            : throw new ValidationException(field, $"{field} must be 1-{MaxLength} characters of A-Z, a-z, 0-9, '.', '_' or '-'");
}
