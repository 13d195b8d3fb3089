namespace Engram.Cli.Output;

/// <summary>The CLI's exit codes, stable for scripts.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The user can fix it: bad flags or input, unknown id, conflict, stale version.</summary>
    public const int UserError = 1;

    /// <summary>Engram or the machine failed: server unreachable, store failure, I/O.</summary>
    public const int SystemError = 2;
}
