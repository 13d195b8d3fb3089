namespace Engram.Core.Security;

/// <summary>
/// What a caller may do, ordered: each role includes the ones below it. Read: get, list, search,
/// history, stats. Write: also create, update, delete, and bulk deletes (they never leave the caller's
/// tenant and scope, and a memory bulk delete needs a scope filter). Admin: also keys, audit, other
/// tenants (named explicitly), store-wide figures in stats, and the operations endpoints.
/// </summary>
public enum Role
{
    Read = 1,
    Write = 2,
    Admin = 3,
}

public static class Roles
{
    /// <summary>The lower-case name used on the wire, in the CLI and in the key table.</summary>
    public static string Name(this Role role) => role switch
    {
        Role.Read => "read",
        Role.Write => "write",
        Role.Admin => "admin",
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    public static bool TryParse(string? text, out Role role)
    {
        role = text?.Trim().ToLowerInvariant() switch
        {
            "read" => Role.Read,
            "write" => Role.Write,
            "admin" => Role.Admin,
            _ => 0,
        };
        return role != 0;
    }
}
