using System.CommandLine;
using Engram.Cli.Import;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Transfer;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram import</c>, two formats:
/// <list type="bullet">
/// <item><c>--in FILE</c> (format engram, the default with --in): an Engram export (<c>engram export</c>,
/// <c>GET /v1/admin/export</c>) into the store in --data or --store, records kept as they were (ids, versions,
/// history, times), duplicates skipped, in batches through the store's writer (see <see cref="StoreImport"/>).</item>
/// <item><c>--format mcp-memory FILE</c>: the memory.jsonl of the MCP reference memory server, through the
/// same services as every other write (in process, or the REST API with --server). Re-importing changes nothing.</item>
/// </list>
/// </summary>
internal static class ImportCommand
{
    /// <summary>The formats <c>--format</c> accepts.</summary>
    public const string McpMemory = "mcp-memory";

    public const string Engram = "engram";

    private static readonly string[] Formats = [Engram, McpMemory];

    public static Command Create()
    {
        var format = new Option<string?>("--format")
        {
            Description = "What the file is: engram (an Engram export, read with --in; the default then) or mcp-memory " +
                "(the MCP reference memory server's memory.jsonl, given as FILE).",
            HelpName = string.Join('|', Formats),
        };
        format.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<string?>();
            if (value is not null && !Formats.Contains(value, StringComparer.Ordinal))
            {
                result.AddError($"unknown --format '{value}'; the formats are: {string.Join(", ", Formats)}");
            }
        });
        var input = OptionFactory.Text("--in", "An Engram export (JSON Lines) to import into the store in --data.", "FILE");
        var continueOnError = new Option<bool>("--continue-on-error")
        {
            Description = "With --in: go on past bad lines (each is reported and counted; the exit code is still 1). Default: stop at the first.",
        };
        var keepIdentifiers = new Option<bool>("--keep-identifiers")
        {
            Description = "With --in: take scope values and key-value keys holding an invisible character, as an Engram store " +
                "written before those were refused may hold them (an export of such a store). Default: refused, as every write refuses them.",
        };
        var file = new Argument<string?>("FILE") { Description = "The mcp-memory file to import (with --format mcp-memory).", Arity = ArgumentArity.ZeroOrOne };
        var tenant = OptionFactory.Text("--tenant", "mcp-memory: import into this tenant (default: the default tenant in process, the key's own with --server; " +
            "another tenant over --server needs an admin key). An Engram export keeps each record's own tenant.", "T");
        return MemoryCommand.Create("import", "Import an Engram export (--in FILE) or another memory server's file (--format mcp-memory FILE); duplicates are skipped.",
            async context =>
            {
                var named = context.Get(format);
                var exportFile = context.Get(input);
                if (exportFile is not null || named == Engram)
                {
                    await ImportExportAsync(context, exportFile, context.Get(file), named, context.Get(tenant), context.Get(continueOnError), context.Get(keepIdentifiers));
                    return;
                }
                if (named is null)
                {
                    throw new ValidationException("--in", "give --in FILE (an Engram export) or --format mcp-memory FILE");
                }
                if (context.Get(keepIdentifiers))
                {
                    throw new ValidationException("--keep-identifiers", "--keep-identifiers is for an Engram export (--in FILE); mcp-memory files hold no scopes or keys");
                }
                var path = context.Get(file) ?? throw new ValidationException("FILE", "--format mcp-memory needs the FILE to import");
                context.Tenant = context.Get(tenant) is { } t ? TenantNames.Require(t, "--tenant") : null;
                var source = McpMemoryFile.Read(path);
                var report = await new GraphImporter(context.Client).ImportAsync(named, path, source, context.CancellationToken);
                if (context.Json)
                {
                    JsonOutput.Write(context.Output, report);
                    return;
                }
                foreach (var skipped in report.RelationsSkipped)
                {
                    Console.Error.WriteLine($"engram: skipped the relation on line {skipped.Line} ({skipped.From} -[{skipped.RelationType}]-> {skipped.To}): {skipped.Reason}");
                }
                context.Output.WriteLine($"Imported {path}: {report.EntitiesCreated} entities created ({report.EntitiesExisting} already there), " +
                    $"{report.ObservationsAdded} observations added, {report.RelationsCreated} relations created ({report.RelationsExisting} already there" +
                    (report.RelationsSkipped.Count > 0 ? $", {report.RelationsSkipped.Count} skipped" : "") + ").");
            }, createsData: true, configure: command =>
            {
                command.Options.Add(input);
                command.Options.Add(format);
                command.Arguments.Add(file);
                command.Options.Add(tenant);
                command.Options.Add(continueOnError);
                command.Options.Add(keepIdentifiers);
            });
    }

    private static async Task ImportExportAsync(CommandContext context, string? exportFile, string? positional, string? format, string? tenant, bool continueOnError,
        bool keepIdentifiers)
    {
        if (format is not null and not Engram)
        {
            throw new ValidationException("--format", $"--in reads an Engram export; for --format {format} give the file as FILE, without --in");
        }
        if (exportFile is null || positional is not null)
        {
            throw new ValidationException("--in", exportFile is null ? "--format engram reads the file given with --in FILE" : "give the export with --in FILE only, not also as FILE");
        }
        if (tenant is not null)
        {
            throw new ValidationException("--tenant", "an Engram export keeps each record's own tenant; --tenant is for --format mcp-memory (export one tenant with engram export --tenant T)");
        }
        var (data, server, storeUrl) = context.BackendFlags;
        if (server is not null)
        {
            throw new ValidationException("--server", "--in imports into a store in process: give --data DIR (on the server's machine; it is safe beside a running server) or --store postgres://...");
        }
        if (Directory.Exists(exportFile))
        {
            throw new ValidationException("--in", $"'{exportFile}' is a folder; give the export file to import");
        }
        if (!File.Exists(exportFile))
        {
            throw new NotFoundException($"no file '{exportFile}'");
        }
        Client.ConfiguredOptions.RefuseIfReadOnly("import records");
        // The API's rules under this process's limits (a file from a server with raised limits needs the same settings here).
        var validation = Client.ConfiguredOptions.ImportValidation();
        if (keepIdentifiers)
        {
            validation = validation.ForStoreCopy();
        }
        var location = StoreOption.Resolve(storeUrl, data);
        var folder = StoreFactory.IsPostgres(location) ? StoreFactory.Describe(location) : Path.GetFullPath(location);
        await using var opened = StoreFactory.Open(StoreFactory.IsPostgres(location) ? location : folder);
        var store = opened as IStoreTransfer ?? throw new ValidationException("--store", $"the {opened.Kind} store cannot import");
        await using var stream = new FileStream(exportFile, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var bar = ProgressBar.ForStderr(context.Json);
        var report = await StoreImport.ReadAsync(store, stream, continueOnError, bar?.Reporter, context.CancellationToken, validation: validation);
        bar?.Done();
        if (context.Json)
        {
            JsonOutput.Write(context.Output, new ImportResponse(
                report.Kinds.ToDictionary(k => k.Key, k => new KindResponse(k.Value.Imported, k.Value.Skipped, k.Value.Failed)),
                report.Imported, report.Skipped, report.Failed, report.StoppedAtLine, [.. report.Errors], Math.Round(report.Elapsed.TotalMilliseconds, 1)));
        }
        else
        {
            foreach (var error in report.Errors)
            {
                Console.Error.WriteLine($"engram: line {error.Line} ({error.Kind}): {error.Message}");
            }
            var kinds = string.Join("; ", report.Kinds.Select(k => $"{k.Key}: {k.Value.Imported:N0} imported, {k.Value.Skipped:N0} skipped" +
                (k.Value.Failed > 0 ? $", {k.Value.Failed:N0} failed" : "")));
            context.Output.WriteLine($"Imported {exportFile} into {folder} in {report.Elapsed.TotalSeconds:0.0} s: {kinds}.");
        }
        // An identifier refused for an invisible character is most likely in an export of a store written before the rule.
        var keepHint = !keepIdentifiers && report.Errors.Any(e => e.Message.Contains("invisible character", StringComparison.Ordinal))
            ? ". An identifier with an invisible character comes from a store written before they were refused: to keep such " +
              "identifiers as they are, run the import again with --keep-identifiers"
            : "";
        if (report.StoppedAtLine is { } line)
        {
            throw new ValidationException("--in", $"stopped at line {line}: what came before it is imported (counted above); fix the line and run the import again " +
                "(records already imported are skipped), or pass --continue-on-error" + keepHint);
        }
        if (report.EndsEarly is { } cut)
        {
            throw new ValidationException("--in", $"the file ends after {cut.Read:N0} of the {cut.Announced:N0} records its header announces (truncated?); " +
                "the records read are imported and stay (counted above)" + (report.Failed > 0 ? $", {report.Failed:N0} of them refused (listed above)" : "") +
                "; import the whole file again to add the rest (records already imported are skipped)");
        }
        if (report.Failed > 0)
        {
            throw new ValidationException("--in", $"{report.Failed} record(s) could not be imported (listed above); the others are imported" + keepHint);
        }
    }

    /// <summary>What <c>import --in --json</c> prints.</summary>
    internal sealed record ImportResponse(Dictionary<string, KindResponse> Kinds, long Imported, long Skipped, long Failed, int? StoppedAtLine,
        List<ImportError> Errors, double TookMs);

    internal sealed record KindResponse(long Imported, long Skipped, long Failed);
}
