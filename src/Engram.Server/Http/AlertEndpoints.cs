using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Server.Alerts;
using Engram.Server.Webhooks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary>
/// <c>/v1/admin/alerts</c> and <c>/v1/admin/webhooks</c> (issue 19): the alerts firing and recorded, the memory-event
/// webhook deliveries and their dead letters. Server-wide (every tenant's events), so unscoped admin keys only.
/// </summary>
internal static class AlertEndpoints
{
    private const int MaxLimit = 1000;

    public static IEndpointRouteBuilder MapAlertEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/admin").WithTags("alerts");
        group.MapGet("/alerts", Alerts).WithName("ListAlerts").Requires(Role.Admin)
            .WithSummary("The alerts firing now and the recorded alert events, newest first (limit, max 1000).").Produces<AlertList>().ProducesProblem(400);
        group.MapGet("/webhooks/deliveries", Deliveries).WithName("ListWebhookDeliveries").Requires(Role.Admin)
            .WithSummary("Memory-event webhook deliveries, newest first: state (pending, delivered, dead), limit (max 1000).")
            .Produces<WebhookDeliveryList>().ProducesProblem(400);
        group.MapPost("/webhooks/deliveries/{id}/retry", Retry).WithName("RetryWebhookDelivery").Requires(Role.Admin)
            .WithSummary("Sends a dead letter again (its attempts start over).").Produces<WebhookDeliveryView>().ProducesProblem(404);
        return app;
    }

    private static void Operator(HttpContext http, string action)
    {
        var caller = http.GetCaller();
        caller.Require(Role.Admin, action);
        if (caller.IsScoped)
        {
            throw new ForbiddenException($"a scoped key may not {action}: it covers the whole server");
        }
    }

    private static int Limit(HttpContext http) => QueryParser.Int(http.Request.Query, "limit") switch
    {
        null => 100,
        >= 1 and <= MaxLimit and var limit => limit,
        _ => throw new ValidationException("limit", $"limit must be a whole number from 1 to {MaxLimit}"),
    };

    private static IResult Alerts(HttpContext http, AlertService alerts)
    {
        QueryParser.RefuseAllExcept(http.Request.Query, "limit");
        Operator(http, "read the alerts");
        return TypedResults.Ok(new AlertList(alerts.Enabled, alerts.Active(), alerts.Journal.Recent(Limit(http))));
    }

    private static async Task<IResult> Deliveries(HttpContext http, MemoryEventWebhooks webhooks)
    {
        QueryParser.RefuseAllExcept(http.Request.Query, "state", "limit");
        Operator(http, "read the webhook deliveries");
        var state = QueryParser.Single(http.Request.Query, "state") ?? "";
        if (state.Length > 0 && state is not (WebhookDelivery.Pending or WebhookDelivery.Delivered or WebhookDelivery.Dead))
        {
            throw new ValidationException("state", "state must be pending, delivered or dead");
        }
        var (cursor, deliveries) = await webhooks.ReadAsync(state.Length == 0 ? null : state, Limit(http), http.RequestAborted);
        return TypedResults.Ok(new WebhookDeliveryList(webhooks.Enabled, webhooks.Delivering, cursor, deliveries));
    }

    private static async Task<IResult> Retry(string id, HttpContext http, MemoryEventWebhooks webhooks)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        Operator(http, "retry a webhook delivery");
        return await webhooks.RetryAsync(id, http.RequestAborted) is { } delivery
            ? TypedResults.Ok(delivery)
            : throw new NotFoundException($"no dead letter has the id '{id}'");
    }
}

/// <summary>Whether alerts are on, the alerts firing now and the recorded events (newest first).</summary>
internal sealed record AlertList(bool Enabled, IReadOnlyList<ActiveAlertView> Active, IReadOnlyList<AlertEvent> Events);

/// <summary>
/// Whether memory-event webhooks are on, whether this instance delivers them (on a store several instances share, one
/// does), the change-log position read through, and deliveries (newest first).
/// </summary>
internal sealed record WebhookDeliveryList(bool Enabled, bool Delivering, long Cursor, IReadOnlyList<WebhookDeliveryView> Deliveries);
