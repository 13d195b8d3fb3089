using System.Diagnostics;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Storage.Transfer;

namespace Engram.Core.Operations;

/// <summary>
/// Reads an Engram export (see <see cref="StoreExport"/>) into a store, in batches: each batch is
/// one group of writes on the store's writer (one transaction and one sync), acknowledged durable
/// before the next is read. Records keep their ids, versions, times and history; one already in the
/// store is skipped (a memory: same id, or same content hash and scope as a memory that was there
/// before the import; a key: live under the same name; an entity: same name; a relation: same triple; a link: same
/// memory, kind and target; a conversation or an extraction job: same id). A job that was queued or running is
/// imported as queued, without a lease and due, so the importing store extracts it once it has a model.
/// Files of every format version up to <see cref="ExportHeader.CurrentVersion"/> are read.
/// <para>
/// A bad line (not JSON, no known kind, a field missing or wrong, a relation to a missing entity, a job of a
/// missing conversation) is
/// reported with its line number. By default the import stops there: the batches before it are
/// committed and counted, later lines are not read. With <c>continueOnError</c> it goes on and
/// counts the failures. Either way the report says exactly what was imported, skipped and refused.
/// </para>
/// </summary>
public static class StoreImport
{
    public const int BatchSize = 256;

    /// <summary>Errors kept in the report (the counts hold them all).</summary>
    public const int MaxErrors = 100;

