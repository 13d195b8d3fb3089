using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Server.Http;

/// <summary>Which browser origins may call Engram (configuration section <c>Engram:Cors</c>). None by default: CORS is off.</summary>
public sealed class CorsSettings
{
    /// <summary>Exact origins, e.g. <c>https://app.example.com</c> or <c>http://localhost:5173</c>; no wildcards.</summary>
    public string[] AllowedOrigins { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        foreach (var origin in AllowedOrigins)
        {
            if (OriginPolicy.Canonical(origin) is null)
            {
                yield return $"Engram:Cors:AllowedOrigins entry '{origin}' must be an exact origin, scheme://host[:port] with no path (wildcards are not accepted)";
            }
        }
    }
}

/// <summary>
/// CORS through ASP.NET Core's middleware, for the allowed origins only (<see cref="OriginPolicy"/>): the
/// headers and methods Engram's API uses, and the response headers a browser client needs to read.
/// </summary>
internal static class Cors
{
    private static readonly string[] Methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

    private static readonly string[] RequestHeaders =
        ["Authorization", "X-API-Key", "Content-Type", "If-Match", "X-Engram-Tenant", "X-Engram-Actor"];

    private static readonly string[] ExposedHeaders = ["ETag", "X-Engram-Seq", "Retry-After", "Location"];

    public static IServiceCollection AddEngramCors(this IServiceCollection services, OriginPolicy origins) =>
        services.AddCors(cors => cors.AddDefaultPolicy(policy => policy
            .WithOrigins([.. origins.AllowedOrigins])
            .WithMethods(Methods)
            .WithHeaders(RequestHeaders)
            .WithExposedHeaders(ExposedHeaders)
            .SetPreflightMaxAge(TimeSpan.FromMinutes(10))));

    /// <summary>
    /// The CORS middleware runs only for requests from an allowed origin: it answers their preflights (before
    /// the authentication gate) and adds the headers to their responses. Everything else passes untouched, so
    /// a foreign origin's preflight is an ordinary OPTIONS request that the gate and routing refuse.
    /// </summary>
    public static IApplicationBuilder UseEngramCors(this IApplicationBuilder app, OriginPolicy origins) =>
        app.UseWhen(context => context.Request.Headers.Origin is { Count: 1 } origin && origins.IsAllowed(origin[0]), branch => branch.UseCors());
}
