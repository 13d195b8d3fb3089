using System.CommandLine;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Transfer;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram migrate --from DIR|postgres://… --to DIR|postgres://…</c>: copies a store into another, either
/// backend either way (see <see cref="StoreMigration"/>), with a progress bar; resumable (run it again after
/// an interruption); refuses a target holding other data unless <c>--force</c>; compares the counts per
/// tenant at the end and exits 1 with the differences when they do not match.
/// </summary>
internal static class MigrateCommand
{
    public static Command Create()
    {
        var from = new Option<string>("--from") { Description = "The store to copy: a data folder or postgres://user:password@host:port/database.", HelpName = "DIR|URL", Required = true };
        var to = new Option<string>("--to") { Description = "The store to fill: a data folder (created if new) or postgres://… (an empty database, or one this migration started).", HelpName = "DIR|URL", Required = true };
        var force = new Option<bool>("--force") { Description = "Copy into a target that holds other data too (its records stay; records with the same id, key or name are skipped)." };
        var noKeys = new Option<bool>("--no-api-keys") { Description = "Do not copy the API keys (by default they are copied with their secret, so users' keys keep working)." };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object (and errors as JSON on stderr); no progress bar." };
        var command = new Command("migrate",
            "Copy a store into another (SQLite folder or PostgreSQL, either way): memories with their history, key-value entries with theirs, the graph, " +
            "and the API keys. Resumable: run it again after an interruption. Verifies the counts per tenant at the end. The audit log stays with the source.")
        {
            from, to, force, noKeys, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                Client.ConfiguredOptions.RefuseIfReadOnly("migrate into a store");
                var source = StoreOption.Existing(parse.GetValue(from)!, "--from must name a data folder holding a store, or a postgres:// URL");
                var target = parse.GetValue(to)!;
                if (target.Trim().Length == 0)
                {
                    throw new ValidationException("--to", "--to must name a data folder or a postgres:// URL");
                }
                target = StoreFactory.IsPostgres(target) ? target : Path.GetFullPath(target);
                if (string.Equals(source, target, StringComparison.Ordinal))
                {
                    throw new ValidationException("--to", "--from and --to name the same store");
                }
                await using var sourceStore = StoreFactory.Open(source);
                await using var targetStore = StoreFactory.Open(target);
                var bar = ProgressBar.ForStderr(asJson);
                var report = await StoreMigration.RunAsync(sourceStore, targetStore, new MigrationOptions(parse.GetValue(force), !parse.GetValue(noKeys))
                {
                    Validation = Client.ConfiguredOptions.ImportValidation(),
                },
                    bar?.Reporter, ct);
                bar?.Done();
                Print(report, StoreFactory.Describe(source), StoreFactory.Describe(target), asJson);
                return report.Ok ? ExitCodes.Ok : ExitCodes.UserError;
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, asJson, command);
            }
        });
        return command;
    }

    private static void Print(MigrationReport report, string source, string target, bool asJson)
    {
        if (asJson)
        {
            var view = new MigrateResponse(source, target, report.Ok, report.Resumed, report.Merged, report.Copied, report.Skipped, report.Failed,
                report.Kinds.ToDictionary(k => k.Key, k => new KindView(k.Value.Imported, k.Value.Skipped, k.Value.Failed)),
                report.ApiKeysCopied, report.ApiKeysSkipped, report.ApiKeysNote, report.SourceCounts.Tenants, report.TargetCounts.Tenants,
                [.. report.Differences.Select(d => new DifferenceView(d.Tenant, d.Kind, d.Source, d.Target))], report.Errors,
                Math.Round(report.Elapsed.TotalMilliseconds, 1));
            JsonOutput.Write(Console.Out, view);
            if (!report.Ok)
            {
                Console.Error.WriteLine(JsonOutput.Serialize(new CliProblem("Migration incomplete", 422, Problem(report), ExitCodes.UserError)));
            }
            return;
        }
        var seconds = report.Elapsed.TotalSeconds;
        Console.WriteLine($"{(report.Resumed ? "Resumed the migration" : "Migrated")} {source} -> {target}: copied {report.Copied:N0} records, " +
            $"skipped {report.Skipped:N0} already there, {report.Failed:N0} refused, in {seconds:0.0} s ({report.Processed / Math.Max(seconds, 0.001):N0} records/s).");
        foreach (var (kind, counts) in report.Kinds)
        {
            Console.WriteLine($"  {kind,-14} copied {counts.Imported,10:N0}  skipped {counts.Skipped,10:N0}  refused {counts.Failed,6:N0}");
        }
        Console.WriteLine($"  API keys copied {report.ApiKeysCopied} (skipped {report.ApiKeysSkipped} already there)" + (report.ApiKeysNote is null ? "" : $"; {report.ApiKeysNote}"));
        if (report.Ok)
        {
            // The counts are kept per store-level tenant: a scoped key's partition (tenant␟agent_id=…) is one of its tenant's.
            var stored = report.SourceCounts.Tenants.Keys;
            var tenants = stored.Select(ScopeGuard.BaseTenant).Distinct(StringComparer.Ordinal).Count();
            var partitions = stored.Count(t => t.Contains(ScopeGuard.PartitionSeparator, StringComparison.Ordinal));
            Console.WriteLine($"Counts match for {tenants} {(tenants == 1 ? "tenant" : "tenants")}" +
                (partitions == 0 ? "" : $" ({partitions} scoped {(partitions == 1 ? "partition" : "partitions")} among them)") + ": " +
                string.Join(", ", TransferCounts.Kinds.Select(k => $"{report.SourceCounts.Total(k):N0} {k}")) + ".");
            return;
        }
        Console.Error.WriteLine("engram: " + Problem(report));
        foreach (var difference in report.Differences)
        {
            Console.Error.WriteLine("  - " + difference);
        }
        foreach (var error in report.Errors)
        {
            Console.Error.WriteLine("  - refused " + error);
        }
    }

    private static string Problem(MigrationReport report) =>
        $"the target does not match the source: {report.Differences.Count} count(s) differ, {report.Failed} record(s) refused" +
        (report.Differences.Count > 0 ? " (" + string.Join("; ", report.Differences) + ")" : "") + ". Run the same command again to resume.";

    internal sealed record KindView(long Copied, long Skipped, long Refused);

    internal sealed record DifferenceView(string Tenant, string Kind, long Source, long Target);

    internal sealed record MigrateResponse(string From, string To, bool Ok, bool Resumed, bool Merged, long Copied, long Skipped, long Refused,
        IReadOnlyDictionary<string, KindView> Kinds, int ApiKeysCopied, int ApiKeysSkipped, string? ApiKeysNote,
        IReadOnlyDictionary<string, SortedDictionary<string, long>> SourceCounts, IReadOnlyDictionary<string, SortedDictionary<string, long>> TargetCounts,
        IReadOnlyList<DifferenceView> Differences, IReadOnlyList<string> Errors, double TookMs);
}