    /// <param name="backupLines">
    /// Takes the lines of a logical backup being restored that are not records (<see cref="ApiKeyTransfer.Kind"/>,
    /// <see cref="StoreMetaTransfer.Kind"/>), with their kind; null (an import) refuses them, so an export file can never
    /// bring keys or settings into a store.
    /// </param>
    /// <param name="validation">The write paths' rules and limits each record is held to (null: <see cref="ImportValidation.Default"/>).</param>
    public static async Task<ImportReport> ReadAsync(IStoreTransfer store, Stream input, bool continueOnError,
        IProgress<OperationProgress>? progress = null, CancellationToken ct = default,
        Func<string, JsonElement, CancellationToken, Task>? backupLines = null, ImportValidation? validation = null)
    {
        var started = Stopwatch.GetTimestamp();
        using var reader = new StreamReader(input, leaveOpen: true);
        validation ??= ImportValidation.Default;
        var lines = new BoundedLineReader(reader, validation.MaxLineChars);
        var report = new ImportReport();
        var header = await lines.ReadLineAsync(ct).ConfigureAwait(false);
        if (header is { TooLong: > 0 } longHeader)
        {
            throw new ValidationException("line 1", $"line 1 is {longHeader.TooLong:N0} characters long, no export header; the file is not an Engram export");
        }
        report.Header = ReadHeader(header?.Text);
        var total = HeaderTotal(report.Header.RootElement);
        var rules = new ImportRules(await store.GetImportBaselineAsync(ct).ConfigureAwait(false), validation, StopAtRefusal: !continueOnError);
        var batch = new List<(int Line, string Kind, JsonDocument Document)>(BatchSize);
        var lineNumber = 1;
        long records = 0; // the record lines read, whatever became of them: what the header's counts are compared with
        try
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var read = await lines.ReadLineAsync(ct).ConfigureAwait(false);
                var line = read?.Text;
                if (read is { } current)
                {
                    lineNumber++;
                    if (line is not null && string.IsNullOrWhiteSpace(line))
                    {
                        continue; // a blank line, spaces or not, as an editor may leave one: no record
                    }
                    JsonDocument? document = null;
                    var kind = "unknown";
                    string? error;
                    if (line is null)
                    {
                        // Read to its end but not kept: no record is this long, and holding it whole had cost gigabytes.
                        records++;
                        error = $"the line is {current.TooLong:N0} characters long, more than any record can be (at most {lines.MaxChars:N0}); it was not read";
                    }
                    else if (Parse(line, out document, out kind, out error) && kind is ApiKeyTransfer.Kind or StoreMetaTransfer.Kind)
                    {
                        using (document)
                        {
                            error = backupLines is null ? $"{kind} lines are put back by a backup's restore only, never imported" : null;
                            if (backupLines is not null)
                            {
                                await backupLines(kind, document!.RootElement, ct).ConfigureAwait(false); // not a record: not in the counts
                            }
                        }
                    }
                    else
                    {
                        records++;
                        if (error is null)
                        {
                            batch.Add((lineNumber, kind, document!));
                        }
                    }
                    if (error is not null)
                    {
                        report.Fail(lineNumber, kind, error);
                        if (!continueOnError)
                        {
                            await FlushAsync(store, batch, rules, report, continueOnError, ct).ConfigureAwait(false);
                            report.StoppedAtLine ??= lineNumber;
                            break;
                        }
                    }
                }
                if (batch.Count == BatchSize || (read is null && batch.Count > 0))
                {
                    if (!await FlushAsync(store, batch, rules, report, continueOnError, ct).ConfigureAwait(false))
                    {
                        break;
                    }
                    // A file with more records than its header counts (edited, or bad lines with --continue-on-error) never shows 12/10.
                    progress?.Report(new OperationProgress("records", report.Processed, Math.Max(total, report.Processed)));
                }
                if (read is null)
                {
                    break;
                }
            }
        }
        finally
        {
            foreach (var item in batch)
            {
                item.Document.Dispose();
            }
            report.Header.Dispose();
        }
        progress?.Report(new OperationProgress("records", report.Processed, Math.Max(total, report.Processed)));
        // An export's header counts its records from the same snapshot the records are read from (StoreExport, also beside a
        // running server), so a whole file has at least as many: fewer means the file was cut, at a line boundary too, where
        // every line read is sound. Only fewer is said: a header whose counts are not numbers counts nothing (HeaderTotal),
        // and lines added by hand are records like any other.
        if (report.StoppedAtLine is null && records < total)
        {
            report.EndsEarly = new ImportShortfall(records, total);
        }
        report.Elapsed = Stopwatch.GetElapsedTime(started);
        return report;
    }

    private static long HeaderTotal(JsonElement header)
    {
        long total = 0;
        if (header.TryGetProperty("counts", out var counts) && counts.ValueKind == JsonValueKind.Object)
        {
            foreach (var count in counts.EnumerateObject())
            {
                // Only a count: the total drives the progress bar, nothing else (a header's counts are not checked).
                if (count.Value.ValueKind == JsonValueKind.Number && count.Value.TryGetInt64(out var n) && n > 0)
                {
                    total = n > long.MaxValue - total ? long.MaxValue : total + n;
                }
            }
        }
        return total;
    }

    /// <summary>Writes the batch; false when a record failed and the import stops.</summary>
    private static async Task<bool> FlushAsync(IStoreTransfer store, List<(int Line, string Kind, JsonDocument Document)> batch, ImportRules rules,
        ImportReport report, bool continueOnError, CancellationToken ct)
    {
        if (batch.Count == 0)
        {
            return true;
        }
        try
        {
            var results = await store.ImportAsync([.. batch.Select(b => b.Document.RootElement)], rules, ct).ConfigureAwait(false);
            var ok = true;
            for (var i = 0; i < results.Count; i++)
            {
                var (line, kind, _) = batch[i];
                var (outcome, error) = results[i];
                switch (outcome)
                {
                    case ImportOutcome.Imported:
                        report.Count(kind).Imported++;
                        break;
                    case ImportOutcome.Skipped:
                        report.Count(kind).Skipped++;
                        break;
                    case ImportOutcome.NotReached:
                        break; // after the refused record the import stops at: neither imported nor counted
                    default:
                        report.Fail(line, kind, Describe(error));
                        if (!continueOnError)
                        {
                            report.StoppedAtLine ??= line;
                            ok = false;
                        }
                        break;
                }
            }
            return ok;
        }
        finally
        {
            foreach (var item in batch)
            {
                item.Document.Dispose();
            }
            batch.Clear();
        }
    }

    /// <summary>Why a record was refused, naming the field when the message does not.</summary>
    private static string Describe(Exception? error) => error switch
    {
        null => "refused",
        ValidationException v when !v.Message.Contains(v.Field, StringComparison.Ordinal) => $"{v.Field}: {v.Message}",
        _ => error.Message,
    };

    private static JsonDocument ReadHeader(string? line)
    {
        const string Expected = "the first line must be an Engram export header ({\"kind\":\"header\",\"format\":\"engram-export\",...}); " +
            "for the MCP memory server's memory.jsonl use --format mcp-memory";
        if (line is null)
        {
            throw new ValidationException("line 1", "the file is empty; " + Expected);
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException ex)
        {
            throw new ValidationException("line 1", $"line 1 is not JSON ({ex.Message}); {Expected}");
        }
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("format", out var format) || format.ValueKind != JsonValueKind.String || format.GetString() != ExportHeader.FormatName)
        {
            document.Dispose();
            throw new ValidationException("line 1", Expected);
        }
        // Every message is made before the document is disposed (the elements read from it).
        var problem = !root.TryGetProperty("format_version", out var version)
            ? $"the header has no format_version (this engram reads export format versions 1 to {ExportHeader.CurrentVersion})"
            : version.ValueKind != JsonValueKind.Number || !version.TryGetInt64(out var number)
                ? $"format_version must be an integer (the header says {Shown(version)})"
                : number < 1 || number > ExportHeader.CurrentVersion
                    ? $"unsupported format_version {number} (this engram reads 1 to {ExportHeader.CurrentVersion})" + (number > ExportHeader.CurrentVersion ? "; use a newer engram" : "")
                    : null;
        if (problem is not null)
        {
            document.Dispose();
            throw new ValidationException("format_version", "line 1: " + problem);
        }
        return document;
    }

    /// <summary>A value of the file quoted in a message: its JSON text, cut at 40 characters.</summary>
    private static string Shown(JsonElement value)
    {
        var text = value.GetRawText();
        return text.Length <= 40 ? text : text[..40] + "…";
    }

    /// <summary>
    /// A record wraps a memory's metadata a few levels down, and metadata may nest as deeply as a request body carries it
    /// (64 levels): an export of such a memory must import again.
    /// </summary>
    private static readonly JsonDocumentOptions RecordOptions = new() { MaxDepth = 128 };

    private static bool Parse(string line, out JsonDocument? document, out string kind, out string? error)
    {
        kind = "unknown";
        document = null;
        try
        {
            document = JsonDocument.Parse(line, RecordOptions);
        }
        catch (JsonException ex)
        {
            error = $"not valid JSON: {ex.Message}";
            return false;
        }
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("kind", out var kindValue) || kindValue.ValueKind != JsonValueKind.String)
        {
            document.Dispose();
            document = null;
            error = "a record must be a JSON object with a \"kind\"";
            return false;
        }
        var name = kindValue.GetString()!;
        if (!ExportKinds.Records.Contains(name, StringComparer.Ordinal) && name is not (ApiKeyTransfer.Kind or StoreMetaTransfer.Kind))
        {
            document.Dispose();
            document = null;
            error = $"unknown kind '{name}' (the kinds are {string.Join(", ", ExportKinds.Records)})";
            return false;
        }
        kind = name;
        error = null;
        return true;
    }
}

