using Engram.Cli.Client;
using Engram.Core.Common;
using Engram.Core.Storage;

namespace Engram.Cli.Output;

/// <summary>Prints a failure as <c>engram: message</c> on stderr and picks its exit code, the same for both backends.</summary>
internal static class ErrorReporter
{
    public static int Report(Exception exception, TextWriter error)
    {
        var (code, message) = Classify(exception);
        error.WriteLine("engram: " + message);
        return code;
    }

    private static (int Code, string Message) Classify(Exception exception) => exception switch
    {
        EngramException user => (ExitCodes.UserError, user.Message),
        BackendUnavailableException backend => (ExitCodes.SystemError, backend.Message),
        StoreException store => (ExitCodes.SystemError, "the store failed: " + store.Message),
        IOException or UnauthorizedAccessException => (ExitCodes.SystemError, exception.Message),
        OperationCanceledException => (ExitCodes.SystemError, "cancelled"),
        // Anything else is a bug in Engram; say so rather than blaming the input.
        _ => (ExitCodes.SystemError, $"unexpected error ({exception.GetType().Name}): {exception.Message}"),
    };
}
