using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Server.Http;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram kv set|get|del|list|incr|expire|cleanup</c>: key-value state with TTLs (/v1/kv), in
/// process (--data) or against --server. Text output is made for scripts: <c>get</c> prints only the
/// value's JSON, <c>incr</c> only the new number, <c>list</c> one key per line.
/// </summary>
internal static class KvCommand
{
    public static Command Create()
    {
        var kv = new Command("kv", "Key-value state with TTLs: set, get, del, list, incr, expire, cleanup, history.");
        kv.Subcommands.Add(Set());
        kv.Subcommands.Add(Get());
        kv.Subcommands.Add(Delete());
        kv.Subcommands.Add(List());
        kv.Subcommands.Add(Increment());
        kv.Subcommands.Add(Expire());
        kv.Subcommands.Add(Cleanup());
        kv.Subcommands.Add(History());
        return kv;
    }

    private static Argument<string> KeyArgument() => new("key") { Description = "The key (up to 512 UTF-8 bytes; app:type:id gets your tenant inserted)." };

    private static Command Set()
    {
        var key = KeyArgument();
        var value = new Argument<string>("value") { Description = "The value: parsed as JSON when it is valid JSON (42, true, {\"a\":1}), else stored as a string." };
        var ttl = OptionFactory.WholeNumber("--ttl", "Expire after this many seconds (0: never; default MEMORY_DEFAULT_TTL_SECONDS, 86400).", "SECONDS");
        var nx = new Option<bool>("--nx") { Description = "Only set when the key does not exist (else exit 1)." };
        var xx = new Option<bool>("--xx") { Description = "Only set when the key exists (else exit 1)." };
        var asString = new Option<bool>("--string") { Description = "Store VALUE as a JSON string even when it parses as JSON." };
        return MemoryCommand.Create("set", "Set a key to a value.", async context =>
        {
            if (context.Get(nx) && context.Get(xx))
            {
                // Before the backend, whose words name its fields ("nx and xx"), not the flags.
                throw new ValidationException("--nx", "--nx and --xx exclude each other");
            }
            var name = ValidKey(context.Get(key));
            var json = ParseValue(context.Get(value)!, context.Get(asString));
            var written = await context.Client.KvSetAsync(name, json, context.Get(ttl), context.Get(nx), context.Get(xx), context.CancellationToken);
            Print(context, written, $"{(written.Created ? "Created" : "Replaced")} {name}{Expiry(written.TtlSeconds)}.");
        }, createsData: true, configure: command =>
        {
            command.Arguments.Add(key);
            command.Arguments.Add(value);
            command.Options.Add(ttl);
            command.Options.Add(nx);
            command.Options.Add(xx);
            command.Options.Add(asString);
        });
    }

    private static Command Get()
    {
        var key = KeyArgument();
        return MemoryCommand.Create("get", "Print a key's value (its JSON).", async context =>
        {
            var item = await context.Client.KvGetAsync(ValidKey(context.Get(key)), context.CancellationToken);
            Print(context, item, item.Value.GetRawText());
        }, configure: command => command.Arguments.Add(key));
    }

    private static Command Delete()
    {
        var key = KeyArgument();
        return MemoryCommand.Create("del", "Delete a key.", async context =>
        {
            var name = ValidKey(context.Get(key));
            await context.Client.KvDeleteAsync(name, context.CancellationToken);
            Print(context, new { key = name, deleted = true }, $"Deleted {name}.");
        }, configure: command => command.Arguments.Add(key));
    }

