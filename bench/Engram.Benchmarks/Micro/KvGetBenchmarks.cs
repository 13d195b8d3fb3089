using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage.Sqlite;

namespace Engram.Benchmarks.Micro;

/// <summary>
/// The in-memory look-up of a RESP GET (RespCommands.TryGetFromMemory): the key as it arrives (UTF-8 bytes) to the
/// key's entry. <see cref="StringKey"/> makes the strings the endpoint made until session 37 (the key decoded into a
/// string, then given its tenant) before the same look-up; <see cref="SpanKey"/> is
/// <see cref="KvService.TryGetEntryFromMemory"/>, which decodes onto the stack and looks the slot up by span. A two-segment key (redis-benchmark's) and a three-segment one,
/// which gets the tenant inserted.
/// </summary>
[MemoryDiagnoser]
public class KvGetBenchmarks
{
    private static readonly Caller Caller = new("default", "bench");

    private string _folder = "";
    private SqliteMemoryStore _store = null!;
    private KvService _kv = null!;
    private byte[] _utf8 = [];

    [Params("key:__rand_int__", "swarm:task:0042")]
    public string Key { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _folder = Directory.CreateTempSubdirectory("engram-kvget-").FullName;
        _store = SqliteMemoryStore.Open(_folder);
        _kv = new KvService(_store, new KvOptions(), TimeProvider.System, new Engram.Core.Operations.WriteGate());
        using var value = JsonDocument.Parse("\"" + new string('x', 100) + "\"");
        _kv.SetAsync(Caller, Key, value.RootElement, ttlSeconds: null).GetAwaiter().GetResult();
        _utf8 = Encoding.UTF8.GetBytes(Key);
        if (!SpanKey() || !StringKey())
        {
            throw new InvalidOperationException("the key's state is not in memory");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_folder, recursive: true);
    }

    [Benchmark(Baseline = true)]
    public bool StringKey()
    {
        var key = Encoding.UTF8.GetString(_utf8);
        return KvKeys.IsValid(key) && _store.TryGetKvFromMemory(Caller, KvKeys.ToStored(Caller.Tenant, key), out var entry) && entry is not null;
    }

    [Benchmark]
    public bool SpanKey() => _kv.TryGetEntryFromMemory(Caller, _utf8, out var entry) && entry is not null;
}
