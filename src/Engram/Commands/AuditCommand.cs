using System.CommandLine;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Server.Http;

namespace Engram.Cli.Commands;

/// <summary><c>engram audit</c>: the audit log of a data folder (every tenant's unless --tenant), newest first.</summary>
internal static class AuditCommand
{
    public static Command Create()
    {
        var since = OptionFactory.Text("--since", "Only entries from this time on: an ISO date or time, or a span back from now such as 24h or 7d.", "WHEN");
        var action = OptionFactory.Text("--action", "Only this action (key.create, auth.denied, ...) or family (key.*).", "ACTION");
        var tenant = new Option<string?>("--tenant") { Description = "Only this tenant's entries.", HelpName = "T" };
        var limit = OptionFactory.WholeNumber("--limit", "At most this many entries (default 100, max 10000).");
        var command = KeysCommand.Run("audit", "Show the audit log: key changes, admin actions, bulk deletes, denied requests.", create: false,
            [since, action, tenant, limit], async (parse, store, json, ct) =>
            {
                var count = parse.GetValue(limit) ?? 100;
                if (count is < 1 or > 10_000)
                {
                    throw new ValidationException("--limit", "--limit must be 1-10000");
                }
                var from = parse.GetValue(since) is { } text ? SecurityStore.ParseTime(text, "--since", past: true, DateTimeOffset.UtcNow) : (DateTimeOffset?)null;
                var named = parse.GetValue(tenant) is { } t ? TenantNames.Require(t, "--tenant") : null;
                var page = await store.Log.ReadAuditAsync(new AuditQuery(named, from, parse.GetValue(action), (int)count), ct);
                if (json)
                {
                    JsonOutput.Write(Console.Out, new AuditList([.. page.Items.Select(AuditEntryView.Of)], null));
                    return;
                }
                KeysCommand.WriteTable(["AT", "TENANT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "REMOTE", "DETAIL"],
                    [.. page.Items.Select(e => new[]
                    {
                        Text.Timestamp(e.At), e.Tenant, e.Actor, e.Action, Text.OneLine(e.Target ?? "-", 60), e.Outcome, e.Remote ?? "-", Text.OneLine(e.Detail ?? "-", 80),
                    })]);
            });
        return command;
    }
}
