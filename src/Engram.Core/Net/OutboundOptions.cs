namespace Engram.Core.Net;

/// <summary>
/// Which hosts Engram may call (configuration section <c>Engram:Outbound</c>). The hosts of configured
/// endpoints (the embeddings <c>BaseUrl</c>) are always allowed; <see cref="AllowedHosts"/> adds more for
/// endpoints that name further hosts (an LLM, a webhook). Nothing else is ever called.
/// </summary>
public sealed class OutboundOptions
{
    /// <summary><c>host</c> (any port) or <c>host:port</c>; IPv6 in brackets (<c>[::1]:8080</c>).</summary>
    public string[] AllowedHosts { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        foreach (var entry in AllowedHosts)
        {
            if (!OutboundPolicy.TryParseHost(entry, out _, out _))
            {
                yield return $"Engram:Outbound:AllowedHosts entry '{entry}' must be a host name or address, optionally with :port (no scheme or path)";
            }
        }
    }
}
