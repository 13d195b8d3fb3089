using Engram.Core.Common;

namespace Engram.Cli.Client;

/// <summary>A 4xx answer the Core has no exception for (e.g. 405, 413): still a request the user can change, so exit 1.</summary>
internal sealed class RequestRefusedException(string title, string detail, int status = 400) : EngramException(title, detail)
{
    /// <summary>The HTTP status the server answered with.</summary>
    public int Status { get; } = status;
}
