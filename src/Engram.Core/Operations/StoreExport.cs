using System.Diagnostics;
using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using Engram.Core.Storage.Transfer;

namespace Engram.Core.Operations;

/// <summary>
/// Writes an Engram export: JSON Lines, a header line (format, versions, time, counts), then one
/// line per record (see <see cref="ExportReader"/>; either backend). Streams: each line goes to the output as
/// it is read, so neither the store nor the file is ever held in memory. API keys, the store secret and
/// the audit log are never part of it. Stored embedding vectors are, when asked for (<c>vectors</c>): they are
/// derived, but a transformer model takes hours to make them again for a large store, so logical backups and
/// migrations always carry them.
/// </summary>
public static class StoreExport
{
    private static readonly byte[] NewLine = "\n"u8.ToArray();

    public static string EngramVersion { get; } =
        typeof(StoreExport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <param name="tenant">Only this tenant's records (its scope partitions' key-value entries and graph included); null for every tenant.</param>
    /// <param name="flushEvery">Flush the output after this many lines (an HTTP response then streams steadily).</param>
    /// <param name="vectors">Carry the stored embedding vectors (<see cref="ExportKinds.Vector"/> records, last).</param>
    public static async Task<ExportSummary> WriteAsync(IStoreTransfer store, Stream output, string? tenant, TimeProvider clock,
        IProgress<OperationProgress>? progress = null, int flushEvery = 1000, bool vectors = false, CancellationToken ct = default)
    {
        var started = Stopwatch.GetTimestamp();
        await using var reader = await store.OpenExportAsync(tenant, ct).ConfigureAwait(false);
        reader.Vectors = vectors;
        var counts = await reader.CountAsync(ct).ConfigureAwait(false);
        var header = new ExportHeader(ExportKinds.Header, ExportHeader.FormatName, ExportHeader.CurrentVersion, EngramVersion, reader.SchemaVersion,
            ExportFields.FormatTime(clock.GetUtcNow().ToUnixTimeMilliseconds()), tenant, reader.LastSeq, counts);
        await output.WriteAsync(SerializeHeader(header), ct).ConfigureAwait(false);
        await output.WriteAsync(NewLine, ct).ConfigureAwait(false);
        long written = 0;
        long bytes = 0;
        await foreach (var line in reader.LinesAsync(ct).ConfigureAwait(false))
        {
            await output.WriteAsync(line.Json, ct).ConfigureAwait(false);
            await output.WriteAsync(NewLine, ct).ConfigureAwait(false);
            bytes += line.Json.Length + 1;
            written++;
            if (written % flushEvery == 0)
            {
                await output.FlushAsync(ct).ConfigureAwait(false);
                progress?.Report(new OperationProgress("records", written, counts.Total));
            }
        }
        await output.FlushAsync(ct).ConfigureAwait(false);
        progress?.Report(new OperationProgress("records", written, counts.Total));
        return new ExportSummary(counts, bytes, Stopwatch.GetElapsedTime(started));
    }

    /// <summary>The header as one line of JSON (snake_case, like the records).</summary>
    public static byte[] SerializeHeader(ExportHeader header)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("kind", header.Kind);
            w.WriteString("format", header.Format);
            w.WriteNumber("format_version", header.FormatVersion);
            w.WriteString("engram_version", header.EngramVersion);
            w.WriteNumber("schema_version", header.SchemaVersion);
            w.WriteString("created_at", header.CreatedAt);
            if (header.Tenant is null)
            {
                w.WriteNull("tenant");
            }
            else
            {
                w.WriteString("tenant", header.Tenant);
            }
            w.WriteNumber("last_seq", header.LastSeq);
            w.WriteStartObject("counts");
            w.WriteNumber("memories", header.Counts.Memories);
            w.WriteNumber("kv", header.Counts.KeyValues);
            w.WriteNumber("entities", header.Counts.Entities);
            w.WriteNumber("relations", header.Counts.Relations);
            w.WriteNumber("links", header.Counts.Links);
            w.WriteNumber("conversations", header.Counts.Conversations);
            w.WriteNumber("jobs", header.Counts.Jobs);
            if (header.Counts.Vectors is { } vectors)
            {
                w.WriteNumber("vectors", vectors);
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }
}

/// <summary>What an export wrote: the counts of its header, the bytes of its records and how long it took.</summary>
public sealed record ExportSummary(ExportCounts Counts, long Bytes, TimeSpan Elapsed);
