using System.CommandLine;
using System.Text.Json.Serialization;
using Engram.Cli.Client;
using Engram.Core.Common;
using Engram.Core.Storage;

namespace Engram.Cli.Output;

/// <summary>
/// Prints a failure and picks its exit code, the same for both backends: <c>engram: message</c> on
/// stderr, or with <c>--json</c> a problem object shaped like the REST API's (title, status, detail,
/// field) on one line of stderr. Fields are named by the command's flags (<c>--ttl</c>), not the API's.
/// </summary>
internal static class ErrorReporter
{
    public static int Report(Exception exception, TextWriter error, bool json = false, Command? command = null)
    {
        var problem = Classify(exception, command);
        error.WriteLine(json ? JsonOutput.Serialize(problem) : "engram: " + problem.Detail);
        return problem.ExitCode;
    }

    /// <summary>A user error found before any command ran (bad flags, an unknown command).</summary>
    public static int ReportUsage(string detail, TextWriter error, bool json)
    {
        var problem = new CliProblem("Invalid request", 400, detail, ExitCodes.UserError);
        error.WriteLine(json ? JsonOutput.Serialize(problem) : "engram: " + detail);
        return problem.ExitCode;
    }

    private static CliProblem Classify(Exception exception, Command? command) => exception switch
    {
        ValidationException v => FlagNames.Rename(v, command),
        NotFoundException n => new CliProblem(n.Title, 404, n.Message, ExitCodes.UserError),
        ConflictException c => new CliProblem(c.Title, 409, c.Message, ExitCodes.UserError) { ExistingId = c.ExistingId },
        PreconditionFailedException p => new CliProblem(p.Title, 412, p.Message, ExitCodes.UserError) { CurrentVersion = p.CurrentVersion },
        Core.Operations.WritesRefusedException w => new CliProblem(w.Title, 503, w.Message, ExitCodes.SystemError),
        RequestRefusedException r => new CliProblem(r.Title, r.Status, r.Message, ExitCodes.UserError),
        Core.Llm.LlmNotConfiguredException l => new CliProblem("No language model", 503, l.Message, ExitCodes.UserError),
        Core.Llm.LlmUnavailableException or Core.Llm.LlmOutputException => new CliProblem("Language model failed", 502, exception.Message, ExitCodes.SystemError),
        EngramException user => new CliProblem(user.Title, 400, user.Message, ExitCodes.UserError),
        Core.Operations.BackupFormatException backup => new CliProblem("Not a backup", 400, backup.Message, ExitCodes.UserError),
        BackendUnavailableException backend => new CliProblem("Server unavailable", 503, backend.Message, ExitCodes.SystemError),
        StoreException store => new CliProblem("Store unavailable", 503, "the store failed: " + store.Message, ExitCodes.SystemError),
        IOException or UnauthorizedAccessException => new CliProblem("I/O error", 500, exception.Message, ExitCodes.SystemError),
        OperationCanceledException => new CliProblem("Cancelled", 499, "cancelled", ExitCodes.SystemError),
        // Anything else is a bug in Engram; say so rather than blaming the input.
        _ => new CliProblem("Internal error", 500, $"unexpected error ({exception.GetType().Name}): {exception.Message}", ExitCodes.SystemError),
    };
}

/// <summary>The <c>--json</c> form of an error: the REST API's problem fields, plus the exit code.</summary>
internal sealed record CliProblem(string Title, int Status, string Detail, int ExitCode)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Field { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ExistingId { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? CurrentVersion { get; init; }
}
