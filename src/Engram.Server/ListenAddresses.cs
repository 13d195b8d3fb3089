using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;

namespace Engram.Server;

/// <summary>
/// Whether the server would listen only on loopback: with no API keys Engram is open, which is safe only
/// when nothing but this machine can reach it. Reads the addresses before Kestrel binds them (the
/// <c>--urls</c> value and Kestrel:Endpoints), so a refused start never listens at all.
/// </summary>
internal static class ListenAddresses
{
    /// <summary>The first address that is not loopback (<c>0.0.0.0</c>, <c>*</c>, <c>+</c>, a LAN IP, a host name), or null when all are.</summary>
    public static string? FirstNonLoopback(string urls, IConfiguration configuration)
    {
        var configured = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Concat(configuration.GetSection("Kestrel:Endpoints").GetChildren().Select(e => e["Url"]).OfType<string>());
        return configured.FirstOrDefault(url => !IsLoopback(url));
    }

    /// <summary>
    /// Each listen address that Kestrel would refuse only once the store is open and the indexes loaded (or refuse with a
    /// message naming another address): one line each, for <c>engram serve</c> to print before it starts anything.
    /// </summary>
    public static IEnumerable<string> CheckSyntax(string urls)
    {
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!seen.Add(url.TrimEnd('/')))
            {
                // Kestrel would fail on the second bind with "address already in use", blaming another program.
                yield return $"'{url}' is given twice (--urls, ASPNETCORE_URLS)";
                continue;
            }
            BindingAddress address;
            try
            {
                address = BindingAddress.Parse(url);
            }
            catch (FormatException)
            {
                address = null!;
            }
            if (address is null || !(address.Scheme.Equals("http", StringComparison.OrdinalIgnoreCase) || address.Scheme.Equals("https", StringComparison.OrdinalIgnoreCase)))
            {
                yield return $"'{url}' is not a listen address (--urls, ASPNETCORE_URLS): use http://HOST:PORT, e.g. {EngramServerOptions.DefaultUrls}";
            }
            else if (!address.IsUnixPipe && !address.IsNamedPipe && address.Port is < 0 or > 65535)
            {
                yield return $"'{url}' has port {address.Port}; a port is 1-65535 (0 picks a free one)";
            }
            else if (!address.IsUnixPipe && !address.IsNamedPipe && IsBadIPv4(address.Host))
            {
                // Kestrel takes a host it cannot parse as a name and listens on every interface for it.
                yield return $"'{url}': {address.Host} is not an IP address (four numbers of 0-255)";
            }
        }
    }

    /// <summary>Digits and dots, as an IPv4 address is written, but not four numbers of 0-255 (<c>256.1.1.1</c>, <c>10.0.0</c>).</summary>
    private static bool IsBadIPv4(string host)
    {
        if (host.Length == 0 || !host.Contains('.') || host.AsSpan().IndexOfAnyExcept("0123456789.") >= 0)
        {
            return false;
        }
        var parts = host.Split('.');
        return parts.Length != 4 || Array.Exists(parts, p => p.Length is 0 or > 3 || int.Parse(p, System.Globalization.CultureInfo.InvariantCulture) > 255);
    }

    public static bool IsLoopback(string url)
    {
        BindingAddress address;
        try
        {
            address = BindingAddress.Parse(url);
        }
        catch (FormatException)
        {
            return true; // not an address at all: Kestrel refuses it with its own message
        }
        if (address.IsUnixPipe || address.IsNamedPipe)
        {
            return true;
        }
        return IsLoopbackHost(address.Host);
    }

    /// <summary>
    /// <c>localhost</c> or a loopback IP (IPv6 with or without brackets). Not <c>*.localhost</c>: Kestrel binds
    /// every interface for any name but <c>localhost</c>, so only these two forms listen on loopback alone.
    /// </summary>
    public static bool IsLoopbackHost(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.AsSpan().Trim("[]"), out var ip) && IPAddress.IsLoopback(ip));
}

/// <summary>The server was asked to listen beyond loopback while no API key exists; the message says how to create one.</summary>
public sealed class OpenModeRefusedException(string message) : Exception(message);
