using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Memories;
using Engram.Core.Storage;
using Engram.Tests.Support;

namespace Engram.Tests.Storage;

/// <summary>
/// The memory store's contract, whichever backend holds it: change-log order and paging by kind,
/// concurrent writers, a failing write among others, tenant isolation, duplicate detection under
/// concurrency. Runs on SQLite here and on PostgreSQL in tests/Engram.Tests/Postgres.
/// </summary>
public class MemoryStoreConformanceTests : IDisposable
{
    private static readonly Caller Alice = new("default", "test");
    private StoreLocation? _location;

    /// <summary>The backend these tests run on; the PostgreSQL run derives from this class.</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    private StoreLocation Data => _location ??= StoreLocation.Create(Backend);

    public void Dispose()
    {
        _location?.Dispose();
        GC.SuppressFinalize(this);
    }

    private static MemoryService Service(IMemoryStore store) => new(store, new MemoryLimits(), TimeProvider.System);

    [Fact]
    public async Task ChangeLog_HasOneEntryPerChangeInOrder()
    {
        await using var store = Data.Open();
        var service = Service(store);
        var a = await service.CreateAsync(Alice, new NewMemory { Content = "a" });
        var b = await service.CreateAsync(Alice, new NewMemory { Content = "b" });
        var u = await service.UpdateAsync(Alice, a.Memory.Id, new MemoryPatch { Importance = 0.9 });
        var d = await service.DeleteAsync(Alice, b.Memory.Id);

        var changes = await store.ReadChangesAsync(0, 100);
        changes.Select(c => (c.Seq, c.EntityId, c.Op)).Should().Equal(
            (a.Seq, a.Memory.Id, "upsert"), (b.Seq, b.Memory.Id, "upsert"), (u.Seq, a.Memory.Id, "upsert"), (d, b.Memory.Id, "delete"));
        (await store.ReadChangesAsync(u.Seq, 100)).Should().ContainSingle().Which.Seq.Should().Be(d);
        (await store.GetLastSeqAsync()).Should().Be(d);
    }

    [Fact]
    public async Task ChangeLog_ReadByKind_SkipsOtherKinds_AndSaysHowFarItRead()
    {
        await using var engine = Engram.Core.EngramEngine.Open(Data.Value);
        var store = engine.Store;
        var value = System.Text.Json.JsonDocument.Parse("1").RootElement;
        var a = await engine.Memories.CreateAsync(Alice, new NewMemory { Content = "first memory" });
        for (var i = 0; i < 3; i++)
        {
            await engine.KeyValue.SetAsync(Alice, $"k{i}", value, 0);
        }
        var b = await engine.Memories.CreateAsync(Alice, new NewMemory { Content = "second memory" });
        await engine.KeyValue.SetAsync(Alice, "k9", value, 0);
        var last = await store.GetLastSeqAsync();
        last.Should().Be(b.Seq + 1);

        var page = await store.ReadChangesAsync(0, 100, ChangeRecord.MemoryEntity);
        page.Changes.Select(c => c.Seq).Should().Equal(a.Seq, b.Seq);
        page.ReadThrough.Should().Be(last, "the key-value entries after the last memory were read past too");
        var full = await store.ReadChangesAsync(0, 1, ChangeRecord.MemoryEntity);
        full.Changes.Should().ContainSingle().Which.Seq.Should().Be(a.Seq);
        full.ReadThrough.Should().Be(a.Seq, "a full page may have more of its kind right after it");
        var none = await store.ReadChangesAsync(last, 100, ChangeRecord.MemoryEntity);
        none.Changes.Should().BeEmpty();
        none.ReadThrough.Should().Be(last);

        await engine.Follower.CatchUpAsync();
        engine.Index.AppliedSeq.Should().Be(last, "the index follower moves past key-value entries");
        engine.Index.Count.Should().Be(2);
    }

