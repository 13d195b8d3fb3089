using System.Diagnostics.Metrics;

namespace Engram.Server.Alerts;

/// <summary>
/// The two signals the alert rules read from events rather than from state: the latency of this instance's recent searches
/// (its <see cref="Core.Search.SearchService.Completed"/>, not the process-wide <c>engram_search_duration_seconds</c>, so
/// servers sharing a process do not see each other's) and writes that failed with a 5xx (ASP.NET Core's
/// <c>http.server.request.duration</c> of this host: POST, PUT, PATCH and DELETE answered 5xx, through a
/// <see cref="MeterListener"/>). Collected between two evaluations, in bounded memory.
/// </summary>
public sealed class AlertSignals : IDisposable
{
    /// <summary>Search durations kept per interval at most (newest replace the oldest).</summary>
    public const int MaxSamples = 4096;

    private readonly MeterListener _listener = new();
    private readonly Lock _lock = new();
    private readonly double[] _searches = new double[MaxSamples];
    private int _searchCount;
    private long _searchTotal;
    private long _writeErrors;

    public AlertSignals(IMeterFactory? hostMeters, Core.Search.SearchService? searches = null)
    {
        if (searches is not null)
        {
            searches.Completed += search => RecordSearch(search.Seconds);
        }
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if ((instrument.Name == "http.server.request.duration" && instrument.Meter.Name == "Microsoft.AspNetCore.Hosting"
                    && (hostMeters is null || ReferenceEquals(instrument.Meter.Scope, hostMeters))))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>(OnMeasurement);
        _listener.Start();
    }

    private void OnMeasurement(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        string? method = null;
        var status = 0;
        foreach (var tag in tags)
        {
            if (tag.Key == "http.request.method")
            {
                method = tag.Value as string;
            }
            else if (tag.Key == "http.response.status_code" && tag.Value is int code)
            {
                status = code;
            }
        }
        if (status >= 500 && method is "POST" or "PUT" or "PATCH" or "DELETE")
        {
            Interlocked.Increment(ref _writeErrors);
        }
    }

    /// <summary>Adds one search's duration in seconds (the listener does; tests may too).</summary>
    public void RecordSearch(double seconds)
    {
        lock (_lock)
        {
            _searches[_searchTotal++ % MaxSamples] = seconds;
            _searchCount = (int)Math.Min(_searchTotal, MaxSamples);
        }
    }

    /// <summary>Failed writes counted in the current window so far.</summary>
    public long WriteErrors => Interlocked.Read(ref _writeErrors);

    /// <summary>Adds a failed write (the listener does; tests may too).</summary>
    public void RecordWriteError() => Interlocked.Increment(ref _writeErrors);

    /// <summary>The signals since the last call, which starts the next window.</summary>
    public (int Searches, double? SearchP95Seconds, long WriteErrors) TakeWindow()
    {
        double[] window;
        lock (_lock)
        {
            window = _searches.AsSpan(0, _searchCount).ToArray();
            _searchCount = 0;
            _searchTotal = 0;
        }
        var errors = Interlocked.Exchange(ref _writeErrors, 0);
        if (window.Length == 0)
        {
            return (0, null, errors);
        }
        Array.Sort(window);
        var index = (int)Math.Ceiling(0.95 * window.Length) - 1;
        return (window.Length, window[Math.Clamp(index, 0, window.Length - 1)], errors);
    }

    public void Dispose() => _listener.Dispose();
}