/// <summary>What an import did, per kind, and the lines it refused.</summary>
public sealed class ImportReport
{
    private readonly Dictionary<string, KindCounts> _counts = ExportKinds.Records.ToDictionary(k => k, _ => new KindCounts(), StringComparer.Ordinal);

    internal JsonDocument Header { get; set; } = null!;

    public IReadOnlyDictionary<string, KindCounts> Kinds => _counts;

    public List<ImportError> Errors { get; } = [];

    /// <summary>The line the import stopped at (without --continue-on-error); null when it read the whole file.</summary>
    public int? StoppedAtLine { get; internal set; }

    public TimeSpan Elapsed { get; internal set; }

    /// <summary>Set when the file ends before the records its header announces (a cut file); what was read is imported.</summary>
    public ImportShortfall? EndsEarly { get; internal set; }

    public long Imported => _counts.Values.Sum(c => c.Imported);

    public long Skipped => _counts.Values.Sum(c => c.Skipped);

    public long Failed => _counts.Values.Sum(c => c.Failed) + UnknownFailures;

    public long Processed => Imported + Skipped + Failed;

    private long UnknownFailures { get; set; }

    internal KindCounts Count(string kind) => _counts[kind];

    internal void Fail(int line, string kind, string message)
    {
        if (_counts.TryGetValue(kind, out var counts))
        {
            counts.Failed++;
        }
        else
        {
            UnknownFailures++;
        }
        if (Errors.Count < StoreImport.MaxErrors)
        {
            Errors.Add(new ImportError(line, kind, message));
        }
    }
}

/// <summary>Imported, skipped (already there) and failed records of one kind.</summary>
public sealed class KindCounts
{
    public long Imported { get; set; }

    public long Skipped { get; set; }

    public long Failed { get; set; }
}

/// <summary>The records a file held (<paramref name="Read"/>) and the records its header announced.</summary>
public sealed record ImportShortfall(long Read, long Announced);

/// <summary>A line the import refused, and why.</summary>
public sealed record ImportError(int Line, string Kind, string Message);
