using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Engram.Server.Resp;

/// <summary>
/// SCAN's cursors, for every connection of a listener. A cursor is a number (clients parse it as one), so the place it
/// stands for (the listing's cursor: the last key of the page) is kept here under a random number. Until session 41 the
/// table was per connection and a cursor was forgotten once used, so a pooled client that sent the next SCAN on another
/// connection, or retried one, got "invalid cursor"; Redis's cursors work on any connection and any number of times.
/// A cursor is kept until <see cref="Capacity"/> newer ones push it out, and it serves only its own tenant.
/// </summary>
internal sealed class RespScanCursors
{
    /// <summary>Cursors kept (each holds one encoded key: at most about 1.5 KB).</summary>
    public const int Capacity = 16_384;

    private readonly ConcurrentDictionary<long, (string Tenant, string After)> _cursors = new();
    private readonly ConcurrentQueue<long> _order = new();

    /// <summary>A new cursor for <paramref name="after"/> (a listing's next cursor) in <paramref name="tenant"/>.</summary>
    public long Add(string tenant, string after)
    {
        long cursor;
        do
        {
            cursor = RandomNumberGenerator.GetInt32(1, int.MaxValue) * (long)int.MaxValue + RandomNumberGenerator.GetInt32(int.MaxValue);
        }
        while (!_cursors.TryAdd(cursor, (tenant, after)));
        _order.Enqueue(cursor);
        while (_cursors.Count > Capacity && _order.TryDequeue(out var oldest))
        {
            _cursors.TryRemove(oldest, out _);
        }
        return cursor;
    }

    /// <summary>The place <paramref name="cursor"/> stands for, if this listener handed it out to <paramref name="tenant"/> and still keeps it.</summary>
    public bool TryGet(string tenant, long cursor, out string after)
    {
        if (_cursors.TryGetValue(cursor, out var entry) && entry.Tenant == tenant)
        {
            after = entry.After;
            return true;
        }
        after = "";
        return false;
    }
}
