using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;

namespace Engram.Tests.KeyValue;

/// <summary>What the key-value journal's test classes share: a folder per store, a relaxed service over it, and a journal held still.</summary>
public abstract class KvJournalTestBase : IDisposable
{
    protected static readonly Caller Acme = new("acme", "test");
    private readonly TempDirectory _data = new();

    public void Dispose()
    {
        _data.Dispose();
        GC.SuppressFinalize(this);
    }

    protected static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    protected static KvService Relaxed(SqliteMemoryStore store) =>
        new(store, new KvOptions { Durability = WriteDurability.Relaxed, DefaultTtlSeconds = 0 }, TimeProvider.System);

    protected string Folder(string name) => Path.Combine(_data.Path, name);

    /// <summary>
    /// A closed store in <paramref name="folder"/> whose key "k" holds "own", beside which lies the journal of another
    /// (crashed) database holding one acknowledged SET of "k" ("other"): the next open moves it aside with a notice.
    /// </summary>
    protected async Task ForeignJournalBesideAsync(string folder)
    {
        var other = Folder(Path.GetFileName(folder) + "-other");
        var image = Folder(Path.GetFileName(folder) + "-other-image");
        await using (var store = SqliteMemoryStore.Open(other))
        {
            var kv = Relaxed(store);
            await kv.SetAsync(Acme, "k", Json("\"other applied\""), null);
            await kv.GetHistoryAsync(Acme, "k"); // applied
            Hold(store);
            await kv.SetAsync(Acme, "k", Json("\"other\""), null);
            store.KvJournal!.Pending.Should().Be(1);
            await KvJournalTests.CopyCrashImageAsync(other, image);
        }
        await using (var own = SqliteMemoryStore.Open(folder))
        {
            await Relaxed(own).SetAsync(Acme, "k", Json("\"own\""), null);
        }
        File.Copy(Path.Combine(image, SqliteMemoryStore.FileName + SqliteKvJournal.Suffix), Path.Combine(folder, SqliteMemoryStore.FileName + SqliteKvJournal.Suffix),
            overwrite: true);
    }

    /// <summary>
    /// A crash image in <paramref name="image"/> of a store whose backup (in <paramref name="backup"/>) holds "k" = "backed
    /// up", and whose journal holds the acknowledged SETs made after it: "k" = "after the backup", then <paramref name="later"/>.
    /// </summary>
    protected async Task CrashImageAfterABackupAsync(string image, string backup, params (string Key, string Json)[] later)
    {
        var live = Folder(Path.GetFileName(image) + "-live");
        await using var store = SqliteMemoryStore.Open(live);
        var kv = Relaxed(store);
        await kv.SetAsync(Acme, "k", Json("\"backed up\""), null);
        await kv.GetHistoryAsync(Acme, "k"); // applied: in the tables the backup copies
        Engram.Core.Operations.StoreBackup.Create(Path.Combine(live, SqliteMemoryStore.FileName), backup, Engram.Core.Operations.BackupKinds.Manual, TimeProvider.System);
        var journal = Hold(store);
        await kv.SetAsync(Acme, "k", Json("\"after the backup\""), null);
        foreach (var (key, json) in later)
        {
            await kv.SetAsync(Acme, key, Json(json), null);
        }
        journal.Pending.Should().Be(1 + later.Length);
        await KvJournalTests.CopyCrashImageAsync(live, image);
    }

    /// <summary>Keeps records waiting until something makes the writer apply them.</summary>
    private protected static SqliteKvJournal Hold(SqliteMemoryStore store)
    {
        var journal = store.KvJournal ?? throw new InvalidOperationException("the store has no journal");
        journal.LingerMs = Timeout.Infinite;
        journal.ApplyBatch = int.MaxValue;
        return journal;
    }
}
