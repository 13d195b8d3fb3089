using System.CommandLine;
using Engram.Cli.Import;
using Engram.Cli.Output;
using Engram.Core.Security;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram import --format FORMAT FILE</c>: brings another memory system's data into Engram through the same
/// services as every other write (in process, or the REST API with --server). One format so far, mcp-memory:
/// the memory.jsonl of the MCP reference memory server. Re-importing a file changes nothing.
/// </summary>
internal static class ImportCommand
{
    /// <summary>The formats <c>--format</c> accepts.</summary>
    public const string McpMemory = "mcp-memory";

    private static readonly string[] Formats = [McpMemory];

    public static Command Create()
    {
        var format = new Option<string>("--format")
        {
            Description = "What FILE is: mcp-memory (the MCP reference memory server's memory.jsonl).",
            HelpName = string.Join('|', Formats),
            Required = true,
        };
        format.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<string>();
            if (!Formats.Contains(value, StringComparer.Ordinal))
            {
                result.AddError($"unknown --format '{value}'; the formats are: {string.Join(", ", Formats)}");
            }
        });
        var file = new Argument<string>("FILE") { Description = "The file to import." };
        var tenant = OptionFactory.Text("--tenant", "Import into this tenant (default: the default tenant in process, the key's own with --server; " +
            "another tenant over --server needs an admin key).", "T");
        return MemoryCommand.Create("import", "Import a knowledge graph from another memory server's file (idempotent: a second run adds nothing).", async context =>
        {
            context.Tenant = context.Get(tenant) is { } named ? TenantNames.Require(named, "--tenant") : null;
            var path = context.Get(file)!;
            var source = McpMemoryFile.Read(path);
            var report = await new GraphImporter(context.Client).ImportAsync(context.Get(format)!, path, source, context.CancellationToken);
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
            command.Options.Add(format);
            command.Arguments.Add(file);
            command.Options.Add(tenant);
        });
    }
}
