using System.Globalization;

namespace Engram.Core.Net;

/// <summary>
/// The hosts an outbound request may go to: each configured endpoint's host and port exactly, plus the
/// operator's <see cref="OutboundOptions.AllowedHosts"/>. Checked by <see cref="OutboundHttp"/> on every
/// request, so no code path can reach a host that configuration did not name.
/// </summary>
public sealed class OutboundPolicy
{
    /// <summary>host → allowed ports; null means any port.</summary>
    private readonly Dictionary<string, HashSet<int>?> _hosts = new(StringComparer.OrdinalIgnoreCase);

    private OutboundPolicy()
    {
    }

    /// <summary>The configured endpoints (each exactly, host and port) and the extra allowed hosts.</summary>
    public static OutboundPolicy For(IEnumerable<Uri> endpoints, IEnumerable<string>? allowedHosts = null)
    {
        var policy = new OutboundPolicy();
        foreach (var endpoint in endpoints)
        {
            policy.Add(endpoint.IdnHost, endpoint.Port);
        }
        foreach (var entry in allowedHosts ?? [])
        {
            if (!TryParseHost(entry, out var host, out var port))
            {
                throw new ArgumentException($"'{entry}' is not a host or host:port", nameof(allowedHosts));
            }
            policy.Add(host, port);
        }
        return policy;
    }

    public bool IsAllowed(Uri uri) =>
        uri.IsAbsoluteUri && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
        && _hosts.TryGetValue(uri.IdnHost, out var ports) && (ports is null || ports.Contains(uri.Port));

    /// <summary>Parses <c>host</c> or <c>host:port</c> (no scheme, path, query or credentials).</summary>
    public static bool TryParseHost(string? entry, out string host, out int? port)
    {
        host = "";
        port = null;
        if (string.IsNullOrWhiteSpace(entry) || entry.Contains("://", StringComparison.Ordinal)
            || !Uri.TryCreate("http://" + entry.Trim(), UriKind.Absolute, out var uri)
            || uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0
            || entry.TrimEnd().EndsWith('/'))
        {
            return false;
        }
        host = uri.IdnHost;
        // Uri reports 80 when no port was written; only a written port narrows the entry.
        var written = entry.Trim().EndsWith(":" + uri.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
        port = written ? uri.Port : null;
        return true;
    }

    private void Add(string host, int? port)
    {
        if (port is null)
        {
            _hosts[host] = null;
        }
        else if (!_hosts.TryGetValue(host, out var ports))
        {
            _hosts[host] = [port.Value];
        }
        else
        {
            ports?.Add(port.Value);
        }
    }
}
