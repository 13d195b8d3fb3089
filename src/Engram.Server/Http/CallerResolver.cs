using Engram.Core.Common;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Http;

/// <summary>
/// The one place an HTTP request becomes a <see cref="Caller"/>. Until API keys exist every request
/// acts in tenant <c>default</c>; the actor recorded in history is "http" or the X-Engram-Actor header.
/// </summary>
internal static class CallerResolver
{
    public static Caller GetCaller(this HttpContext context)
    {
        var actor = context.Request.Headers["X-Engram-Actor"].ToString();
        return Caller.Default(actor.Length is > 0 and <= 128 && !actor.Any(char.IsControl) ? "http:" + actor : "http");
    }
}
