using Engram.Core.Common;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Http;

/// <summary>
/// The authenticated caller of a request, set once by the authentication gate before any endpoint runs.
/// Endpoints and services take the tenant, role and scope only from here.
/// </summary>
public interface ICallerFeature
{
    Caller Caller { get; }
}

internal sealed record CallerFeature(Caller Caller) : ICallerFeature;

/// <summary>
/// The one place an endpoint gets its <see cref="Caller"/>. With no gate (open mode, nothing set) a request
/// acts in tenant <c>default</c> as admin; the actor recorded in history is "http" or the X-Engram-Actor header.
/// </summary>
internal static class CallerResolver
{
    public static Caller GetCaller(this HttpContext context)
    {
        if (context.Features.Get<ICallerFeature>() is { } feature)
        {
            return feature.Caller;
        }
        var actor = context.Request.Headers["X-Engram-Actor"].ToString();
        return Caller.Default(actor.Length is > 0 and <= 128 && !actor.Any(char.IsControl) ? "http:" + actor : "http");
    }
}
