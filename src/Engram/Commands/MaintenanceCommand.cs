using System.CommandLine;
using System.Globalization;
using Engram.Cli.Output;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Core.Storage.Sqlite;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram maintenance integrity | vacuum | analyze | reindex | prune</c> on a data folder or a
/// PostgreSQL database (--store), in process (see <see cref="StoreMaintenance"/>). Each may run beside
/// servers on the same store. On SQLite, vacuum and reindex hold the write lock while they run, so the
/// server's writes wait (up to its busy timeout of 30 s, then fail): run those in a quiet window or with
/// the server stopped. On PostgreSQL only vacuum --full blocks (each table while it is rewritten).
/// </summary>
internal static class MaintenanceCommand
{
    public static Command Create()
    {
        var command = new Command("maintenance", "Store upkeep: integrity check, vacuum, analyze, reindex, prune (a data folder, or --store postgres://...).");
        command.Subcommands.Add(Simple("integrity",
            "Check the store and the index snapshot; exit 0 only when sound. SQLite: integrity_check and foreign_key_check. " +
            "PostgreSQL: the change log's continuity, the kept counts against the rows, amcheck on every index when installed.",
            (target, json, _, ct) => IntegrityAsync(target, json, ct)));
        var full = new Option<bool>("--full")
        {
            Description = "PostgreSQL: VACUUM FULL, which rewrites each table to give its space back and blocks it meanwhile (SQLite's VACUUM always does).",
        };
        command.Subcommands.Add(Simple("vacuum",
            "Reclaim free space and refresh statistics (SQLite: VACUUM, which blocks writes; PostgreSQL: VACUUM (ANALYZE), which does not). Shows the size before and after.",
            (target, json, parse, ct) => VacuumAsync(target, parse.GetValue(full), json, ct), full));
        command.Subcommands.Add(Simple("analyze", "Refresh the query planner's statistics (SQLite: ANALYZE and PRAGMA optimize; PostgreSQL: ANALYZE).",
            (target, json, _, ct) => AnalyzeAsync(target, json, ct)));
        command.Subcommands.Add(Simple("reindex",
            "Rebuild the database's indexes (SQLite: REINDEX; PostgreSQL: REINDEX TABLE CONCURRENTLY), then Engram's search indexes and their snapshot (as engram reindex).",
            (target, json, _, ct) => ReindexAsync(target, json, ct)));
        command.Subcommands.Add(Prune());
        return command;
    }