    [Fact]
    public async Task TwoStoresOnOneStore_WriteConcurrentlyWithoutLockErrors()
    {
        // Two stores = two independent writers, as when the CLI writes next to a running server (or two instances share a database).
        await using var first = Data.Open();
        await using var second = Data.Open();
        var writes = Enumerable.Range(0, 400).Select(i =>
            Service(i % 2 == 0 ? first : second).CreateAsync(Alice, new NewMemory { Content = $"concurrent {i}" }));
        var results = await Task.WhenAll(writes);
        results.Select(r => r.Seq).Should().OnlyHaveUniqueItems();
        (await first.GetStatsAsync(Alice)).Total.Should().Be(400);
        (await second.GetStatsAsync(Alice)).Total.Should().Be(400);
    }

    [Fact]
    public async Task FailingWrite_DoesNotTakeItsGroupDown()
    {
        await using var store = Data.Open();
        var service = Service(store);
        var target = (await service.CreateAsync(Alice, new NewMemory { Content = "target" })).Memory;
        var tasks = new List<Task>();
        for (var i = 0; i < 50; i++)
        {
            tasks.Add(service.CreateAsync(Alice, new NewMemory { Content = $"neighbour {i}" }));
            // valid_to before valid_from fails inside the writer, after the savepoint was opened.
            tasks.Add(service.UpdateAsync(Alice, target.Id, new MemoryPatch { ValidFrom = DateTimeOffset.UtcNow, ValidTo = DateTimeOffset.UtcNow.AddDays(-1) }));
        }
        await Task.WhenAll(tasks.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
        tasks.Where((_, i) => i % 2 == 1).Should().OnlyContain(t => t.IsFaulted && t.Exception!.InnerException is ValidationException);
        tasks.Where((_, i) => i % 2 == 0).Should().OnlyContain(t => t.IsCompletedSuccessfully);
        (await store.GetStatsAsync(Alice)).Total.Should().Be(51);
        (await store.GetAsync(Alice, target.Id))!.Version.Should().Be(1);
    }

    [Fact]
    public async Task Tenants_AreIsolatedOnEveryPath()
    {
        await using var store = Data.Open();
        var service = Service(store);
        var other = new Caller("other-tenant", "test");
        var mine = (await service.CreateAsync(Alice, new NewMemory { Content = "secret", UserId = "u" })).Memory;

        (await store.GetAsync(other, mine.Id)).Should().BeNull();
        (await store.ListAsync(other, MemoryFilter.None, 100, null)).Items.Should().BeEmpty();
        (await store.GetHistoryAsync(other, mine.Id)).Should().BeEmpty();
        (await store.GetStatsAsync(other)).Total.Should().Be(0);
        (await store.DeleteAsync(other, mine.Id)).Should().BeNull();
        (await store.DeleteManyAsync(other, new MemoryFilter { UserId = "u" })).Deleted.Should().Be(0);
        await service.UpdateAsync(Alice, mine.Id, new MemoryPatch { Entities = new(["Mallory"]) });
        (await store.ListAsync(other, new MemoryFilter { Entity = "Mallory" }, 100, null)).Items.Should().BeEmpty();
        (await store.ListAsync(Alice, new MemoryFilter { Entity = "Mallory" }, 100, null)).Items.Should().ContainSingle();
        var update = () => service.UpdateAsync(other, mine.Id, new MemoryPatch { Content = "hijacked" });
        await update.Should().ThrowAsync<NotFoundException>();
        // The same content in another tenant is not a duplicate.
        (await service.CreateAsync(other, new NewMemory { Content = "secret", UserId = "u" })).Duplicate.Should().BeFalse();
        (await store.GetAsync(Alice, mine.Id))!.Content.Should().Be("secret");
    }

    [Fact]
    public async Task ConcurrentIdenticalCreates_StoreExactlyOne()
    {
        await using var store = Data.Open();
        var service = Service(store);
        var results = await Task.WhenAll(Enumerable.Range(0, 32).Select(_ => service.CreateAsync(Alice, new NewMemory { Content = "same" })));
        results.Count(r => !r.Duplicate).Should().Be(1);
        results.Select(r => r.Memory.Id).Distinct().Should().ContainSingle();
    }

    [Fact]
    public async Task Batch_GivesEachItemWhatCreatingItAloneWould()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var store = Data.Open(clock);
        var service = new MemoryService(store, new MemoryLimits(), clock);
        var stored = await service.CreateAsync(Alice, new NewMemory { Content = "stored before", UserId = "u" });
        await service.CreateAsync(Alice, new NewMemory { Content = "gone by then", ExpiresAt = clock.GetUtcNow().AddMinutes(1) });
        clock.Advance(TimeSpan.FromMinutes(2));
        var head = await store.GetLastSeqAsync();

        var results = await service.CreateBatchAsync(Alice,
        [
            new NewMemory { Content = "new one", Tags = ["a", "b"], Entities = ["Priya"] },
            new NewMemory { Content = "stored before", UserId = "u" },
            new NewMemory { Content = "stored before", UserId = "someone else" },
            new NewMemory { Content = "new one" },
            new NewMemory { Content = "" },
            new NewMemory { Content = "new one", AgentId = "agent" },
            new NewMemory { Content = "gone by then" },
        ]);

        results.Select(r => r.Status).Should().Equal("created", "duplicate", "created", "duplicate", "error", "created", "created");
        results[1].Should().Be(new BatchItemResult("duplicate", stored.Memory.Id, stored.Seq, null), "a stored memory in the same scope is found");
        results[3].Should().Be(new BatchItemResult("duplicate", results[0].Id, results[0].Seq, null), "an earlier item of the batch is found too");
        var created = results.Where(r => r.Status == "created").ToList();
        created.Select(r => r.Seq!.Value).Should().Equal(head + 1, head + 2, head + 3, head + 4);
        (await store.ReadChangesAsync(head, 100)).Select(c => (c.Seq, c.EntityId, c.Op)).Should().Equal(created.Select(r => (r.Seq!.Value, r.Id!, "upsert")));
        (await store.GetLastSeqAsync()).Should().Be(head + 4);
        (await store.GetHistoryAsync(Alice, results[0].Id!)).Should().ContainSingle().Which.Seq.Should().Be(results[0].Seq!.Value);
        (await store.ListAsync(Alice, new MemoryFilter { Tags = ["b"] }, 10, null)).Items.Should().ContainSingle().Which.Id.Should().Be(results[0].Id);
        (await store.ListAsync(Alice, new MemoryFilter { Entity = "priya" }, 10, null)).Items.Should().ContainSingle().Which.Id.Should().Be(results[0].Id);

        var rejected = await service.CreateBatchAsync(Alice, [new NewMemory { Content = "new one" }, new NewMemory { Content = "brand new" }, new NewMemory { Content = "brand new" }],
            DuplicatePolicy.Reject);
        rejected.Select(r => (r.Status, r.Seq is null)).Should().Equal(("error", true), ("created", false), ("error", true));
        rejected[0].Error.Should().Be($"duplicate of {results[0].Id}");
        rejected[2].Error.Should().Be($"duplicate of {rejected[1].Id}");

        var allowed = await service.CreateBatchAsync(Alice, [new NewMemory { Content = "new one" }, new NewMemory { Content = "new one" }], DuplicatePolicy.Allow);
        allowed.Should().OnlyContain(r => r.Status == "created");
        allowed.Select(r => r.Id).Should().OnlyHaveUniqueItems().And.NotContain(results[0].Id);
        (await store.ListAsync(Alice, MemoryFilter.None, 100, null)).Items.Should().HaveCount(8,
            "stored before, 4 created by the first batch, 1 by the second and 2 by the third; the expired one is not listed");
    }
}