    private static Command List()
    {
        var pattern = new Option<string?>("--pattern") { Description = "Glob like Redis: *, ?, [abc], \\x for a literal x (default *).", HelpName = "GLOB" };
        var limit = OptionFactory.Count("--limit", "At most this many keys (default 100, max 1000).");
        var cursor = new Option<string?>("--cursor") { Description = "Continue after a previous page (its next_cursor).", HelpName = "CURSOR" };
        return MemoryCommand.Create("list", "List keys matching a pattern, in key order, one page at a time.", async context =>
        {
            var take = context.Get(limit);
            var page = await context.Client.KvListAsync(context.Get(pattern), take, context.Get(cursor), context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, page);
                return;
            }
            foreach (var item in page.Items)
            {
                context.Output.WriteLine(item.TtlSeconds == 0 ? item.Key : $"{item.Key}\t(ttl {item.TtlSeconds} s)");
            }
            if (page.NextCursor is not null)
            {
                context.Output.WriteLine($"-- more: --cursor {page.NextCursor}");
            }
        }, configure: command =>
        {
            command.Options.Add(pattern);
            command.Options.Add(limit);
            command.Options.Add(cursor);
        });
    }

    private static Command History()
    {
        var key = KeyArgument();
        var limit = OptionFactory.Count("--limit", "The newest this many changes (default 100, max 1000).");
        var cursor = new Option<string?>("--cursor") { Description = "Continue with the changes before a previous page (its next_cursor).", HelpName = "CURSOR" };
        return MemoryCommand.Create("history", "A key's changes, oldest first: who set, incremented, expired or deleted it, and the value after.", async context =>
        {
            var take = context.Get(limit);
            var page = await context.Client.KvHistoryAsync(ValidKey(context.Get(key)), take, context.Get(cursor), context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, page);
                return;
            }
            foreach (var entry in page.Items)
            {
                var value = entry.Value is { } v ? "\t" + v.GetRawText() : "";
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{entry.At:yyyy-MM-ddTHH:mm:ssZ}\tv{entry.Version}\t{entry.Event}\t{entry.Actor}{value}"));
            }
            if (page.NextCursor is not null)
            {
                context.Output.WriteLine($"-- older: --cursor {page.NextCursor}");
            }
        }, configure: command =>
        {
            command.Arguments.Add(key);
            command.Options.Add(limit);
            command.Options.Add(cursor);
        });
    }

    private static Command Increment()
    {
        var key = KeyArgument();
        var by = OptionFactory.WholeNumber("--by", "Add this (may be negative; default 1).");
        return MemoryCommand.Create("incr", "Add to an integer value atomically (a missing key starts at 0); print the result.", async context =>
        {
            var name = ValidKey(context.Get(key));
            var value = await context.Client.KvIncrementAsync(name, context.Get(by) ?? 1, context.CancellationToken);
            Print(context, new KvIncrResponse(name, value), value.ToString(CultureInfo.InvariantCulture));
        }, createsData: true, configure: command =>
        {
            command.Arguments.Add(key);
            command.Options.Add(by);
        });
    }

    private static Command Expire()
    {
        var key = KeyArgument();
        var seconds = OptionFactory.WholeNumberArgument("seconds", "The new TTL in seconds; 0 removes the expiry.");
        return MemoryCommand.Create("expire", "Give a key a new TTL.", async context =>
        {
            var name = ValidKey(context.Get(key));
            var item = await context.Client.KvExpireAsync(name, context.Get(seconds), context.CancellationToken);
            Print(context, item, item.TtlSeconds == 0 ? $"{name} no longer expires." : $"{name}{Expiry(item.TtlSeconds)}.");
        }, configure: command =>
        {
            command.Arguments.Add(key);
            command.Arguments.Add(seconds);
        });
    }

    private static Command Cleanup()
    {
        var pattern = new Argument<string>("pattern") { Description = "Delete every key matching this glob (* matches all your keys)." };
        return MemoryCommand.Create("cleanup", "Delete every key matching a pattern; print how many.", async context =>
        {
            var deleted = await context.Client.KvCleanupAsync(context.Get(pattern)!, context.CancellationToken);
            Print(context, new KvCleanupResult(deleted, Done: true, NextCursor: null), $"Deleted {deleted} key{(deleted == 1 ? "" : "s")}.");
        }, configure: command => command.Arguments.Add(pattern));
    }

    private static string ValidKey(string? key)
    {
        // Checked before connecting: an empty key would otherwise address the listing over HTTP.
        KvKeys.Validate(key);
        return key!;
    }

    private static JsonElement ParseValue(string text, bool asString)
    {
        if (!asString)
        {
            try
            {
                using var document = JsonDocument.Parse(text);
                return document.RootElement.Clone();
            }
            catch (JsonException)
            {
                // Not JSON: a bare word is stored as the string it is.
            }
        }
        return JsonSerializer.SerializeToElement(text, EngramJson.Options);
    }

    private static string Expiry(long ttlSeconds) => ttlSeconds == 0 ? " (no expiry)" : $" (expires in {ttlSeconds} s)";

    private static void Print<T>(CommandContext context, T body, string text)
    {
        if (context.Json)
        {
            JsonOutput.Write(context.Output, body);
        }
        else
        {
            context.Output.WriteLine(text);
        }
    }
}
