using System.CommandLine;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Transfer;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram export --data DIR|--store URL --out FILE</c>: writes every record of the store (every tenant, or
/// one with --tenant) as Engram's JSON Lines export (see <see cref="StoreExport"/>), from a
/// consistent snapshot, with a progress bar. The file is written under a temporary name and renamed
/// when complete, so a cancelled or failed export never leaves a file that looks whole. Safe beside
/// a running server: the export only reads.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = $"Data folder (default ${BackendOptions.DataVariable}, else ./{BackendOptions.DefaultData}).", HelpName = "DIR" };
        var store = StoreOption.Create();
        var output = new Option<string>("--out") { Description = "The file to write (- for stdout). An existing file is kept unless --force.", HelpName = "FILE", Required = true };
        var tenant = new Option<string?>("--tenant") { Description = "Export only this tenant, with its scoped keys' key-value entries and graphs (default: every tenant).", HelpName = "T" };
        var force = new Option<bool>("--force") { Description = "Overwrite FILE if it exists." };
        var vectors = new Option<bool>("--vectors")
        {
            Description = "Also write the stored embedding vectors (about 2 KB per memory with a 384-dimension model), so an import embeds nothing again.",
        };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object (and errors as JSON on stderr); no progress bar." };
        var command = new Command("export", "Export memories (with history), key-value entries and the graph as JSON Lines (never API keys).")
        {
            data, store, output, tenant, force, vectors, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                var location = StoreOption.ResolveExisting(parse.GetValue(store), parse.GetValue(data));
                var only = parse.GetValue(tenant) is { } named ? TenantNames.Require(named, "--tenant") : null;
                var target = parse.GetValue(output)!;
                var toStdout = target == "-";
                if (!toStdout && Directory.Exists(target))
                {
                    throw new ValidationException("--out", $"'{target}' is a folder; give the file to write, such as {Path.Combine(target, "engram-export.jsonl")}");
                }
                if (!toStdout && !StoreFactory.IsPostgres(location))
                {
                    // --force is for an older export; never for the database (or its -wal, lock...) the export reads.
                    StoreFiles.RefuseOwnFile(location, target, "--out");
                }
                if (!toStdout && File.Exists(target) && !parse.GetValue(force))
                {
                    throw new ConflictException($"'{target}' exists; pass --force to overwrite it");
                }
                await using var opened = StoreFactory.Open(location);
                var source = opened as IStoreTransfer ?? throw new ValidationException("--store", $"the {opened.Kind} store cannot be exported");
                var bar = ProgressBar.ForStderr(asJson);
                if (toStdout)
                {
                    await using var stdout = Console.OpenStandardOutput();
                    await StoreExport.WriteAsync(source, stdout, only, TimeProvider.System, bar?.Reporter, vectors: parse.GetValue(vectors), ct: ct);
                    bar?.Done();
                    return ExitCodes.Ok;
                }
                var full = Path.GetFullPath(target);
                var temporary = full + ".partial";
                ExportSummary summary;
                try
                {
                    await using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                    {
                        summary = await StoreExport.WriteAsync(source, file, only, TimeProvider.System, bar?.Reporter, vectors: parse.GetValue(vectors), ct: ct);
                        file.Flush(flushToDisk: true);
                    }
                    File.Move(temporary, full, overwrite: true);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException && !File.Exists(temporary))
                {
                    // The file beside the target could not even be made: the message names the target, not that file.
                    throw new IOException($"cannot write '{target}': {ex.Message.Replace(temporary, full, StringComparison.Ordinal)}", ex);
                }
                catch
                {
                    File.Delete(temporary);
                    throw;
                }
                bar?.Done();
                var counts = summary.Counts;
                var seconds = summary.Elapsed.TotalSeconds;
                if (asJson)
                {
                    JsonOutput.Write(Console.Out, new ExportResponse(full, counts.Memories, counts.KeyValues, counts.Entities, counts.Relations, counts.Links,
                        counts.Conversations, counts.Jobs, counts.Vectors, summary.Bytes,
                        Math.Round(seconds * 1000, 1)));
                }
                else
                {
                    Console.WriteLine($"Exported {counts.Memories:N0} memories, {counts.KeyValues:N0} keys, {counts.Entities:N0} entities, {counts.Relations:N0} relations, " +
                        $"{counts.Links:N0} memory links, {counts.Conversations:N0} conversations and {counts.Jobs:N0} extraction jobs " +
                        (counts.Vectors is { } written ? $"with {written:N0} stored vectors " : "") +
                        $"({summary.Bytes / 1048576.0:0.0} MB) to {full} in {seconds:0.0} s ({counts.Total / Math.Max(seconds, 0.001):N0} records/s).");
                }
                return ExitCodes.Ok;
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, asJson, command);
            }
        });
        return command;
    }

    /// <summary>What <c>export --json</c> prints.</summary>
    internal sealed record ExportResponse(string File, long Memories, long Kv, long Entities, long Relations, long Links, long Conversations, long Jobs, long? Vectors, long Bytes,
        double TookMs);
}
