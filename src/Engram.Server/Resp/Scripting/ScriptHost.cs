using System.Collections.Concurrent;

namespace Engram.Server.Resp.Scripting;

/// <summary>
/// The RESP endpoint's scripts: the cache EVALSHA reads (per tenant: SCRIPT FLUSH and SCRIPT EXISTS see only the
/// caller's tenant), and the script running now (SCRIPT KILL).
/// <para>
/// A script runs inside one write step of the store (its keys read, its commands run, its changes written with nothing
/// between), on the step's own thread, so while it runs no other write goes through. Its time limit and SCRIPT KILL stop
/// it through the instruction hook and, inside string.find, match, gmatch and gsub, through our own pattern matcher,
/// which looks at the same stop (<see cref="LuaPattern"/>). Until the matcher was ours, the C library's could run for
/// hours on a crafted pattern with no hook firing, so scripts naming those functions ran on a thread of their own that
/// the step could give up on; two stuck threads made every such script answer BUSY until a restart.
/// </para>
/// </summary>
internal sealed class ScriptHost(RespOptions options)
{
    public const int MaxCachedScripts = 10_000;
    public const long MaxCachedBytes = 64L * 1024 * 1024;

    /// <summary>One tenant's share of the cache, so that one tenant filling it cannot stop the others' EVALSHA.</summary>
    public const int MaxTenantScripts = 1_000;
    public const long MaxTenantBytes = 16L * 1024 * 1024;

    private readonly ConcurrentDictionary<(string Tenant, string Sha), byte[]> _cache = new();
    private readonly Dictionary<string, (int Count, long Bytes)> _usage = new(StringComparer.Ordinal);
    private long _cachedBytes;
    private readonly Lock _cacheGate = new();
    private readonly Lock _runGate = new();
    private ScriptRun? _running;

    public long TimeLimitMs => options.ScriptTimeLimitMs;

    public long MemoryLimitBytes => options.ScriptMemoryMb * 1024L * 1024;

    /// <summary>Scripts cached, over all tenants (INFO).</summary>
    public int CachedCount => _cache.Count;

    /// <summary>
    /// Caches the script under its SHA1 and returns that; false when the cache, or the tenant's share of it, is full
    /// (an EVAL still runs; SCRIPT LOAD says so).
    /// </summary>
    public bool TryAdd(string tenant, byte[] script, out string sha)
    {
        sha = LuaSandbox.Sha1(script);
        if (_cache.ContainsKey((tenant, sha)))
        {
            return true;
        }
        lock (_cacheGate)
        {
            var (count, bytes) = _usage.GetValueOrDefault(tenant);
            if (_cache.Count >= MaxCachedScripts || _cachedBytes + script.Length > MaxCachedBytes
                || count >= MaxTenantScripts || bytes + script.Length > MaxTenantBytes)
            {
                return false;
            }
            if (_cache.TryAdd((tenant, sha), script))
            {
                _cachedBytes += script.Length;
                _usage[tenant] = (count + 1, bytes + script.Length);
            }
            return true;
        }
    }

    public byte[]? Find(string tenant, string sha) => _cache.TryGetValue((tenant, sha.ToLowerInvariant()), out var script) ? script : null;

    public void Flush(string tenant)
    {
        lock (_cacheGate)
        {
            foreach (var key in _cache.Keys)
            {
                if (key.Tenant == tenant && _cache.TryRemove(key, out var script))
                {
                    _cachedBytes -= script.Length;
                }
            }
            _usage.Remove(tenant);
        }
    }

    /// <summary>SCRIPT KILL: stops the tenant's running script (nothing it did is written); false when none runs.</summary>
    public bool Kill(string tenant)
    {
        if (Volatile.Read(ref _running) is { } run && run.Tenant == tenant && run.Stop == ScriptStop.None)
        {
            run.Kill();
            return true;
        }
        return false;
    }

    /// <summary>
    /// Runs <paramref name="work"/> (the Lua side of <paramref name="run"/>) on this thread, the store's write step, as
    /// the running script SCRIPT KILL can stop. Scripts run one at a time.
    /// </summary>
    public void Run(ScriptRun run, Action work)
    {
        lock (_runGate)
        {
            Volatile.Write(ref _running, run);
            try
            {
                work();
            }
            finally
            {
                Volatile.Write(ref _running, null);
            }
        }
    }
}
