using System.Diagnostics.Metrics;

namespace Engram.Server.Operations;

/// <summary>
/// The host's request rate and latency over the last minute, for the web UI's overview: read from ASP.NET Core's
/// own <c>http.server.request.duration</c> of this host (the meter /metrics exports), kept in 60 one-second buckets
/// and a bounded sample of durations, so it costs a few array writes per request and no memory growth.
/// </summary>
public sealed class RequestRate : IDisposable
{
    private const int Seconds = 60;
    private const int MaxSamples = 2048;

    private readonly MeterListener _listener = new();
    private readonly TimeProvider _clock;
    private readonly Lock _lock = new();
    private readonly long[] _bucketSecond = new long[Seconds];
    private readonly int[] _bucketCount = new int[Seconds];
    private readonly (long Second, double Ms)[] _samples = new (long, double)[MaxSamples];
    private long _sampleTotal;

    public RequestRate(IMeterFactory? hostMeters, TimeProvider clock)
    {
        _clock = clock;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Name == "http.server.request.duration" && instrument.Meter.Name == "Microsoft.AspNetCore.Hosting"
                && (hostMeters is null || ReferenceEquals(instrument.Meter.Scope, hostMeters)))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>((_, seconds, _, _) => Record(seconds * 1000));
        _listener.Start();
    }

    /// <summary>Adds one request that took <paramref name="milliseconds"/> (the listener does; tests may too).</summary>
    public void Record(double milliseconds)
    {
        var second = _clock.GetUtcNow().ToUnixTimeSeconds();
        lock (_lock)
        {
            var slot = (int)(second % Seconds);
            if (_bucketSecond[slot] != second)
            {
                _bucketSecond[slot] = second;
                _bucketCount[slot] = 0;
            }
            _bucketCount[slot]++;
            _samples[_sampleTotal++ % MaxSamples] = (second, milliseconds);
        }
    }

    /// <summary>Requests per second over the last minute, and the median and 95th percentile of their durations (null when none).</summary>
    public (double PerSecond, double? P50Ms, double? P95Ms) LastMinute()
    {
        var now = _clock.GetUtcNow().ToUnixTimeSeconds();
        var count = 0;
        var durations = new List<double>(MaxSamples);
        lock (_lock)
        {
            for (var i = 0; i < Seconds; i++)
            {
                if (now - _bucketSecond[i] < Seconds)
                {
                    count += _bucketCount[i];
                }
            }
            var kept = (int)Math.Min(_sampleTotal, MaxSamples);
            for (var i = 0; i < kept; i++)
            {
                if (now - _samples[i].Second < Seconds)
                {
                    durations.Add(_samples[i].Ms);
                }
            }
        }
        if (durations.Count == 0)
        {
            return (count / (double)Seconds, null, null);
        }
        durations.Sort();
        return (count / (double)Seconds, Percentile(durations, 0.50), Percentile(durations, 0.95));
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    public void Dispose() => _listener.Dispose();
}
