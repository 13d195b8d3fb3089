using Engram.Core.Security;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Server.Http;

/// <summary>Queues an audit entry for what the request's caller did (bulk deletes, admin actions), off the request's path.</summary>
internal static class AuditRecorder
{
    public static void Audit(this HttpContext http, string action, string? target, string? detail = null)
    {
        var caller = http.GetCaller();
        var clock = http.RequestServices.GetRequiredService<TimeProvider>();
        http.RequestServices.GetRequiredService<AuditTrail>().Enqueue(new AuditEntry(clock.GetUtcNow(), caller.Tenant, caller.Actor, action,
            target is { Length: > 300 } ? target[..300] + "…" : target, AuditActions.Ok, http.Connection.RemoteIpAddress?.ToString(), detail));
    }
}
