using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace Engram.Server.Resp.Scripting;

/// <summary>
/// The RESP endpoint's scripts: the cache EVALSHA reads (per tenant: SCRIPT FLUSH and SCRIPT EXISTS see only the
/// caller's tenant), and the thread that runs them.
/// <para>
/// A script runs inside one write step of the store (its keys read, its commands run, its changes written with nothing
/// between), so while it runs no other write goes through. The instruction hook stops Lua code at the time limit, but
/// no hook fires inside a C function, and the string library's pattern matcher (find, match, gmatch, gsub) can run
/// for hours on a crafted pattern. So a script whose text names one of those runs on a thread of its own while the
/// step waits: past the limit and a grace the step gives up, writes nothing, and the stuck thread is left to finish on
/// its own (a new one serves the next script); with <see cref="MaxStuckThreads"/> of them still busy, scripts are
/// refused (BUSY) until one ends. Every other script runs on the step's own thread, in a Lua state whose string
/// library lacks the four functions (<see cref="LuaSandbox.MayUsePatterns"/>): the C functions left do work bounded
/// by the script's memory limit, and two thread switches per script are saved (EVALSHA at 50 clients: 46 µs of CPU
/// per script instead of 74, bench/README.md).
/// </para>
/// </summary>
internal sealed class ScriptHost(RespOptions options) : IDisposable
{
    public const int MaxCachedScripts = 10_000;
    public const long MaxCachedBytes = 64L * 1024 * 1024;

    /// <summary>One tenant's share of the cache, so that one tenant filling it cannot stop the others' EVALSHA.</summary>
    public const int MaxTenantScripts = 1_000;
    public const long MaxTenantBytes = 16L * 1024 * 1024;

    public const int MaxStuckThreads = 2;

    /// <summary>How long past its time limit the step waits for a script before leaving its thread behind.</summary>
    private const int GraceMs = 1000;

    private readonly ConcurrentDictionary<(string Tenant, string Sha), byte[]> _cache = new();
    private readonly Dictionary<string, (int Count, long Bytes)> _usage = new(StringComparer.Ordinal);
    private long _cachedBytes;
    private readonly Lock _cacheGate = new();
    private readonly Lock _runGate = new();
    private readonly Lock _threadGate = new();
    private Worker? _worker;
    private int _stuck;
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
    /// Runs <paramref name="work"/> (the Lua side of <paramref name="run"/>) on this thread, or on the script thread while
    /// this one waits; the caller is the store's write step. Throws what the work threw, or <see cref="ScriptException"/> when it did not end in
    /// time or too many earlier scripts are still stuck.
    /// </summary>
    public void Run(ScriptRun run, Action work, bool onThisThread = false)
    {
        if (onThisThread)
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
                return;
            }
        }
        lock (_runGate)
        {
            Worker worker;
            lock (_threadGate)
            {
                if (_stuck >= MaxStuckThreads)
                {
                    throw new ScriptException($"BUSY {_stuck} earlier scripts did not stop within their time limit and still run; try again later");
                }
                worker = _worker ??= new Worker(this);
            }
            var item = new WorkItem(work);
            Volatile.Write(ref _running, run);
            try
            {
                worker.Post(item);
                if (!item.Done.Wait(TimeSpan.FromMilliseconds(run.TimeLimitMs + GraceMs)))
                {
                    run.Abandon(); // waits for a command of the script in progress; none runs after this
                    lock (_threadGate)
                    {
                        if (_worker == worker)
                        {
                            _worker = null;
                            _stuck++;
                            worker.LeftBehind = true;
                        }
                    }
                    throw new ScriptException($"BUSY the script did not stop within its time limit of {run.TimeLimitMs} ms; nothing it did was written");
                }
            }
            finally
            {
                Volatile.Write(ref _running, null);
            }
            if (item.Failure is { } failure)
            {
                ExceptionDispatchInfo.Throw(failure);
            }
        }
    }

    public void Dispose()
    {
        lock (_threadGate)
        {
            _worker?.Stop();
            _worker = null;
        }
    }

    private void Ended(Worker worker)
    {
        lock (_threadGate)
        {
            if (worker.LeftBehind)
            {
                _stuck--;
            }
        }
    }

    private sealed class WorkItem(Action work)
    {
        public ManualResetEventSlim Done { get; } = new();

        public Exception? Failure { get; private set; }

        public void Run()
        {
            try
            {
                work();
            }
            catch (Exception ex)
            {
                Failure = ex;
            }
            finally
            {
                Done.Set();
            }
        }
    }

    /// <summary>A thread that runs one script at a time; once left behind, it ends after its script does.</summary>
    private sealed class Worker
    {
        private readonly BlockingCollection<WorkItem> _items = [];
        private readonly ScriptHost _host;

        public Worker(ScriptHost host)
        {
            _host = host;
            // Lua's C recursion (patterns, nested calls) runs on this stack: a generous one.
            new Thread(Loop, 16 * 1024 * 1024) { IsBackground = true, Name = "engram-lua" }.Start();
        }

        public volatile bool LeftBehind;

        public void Post(WorkItem item) => _items.Add(item);

        public void Stop() => _items.CompleteAdding();

        private void Loop()
        {
            try
            {
                foreach (var item in _items.GetConsumingEnumerable())
                {
                    item.Run();
                    if (LeftBehind)
                    {
                        _host.Ended(this);
                        return;
                    }
                }
            }
            finally
            {
                LuaSandbox.ReleaseThreadState();
            }
        }
    }
}
