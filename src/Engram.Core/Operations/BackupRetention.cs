using System.Globalization;

namespace Engram.Core.Operations;

/// <summary>How many scheduled backups to keep per period: the newest of each of the last N hours, days, ISO weeks and months that have one.</summary>
public sealed record RetentionPolicy(int Hourly = 24, int Daily = 7, int Weekly = 4, int Monthly = 12);

/// <summary>
/// Which scheduled backups to keep (grandfather-father-son, as restic's <c>forget --keep-*</c>): going from the
/// newest backup back, the newest one of each of the last <see cref="RetentionPolicy.Hourly"/> hours that have a
/// backup is kept, likewise days, ISO weeks and months (UTC); a backup kept by any rule stays. The newest backup
/// is always kept. Periods count backups that exist, not wall time, so a server that was off for a month does not
/// lose its history when it comes back. A pure function: no clock, no files.
/// </summary>
public static class BackupRetention
{
    public static IReadOnlySet<string> Keep(IEnumerable<(string Name, DateTimeOffset CreatedAt)> backups, RetentionPolicy policy)
    {
        var newestFirst = backups.OrderByDescending(b => b.CreatedAt).ThenByDescending(b => b.Name, StringComparer.Ordinal).ToList();
        var keep = new HashSet<string>(StringComparer.Ordinal);
        if (newestFirst.Count == 0)
        {
            return keep;
        }
        keep.Add(newestFirst[0].Name);
        Apply(newestFirst, policy.Hourly, t => t.ToString("yyyyMMddHH", CultureInfo.InvariantCulture), keep);
        Apply(newestFirst, policy.Daily, t => t.ToString("yyyyMMdd", CultureInfo.InvariantCulture), keep);
        Apply(newestFirst, policy.Weekly, t => $"{ISOWeek.GetYear(t.UtcDateTime)}-{ISOWeek.GetWeekOfYear(t.UtcDateTime)}", keep);
        Apply(newestFirst, policy.Monthly, t => t.ToString("yyyyMM", CultureInfo.InvariantCulture), keep);
        return keep;
    }

    /// <summary>The backups <see cref="Keep"/> does not keep, oldest first.</summary>
    public static IReadOnlyList<string> Expired(IEnumerable<(string Name, DateTimeOffset CreatedAt)> backups, RetentionPolicy policy)
    {
        var all = backups.ToList();
        var keep = Keep(all, policy);
        return [.. all.Where(b => !keep.Contains(b.Name)).OrderBy(b => b.CreatedAt).Select(b => b.Name)];
    }

    private static void Apply(List<(string Name, DateTimeOffset CreatedAt)> newestFirst, int count, Func<DateTimeOffset, string> period, HashSet<string> keep)
    {
        string? last = null;
        foreach (var (name, createdAt) in newestFirst)
        {
            if (count <= 0)
            {
                return;
            }
            var key = period(createdAt.ToUniversalTime());
            if (key != last)
            {
                keep.Add(name);
                last = key;
                count--;
            }
        }
    }
}
