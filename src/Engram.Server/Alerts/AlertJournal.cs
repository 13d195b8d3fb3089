using System.Text.Json;
using Engram.Core.Common;

namespace Engram.Server.Alerts;

/// <summary>
/// The alert events, newest last, bounded (<see cref="AlertOptions.MaxRecords"/>) and kept in the data folder's
/// <c>alerts.json</c> (each instance's own, whichever store backend), rewritten atomically at each event (events are rare).
/// </summary>
public sealed class AlertJournal
{
    public const string FileName = "alerts.json";

    private readonly string _path;
    private readonly int _max;
    private readonly Lock _lock = new();
    private readonly List<AlertEvent> _events;

    public AlertJournal(string dataPath, int max)
    {
        _path = Path.Combine(Path.GetFullPath(dataPath), FileName);
        _max = max;
        _events = Load(_path);
    }

    private static List<AlertEvent> Load(string path)
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<List<AlertEvent>>(File.ReadAllBytes(path), EngramJson.Options) ?? [] : [];
        }
        catch (JsonException)
        {
            return []; // a damaged journal is history only: start a new one rather than refuse to start
        }
    }

    public void Add(AlertEvent alert)
    {
        lock (_lock)
        {
            _events.Add(alert);
            if (_events.Count > _max)
            {
                _events.RemoveRange(0, _events.Count - _max);
            }
            DurableFile.Replace(_path, JsonSerializer.SerializeToUtf8Bytes(_events, EngramJson.Options));
        }
    }

    /// <summary>Newest first, at most <paramref name="limit"/>.</summary>
    public IReadOnlyList<AlertEvent> Recent(int limit)
    {
        lock (_lock)
        {
            return [.. Enumerable.Reverse(_events).Take(limit)];
        }
    }

    /// <summary>When each alert last sent a firing message (its cooldown's start), from the journal: a restart keeps the cooldowns.</summary>
    public Dictionary<string, DateTimeOffset> LastNotified()
    {
        lock (_lock)
        {
            return _events.Where(e => e.State is AlertEvent.Firing or AlertEvent.Escalated && e.Notified)
                .GroupBy(e => e.Alert).ToDictionary(g => g.Key, g => g.Max(e => e.At), StringComparer.Ordinal);
        }
    }
}

/// <summary>
/// One alert event: <c>firing</c> (the condition began; <see cref="Notified"/> false when a cooldown held the message back),
/// <c>escalated</c> (its severity rose, warning to critical: always sent), <c>deescalated</c> (it fell back: recorded, not
/// sent) or <c>resolved</c> (it cleared; notified when a message about it was sent).
/// </summary>
public sealed record AlertEvent(string Id, string Alert, string Severity, string State, string Summary, DateTimeOffset At, bool Notified,
    DateTimeOffset? FiringSince = null)
{
    public const string Firing = "firing";
    public const string Resolved = "resolved";
    public const string Escalated = "escalated";
    public const string Deescalated = "deescalated";
}