    private static Command Simple(string name, string description, Func<StoreTarget, bool, ParseResult, CancellationToken, Task<int>> run, params Option[] extra)
    {
        var data = ReindexCommand.DataOption();
        var store = StoreOption.Create();
        var json = JsonOption();
        var command = new Command(name, description) { data, store, json };
        foreach (var option in extra)
        {
            command.Options.Add(option);
        }
        command.SetAction(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                return await run(StoreTarget.Resolve(parse.GetValue(store), parse.GetValue(data)), asJson, parse, ct);
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, asJson, command);
            }
        });
        return command;
    }

    private static Option<bool> JsonOption() =>
        new("--json") { Description = "Print the result as one JSON object (and errors as JSON on stderr); no progress bar." };

    private static async Task<int> IntegrityAsync(StoreTarget target, bool json, CancellationToken ct)
    {
        var report = target.IsPostgres
            ? await StoreMaintenance.CheckIntegrityAsync(target.Location, target.SnapshotPath, ct)
            : StoreMaintenance.CheckIntegrity(target.Location);
        if (json)
        {
            JsonOutput.Write(Console.Out, new IntegrityResponse(report.Ok, report.Problems, report.SnapshotChecked, report.Checked));
        }
        else if (report.Ok)
        {
            var snapshot = report.SnapshotChecked
                ? "; the index snapshot is whole and belongs to it."
                : target.SnapshotPath is null ? "; no index snapshot named (--data DIR of the instance)." : "; there is no index snapshot (the next start builds one).";
            Console.WriteLine(target.IsPostgres
                ? "ok: " + string.Join("; ", report.Checked) + snapshot
                : "ok: the database passed integrity_check and foreign_key_check" + snapshot);
        }
        else
        {
            foreach (var problem in report.Problems)
            {
                Console.Error.WriteLine("engram: " + problem);
            }
            Console.Error.WriteLine(target.IsPostgres
                ? "engram: the store is inconsistent: see docs/RUNBOOK.md (PostgreSQL), restore a backup or export what can be read (engram export) into a new store."
                : "engram: the store is damaged: restore the newest backup (docs/RUNBOOK.md), or export what can be read (engram export) into a new store.");
        }
        return report.Ok ? ExitCodes.Ok : ExitCodes.SystemError;
    }

    private static async Task<int> VacuumAsync(StoreTarget target, bool full, bool json, CancellationToken ct)
    {
        var (before, after) = target.IsPostgres ? await StoreMaintenance.VacuumAsync(target.Location, full, ct) : StoreMaintenance.Vacuum(target.Location);
        if (json)
        {
            JsonOutput.Write(Console.Out, new VacuumResponse(before, after));
        }
        else
        {
            Console.WriteLine($"Vacuumed: {before / 1048576.0:0.0} MB -> {after / 1048576.0:0.0} MB ({(before - after) / 1048576.0:0.0} MB freed)." +
                (target.IsPostgres && !full ? " PostgreSQL reuses the space it freed; --full gives it back to the disk." : ""));
        }
        return ExitCodes.Ok;
    }

    private static async Task<int> AnalyzeAsync(StoreTarget target, bool json, CancellationToken ct)
    {
        if (target.IsPostgres)
        {
            await StoreMaintenance.AnalyzeAsync(target.Location, ct);
        }
        else
        {
            StoreMaintenance.Analyze(target.Location);
        }
        if (json)
        {
            JsonOutput.Write(Console.Out, new DoneResponse("analyzed"));
        }
        else
        {
            Console.WriteLine("Analyzed: the query planner's statistics are fresh.");
        }
        return ExitCodes.Ok;
    }

    private static async Task<int> ReindexAsync(StoreTarget target, bool json, CancellationToken ct)
    {
        if (target.IsPostgres)
        {
            await StoreMaintenance.ReindexPostgresAsync(target.Location, ct);
        }
        else
        {
            StoreMaintenance.ReindexSqlite(target.Location);
        }
        if (!json)
        {
            Console.WriteLine(target.IsPostgres ? "Rebuilt PostgreSQL's indexes (REINDEX TABLE CONCURRENTLY)." : "Rebuilt SQLite's indexes (REINDEX).");
        }
        await ReindexCommand.RebuildAsync(target, json, ct);
        return ExitCodes.Ok;
    }

    private static Command Prune()
    {
        var data = ReindexCommand.DataOption();
        var store = StoreOption.Create();
        var json = JsonOption();
        var types = OptionFactory.Repeatable("--type", "Only memories of this type (repeatable: any of them).", "TYPE");
        var olderThan = OptionFactory.Text("--older-than", "Only memories created longer ago than this: 90d, 12h, 4w.", "AGE");
        var user = OptionFactory.Text("--user-id", "Only this user's memories.", "ID");
        var agent = OptionFactory.Text("--agent-id", "Only this agent's memories.", "ID");
        var session = OptionFactory.Text("--session-id", "Only this session's memories.", "ID");
        var ns = OptionFactory.Text("--namespace", "Only memories in this namespace.", "NS");
        var tenant = OptionFactory.Text("--tenant", $"The tenant to prune (default {Caller.DefaultTenant}).", "T");
        var dryRun = new Option<bool>("--dry-run") { Description = "Show how many memories would go, and a sample; delete nothing." };
        var command = new Command("prune", "Delete memories by type and age and/or scope (through the service: history, change log and indexes stay consistent). " +
            "Ctrl-C stops between batches.")
        {
            data, store, types, olderThan, user, agent, session, ns, tenant, dryRun, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                var location = StoreOption.ResolveExisting(parse.GetValue(store), parse.GetValue(data));
                var typeList = parse.GetValue(types) is { Length: > 0 } given ? given : null;
                DateTimeOffset? before = parse.GetValue(olderThan) is { } age ? DateTimeOffset.UtcNow - ParseAge(age) : null;
                var filter = new MemoryFilter
                {
                    Types = typeList,
                    CreatedBefore = before,
                    UserId = parse.GetValue(user),
                    AgentId = parse.GetValue(agent),
                    SessionId = parse.GetValue(session),
                    Namespace = parse.GetValue(ns),
                };
                if (typeList is null && before is null && !filter.HasScope)
                {
                    throw new ValidationException("--type", "say what to prune: --type, --older-than, or a scope (--user-id, --agent-id, --session-id, --namespace)");
                }
                var caller = new Caller(parse.GetValue(tenant) is { } t ? TenantNames.Require(t, "--tenant") : Caller.DefaultTenant, "cli:maintenance-prune");
                var dry = parse.GetValue(dryRun);
                if (!dry)
                {
                    Client.ConfiguredOptions.RefuseIfReadOnly("prune memories");
                }
                await using var engine = EngramEngine.Open(location);
                var bar = dry ? null : ProgressBar.ForStderr(asJson);
                var report = await StoreMaintenance.PruneAsync(engine.Store, engine.Memories, caller, filter, dry, progress: bar?.Reporter, ct: ct);
                bar?.Done();
                if (asJson)
                {
                    JsonOutput.Write(Console.Out, new PruneResponse(report.DryRun, report.Matched, report.Deleted, report.Cancelled,
                        [.. report.Sample.Select(m => new PruneSample(m.Id, m.Type, m.CreatedAt, Text.OneLine(m.Content, 60)))]));
                }
                else
                {
                    foreach (var memory in report.Sample)
                    {
                        Console.WriteLine($"  {memory.Id}  {memory.Type,-12} {memory.CreatedAt:yyyy-MM-dd}  {Text.OneLine(memory.Content, 60)}");
                    }
                    Console.WriteLine(report.DryRun
                        ? $"Dry run: {report.Matched:N0} memories would be deleted (sample above); nothing was deleted."
                        : report.Cancelled
                            ? $"Cancelled: deleted {report.Deleted:N0} of {report.Matched:N0} matching memories; the store is consistent, run it again to go on."
                            : $"Deleted {report.Deleted:N0} memories in {report.Elapsed.TotalSeconds:0.0} s.");
                }
                return report.Cancelled ? ExitCodes.SystemError : ExitCodes.Ok;
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, asJson, command);
            }
        });
        return command;
    }

    /// <summary>
    /// The longest --older-than: a thousand years. Counted back from now it stays far from the first representable time
    /// (a larger span had been an ArgumentOutOfRangeException, and one past TimeSpan's range an OverflowException, exit 2).
    /// </summary>
    internal const long MaxAgeDays = 365_000;

    /// <summary>90d, 12h, 4w, 30m: a positive whole number and a unit, at most <see cref="MaxAgeDays"/> days.</summary>
    internal static TimeSpan ParseAge(string text)
    {
        var trimmed = text.Trim();
        // Minutes per unit; the bound is checked before any TimeSpan is built, so no amount overflows.
        long? minutesPerUnit = trimmed.Length < 2 ? null : char.ToLowerInvariant(trimmed[^1]) switch
        {
            'm' => 1,
            'h' => 60,
            'd' => 24 * 60,
            'w' => 7 * 24 * 60,
            _ => null,
        };
        var digits = trimmed.Length < 2 ? "" : trimmed[..^1];
        if (minutesPerUnit is { } per && digits.All(char.IsAsciiDigit))
        {
            // More digits than a long holds is too large as well, not "not a number".
            if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > MaxAgeDays * 24 * 60 / per)
            {
                throw new ValidationException("--older-than", $"--older-than is too large (at most {MaxAgeDays} days; got '{text}')");
            }
            if (n > 0)
            {
                return TimeSpan.FromMinutes(n * per);
            }
        }
        throw new ValidationException("--older-than", $"--older-than takes a number and a unit (m, h, d, w), e.g. 90d (got '{text}')");
    }

    internal sealed record IntegrityResponse(bool Ok, IReadOnlyList<string> Problems, bool SnapshotChecked, IReadOnlyList<string> Checked);

    internal sealed record VacuumResponse(long BytesBefore, long BytesAfter);

    internal sealed record DoneResponse(string Done);

    internal sealed record PruneResponse(bool DryRun, long Matched, long Deleted, bool Cancelled, List<PruneSample> Sample);

    internal sealed record PruneSample(string Id, string Type, DateTimeOffset CreatedAt, string Preview);
}
