namespace Engram.Cli.Client;

/// <summary>
/// The backend could not do its part: the server is unreachable, answered with a 5xx, or answered
/// something that is not Engram's API. Not the user's input at fault, so the CLI exits with 2.
/// </summary>
internal sealed class BackendUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
