using System.Globalization;

namespace Engram.Core.Operations;

/// <summary>
/// Scheduled backups (<c>Engram:Backup</c>): on or off, where, how often, and how many to keep per period.
/// </summary>
public sealed class BackupOptions
{
    /// <summary>The server makes scheduled backups. Default on.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The backup folder; default <c>&lt;data&gt;/backups</c>. Best on another disk than the data.</summary>
    public string? Directory { get; set; }

    /// <summary><c>hourly</c> (default), <c>daily</c>, or an interval such as <c>00:30:00</c> (at least a minute).</summary>
    public string Schedule { get; set; } = "hourly";

    public int Hourly { get; set; } = 24;

    public int Daily { get; set; } = 7;

    public int Weekly { get; set; } = 4;

    public int Monthly { get; set; } = 12;

    public RetentionPolicy Retention => new(Hourly, Daily, Weekly, Monthly);

    /// <summary>The backup folder for the store in <paramref name="dataPath"/>.</summary>
    public string FolderFor(string dataPath) =>
        Path.GetFullPath(string.IsNullOrWhiteSpace(Directory) ? Path.Combine(dataPath, "backups") : Directory);

    /// <summary>
    /// The one-line refusal of a start whose scheduled backups could not be written into the folder set, or null
    /// (<see cref="BackupFile.FolderProblem"/>). The default folder is inside the data folder, whose own check names the problem.
    /// </summary>
    public string? FolderRefusal(string dataPath) => Enabled && !string.IsNullOrWhiteSpace(Directory) && BackupFile.FolderProblem(FolderFor(dataPath)) is { } problem
        ? $"Engram:Backup:Directory: {problem}; set it to a writable folder, or turn scheduled backups off (Engram:Backup:Enabled=false)"
        : null;

    /// <summary>The time between scheduled backups, or null when <see cref="Schedule"/> is not understood.</summary>
    public TimeSpan? Interval => Schedule.Trim().ToLowerInvariant() switch
    {
        "hourly" => TimeSpan.FromHours(1),
        "daily" => TimeSpan.FromDays(1),
        "weekly" => TimeSpan.FromDays(7),
        var other when TimeSpan.TryParse(other, CultureInfo.InvariantCulture, out var span) && span >= TimeSpan.FromMinutes(1) => span,
        _ => null,
    };

    public IEnumerable<string> Validate()
    {
        if (Interval is null)
        {
            yield return $"Engram:Backup:Schedule must be hourly, daily, weekly or an interval of at least a minute such as 00:30:00 (got '{Schedule}')";
        }
        if (Hourly < 0 || Daily < 0 || Weekly < 0 || Monthly < 0)
        {
            yield return "Engram:Backup:Hourly, :Daily, :Weekly and :Monthly must be 0 or more";
        }
    }
}
