namespace Engram.Cli.Output;

/// <summary>
/// The CLI's exit codes, stable for scripts. One rule for "not found": a command that names something
/// (a memory id, a key, an entity) exits 1 when it does not exist; a query or listing that matches
/// nothing (list, search, graph search, kv list) is a success with an empty result and exits 0.
/// </summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The user can fix it: bad flags or input, a named thing that does not exist, conflict, stale version, a busy port.</summary>
    public const int UserError = 1;

    /// <summary>Engram or the machine failed: server unreachable, store failure, I/O.</summary>
    public const int SystemError = 2;
}
