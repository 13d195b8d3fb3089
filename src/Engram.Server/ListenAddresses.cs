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
