using System.CommandLine;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Server.Http;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram keys create|list|revoke|rotate</c>: API keys of a data folder, in process (also while a
/// server runs on it). A new key is printed once, as the last line of output (or as "key" with --json);
/// only its keyed hash is stored. Nothing here ever prints a key's hash or a stored secret.
/// </summary>
internal static class KeysCommand
{
    public static Command Create()
    {
        var keys = new Command("keys", "API keys: create, list, revoke, rotate.");
        keys.Subcommands.Add(CreateKey());
        keys.Subcommands.Add(List());
        keys.Subcommands.Add(Revoke());
        keys.Subcommands.Add(Rotate());
        return keys;
    }

    private static Command CreateKey()
    {
        var tenant = new Option<string?>("--tenant") { Description = "The tenant the key acts in (A-Z a-z 0-9 . _ -, up to 64).", HelpName = "T", Required = true };
        var role = new Option<string?>("--role")
        {
            Description = "What the key may do: read, write (and read), admin (everything, other tenants by X-Engram-Tenant).",
            HelpName = "admin|write|read",
            Required = true,
        };
        var scope = OptionFactory.Repeatable("--scope", "Confine the key to a scope: user_id=U or agent_id=A (repeat for both).", "FIELD=VALUE");
        var name = OptionFactory.Text("--name", "A name for the key (shown in lists and recorded as the actor).", "N");
        var expires = OptionFactory.Text("--expires", "When the key stops working: an ISO date or time, or a span such as 30d.", "DATE");
        return Run("create", "Create an API key; prints it once, as the last line.", create: true, [tenant, role, scope, name, expires], async (parse, store, json, ct) =>
        {
            if (!Roles.TryParse(parse.GetValue(role), out var parsedRole))
            {
                throw new ValidationException("--role", $"--role must be admin, write or read (got '{parse.GetValue(role)}')");
            }
            var expiresAt = parse.GetValue(expires) is { } text ? SecurityStore.ParseTime(text, "--expires", past: false, DateTimeOffset.UtcNow) : (DateTimeOffset?)null;
            var request = new NewApiKey(TenantNames.Require(parse.GetValue(tenant), "--tenant"), parsedRole, ParseScope(parse.GetValue(scope)), parse.GetValue(name), expiresAt);
            PrintCreated(await store.Keys.CreateAsync(request, SecurityStore.Actor, null, ct), json, "Created");
        });
    }

    private static Command List()
    {
        var tenant = new Option<string?>("--tenant") { Description = "Only this tenant's keys.", HelpName = "T" };
        return Run("list", "List API keys (never the keys themselves).", create: false, [tenant], async (parse, store, json, ct) =>
        {
            var filter = parse.GetValue(tenant) is { } t ? TenantNames.Require(t, "--tenant") : null;
            var keys = await store.Keys.ListAsync(filter, ct);
            if (json)
            {
                JsonOutput.Write(Console.Out, new ApiKeyList([.. keys.Select(ApiKeyView.Of)]));
                return;
            }
            if (keys.Count == 0)
            {
                Console.WriteLine("No API keys: the server is open on loopback only. Create one with engram keys create.");
                return;
            }
            var rows = keys.Select(k => new[]
            {
                k.Id, k.Prefix, k.Tenant, k.Role.Name(), k.Scope?.ToString() is { Length: > 0 } s ? s : "-", k.Name ?? "-",
                Text.Timestamp(k.CreatedAt), Text.Timestamp(k.ExpiresAt), Text.Timestamp(k.LastUsedAt), Text.Timestamp(k.RevokedAt),
            }).ToList();
            WriteTable(["ID", "PREFIX", "TENANT", "ROLE", "SCOPE", "NAME", "CREATED", "EXPIRES", "LAST USED", "REVOKED"], rows);
        });
    }

    private static Command Revoke()
    {
        var id = new Argument<string>("id") { Description = "The key's id or prefix (egm_xxxxxxxx)." };
        return Run("revoke", "Revoke an API key; it stops working at once (a running server notices within a second).", create: false, [id], async (parse, store, json, ct) =>
        {
            var key = await store.Keys.RevokeAsync(parse.GetValue(id)!, null, SecurityStore.Actor, null, ct);
            if (json)
            {
                JsonOutput.Write(Console.Out, ApiKeyView.Of(key));
            }
            else
            {
                Console.WriteLine($"Revoked key {key.Id} ({key.Prefix}) of tenant {key.Tenant}.");
            }
        });
    }

    private static Command Rotate()
    {
        var id = new Argument<string>("id") { Description = "The key's id or prefix (egm_xxxxxxxx)." };
        return Run("rotate", "Give a key a new secret (same tenant, role, scope, name); the old one stops working at once. Prints the new key last.",
            create: false, [id], async (parse, store, json, ct) =>
                PrintCreated(await store.Keys.RotateAsync(parse.GetValue(id)!, null, SecurityStore.Actor, null, ct), json, "Rotated; the new"));
    }

    private static void PrintCreated(CreatedApiKey created, bool json, string verb)
    {
        if (json)
        {
            JsonOutput.Write(Console.Out, CreatedApiKeyView.Of(created));
            return;
        }
        var key = created.Key;
        var scope = key.Scope is null ? "" : ", scope " + key.Scope;
        var expires = key.ExpiresAt is { } at ? ", expires " + Text.Timestamp(at) : "";
        Console.WriteLine($"{verb} key {key.Id} ({key.Prefix}) for tenant {key.Tenant}, role {key.Role.Name()}{scope}{expires}.");
        Console.WriteLine("Store it now: it is shown only this once.");
        Console.WriteLine(created.Secret);
    }

    private static KeyScope? ParseScope(string[]? values)
    {
        string? userId = null;
        string? agentId = null;
        foreach (var value in values ?? [])
        {
            var equals = value.IndexOf('=');
            var field = equals < 0 ? value : value[..equals];
            var text = equals < 0 ? "" : value[(equals + 1)..];
            switch (field)
            {
                case "user_id" when userId is null:
                    userId = text;
                    break;
                case "agent_id" when agentId is null:
                    agentId = text;
                    break;
                default:
                    throw new ValidationException("--scope", $"--scope must be user_id=U or agent_id=A, each at most once (got '{value}')");
            }
        }
        return userId is null && agentId is null ? null : new KeyScope(userId, agentId);
    }

    internal static void WriteTable(string[] header, List<string[]> rows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        Console.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var row in rows)
        {
            Console.WriteLine(string.Join("  ", row.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
        }
    }

    /// <summary>A subcommand with --data and --json whose failures are one line (or a JSON problem) and an exit code.</summary>
    internal static Command Run(string name, string description, bool create, Symbol[] symbols, Func<ParseResult, SecurityStore, bool, CancellationToken, Task> action)
    {
        var data = new Option<string?>("--data") { Description = $"Data folder (default ${BackendOptions.DataVariable}, else ./{BackendOptions.DefaultData}).", HelpName = "DIR" };
        var json = new Option<bool>("--json") { Description = "Print one JSON document (and errors as JSON on stderr)." };
        var command = new Command(name, description);
        foreach (var symbol in symbols)
        {
            switch (symbol)
            {
                case Option option:
                    command.Options.Add(option);
                    break;
                case Argument argument:
                    command.Arguments.Add(argument);
                    break;
            }
        }
        var storeUrl = StoreOption.Create();
        command.Options.Add(data);
        command.Options.Add(storeUrl);
        command.Options.Add(json);
        command.SetAction(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                await using var store = SecurityStore.Open(parse.GetValue(data), create, parse.GetValue(storeUrl));
                await action(parse, store, asJson, ct);
                return ExitCodes.Ok;
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, asJson, command);
            }
        });
        return command;
    }
}
