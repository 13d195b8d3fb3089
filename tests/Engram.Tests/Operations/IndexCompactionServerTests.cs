using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using Engram.Core;
using Engram.Core.Telemetry;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Operations;

/// <summary>The server's background compaction: deletes through REST are reclaimed by themselves, and show in /v1/admin/memory and the metrics.</summary>
public sealed class IndexCompactionServerTests
{
    [Fact]
    public async Task Deleted_memories_are_reclaimed_in_the_background_and_reported()
    {
        var compactions = new ConcurrentBag<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == EngramMeter.Name && instrument.Name is "engram_index_compactions_total" or "engram_index_tombstones")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        var tombstoneGauge = false;
        listener.SetMeasurementEventCallback<long>((instrument, _, tags, _) =>
        {
            if (instrument.Name == "engram_index_compactions_total")
            {
                foreach (var tag in tags)
                {
                    compactions.Add($"{tag.Value}");
                }
            }
            else
            {
                tombstoneGauge = true;
            }
        });
        listener.Start();

        await using var server = await EngramServer.StartAsync(configure: o => o.Search.CompactionMinimum = 20);
        var engine = server.Services.GetRequiredService<EngramEngine>();
        var ids = new List<string>();
        for (var i = 0; i < 100; i++)
        {
            ids.Add((await server.CreateAsync(new { content = $"memory {i} about {(i % 2 == 0 ? "sailing boats" : "mountain huts")}" })).GetProperty("id").GetString()!);
        }
        await server.SearchAsync(new { query = "sailing boats" }); // read-your-writes: indexed
        await Until(() => engine.Index.StagedVectors == 0, "the drain moves every vector into the graph");
        foreach (var id in ids.Take(60))
        {
            (await server.SendJsonAsync("DELETE", $"/v1/memories/{id}")).StatusCode.Should().Be(HttpStatusCode.NoContent);
        }
        await server.SearchAsync(new { query = "sailing boats" });

        await Until(() => engine.Index.Tombstones is { Vectors: 0, Lexical: 0, Documents: 0 }, "the background compaction reclaims all three");
        engine.Index.Tombstones.VectorNodes.Should().Be(40);
        compactions.Should().Contain(["vectors", "lexical", "documents"]);
        listener.RecordObservableInstruments();
        tombstoneGauge.Should().BeTrue();

        var report = await (await server.Client.GetAsync("/v1/admin/memory")).JsonAsync();
        var indexes = report.GetProperty("indexes").EnumerateArray().ToDictionary(i => i.GetProperty("name").GetString()!, i => i.GetProperty("entries").GetInt64());
        indexes.Should().Contain(new KeyValuePair<string, long>("vector_tombstones", 0)).And.Contain(new KeyValuePair<string, long>("lexical_tombstones", 0))
            .And.Contain(new KeyValuePair<string, long>("retired_slots", 0));
        var found = (await server.SearchAsync(new { query = "sailing boats", k = 50 })).Select(r => r.GetProperty("id").GetString()).ToList();
        found.Should().OnlyContain(id => ids.Skip(60).Contains(id)).And.Contain(ids.Skip(60).Where((_, i) => i % 2 == 0));
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        for (var waited = 0; !condition(); waited += 100)
        {
            waited.Should().BeLessThan(120_000, what);
            await Task.Delay(100);
        }
    }
}
