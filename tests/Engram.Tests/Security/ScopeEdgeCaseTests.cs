using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Security;

/// <summary>
/// Scope enforcement where the matrix does not look: histories of deleted and expired memories, the
/// expiry sweepers, a scoped bulk delete without filters, the entity signal of a search, and the
/// partition names themselves.
/// </summary>
public sealed class ScopeEdgeCaseTests : IAsyncLifetime
{
    private static readonly Caller Admin = new("acme", "admin");
    private static readonly Caller UserA = new("acme", "key-a", Role.Write, new KeyScope("A", null));
    private static readonly Caller UserB = new("acme", "key-b", Role.Write, new KeyScope("B", null));
    private static readonly Caller OtherTenantA = new("globex", "key-a", Role.Write, new KeyScope("A", null));

    private readonly TempDirectory _data = new();
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private EngramEngine _engine = null!;

    public Task InitializeAsync()
    {
        _engine = EngramEngine.OpenSqlite(_data.Path, clock: _clock);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _engine.DisposeAsync();
        _data.Dispose();
    }

    [Fact]
    public async Task HistoryOfADeletedMemory_StaysWithinItsScope()
    {
        var b = await _engine.Memories.CreateAsync(UserB, new NewMemory { Content = "b's secret" });
        await _engine.Memories.DeleteAsync(UserB, b.Memory.Id);

        (await _engine.Memories.GetHistoryAsync(UserB, b.Memory.Id)).Select(h => h.Event).Should().Equal("created", "deleted");
        (await _engine.Memories.GetHistoryAsync(Admin, b.Memory.Id)).Should().HaveCount(2);
        (await FluentActions.Awaiting(() => _engine.Memories.GetHistoryAsync(UserA, b.Memory.Id)).Should().ThrowAsync<NotFoundException>())
            .Which.Message.Should().Be($"no memory with id '{b.Memory.Id}' has ever existed");
    }

    [Fact]
    public async Task ExpirySweepers_KeepEachTenantAndScope_InItsOwnHistory()
    {
        var a = await _engine.Memories.CreateAsync(UserA, new NewMemory { Content = "a's short fact", TtlSeconds = 60 });
        var other = await _engine.Memories.CreateAsync(OtherTenantA, new NewMemory { Content = "globex's short fact", TtlSeconds = 60 });
        await _engine.KeyValue.SetAsync(UserA, "session", Json("1"), 60);
        await _engine.KeyValue.SetAsync(Admin, "session", Json("2"), 0);
        _clock.Advance(TimeSpan.FromMinutes(2));

        (await _engine.Store.DeleteExpiredAsync(1000)).Should().Be(2);
        (await ((IKeyValueStore)_engine.Store).DeleteExpiredKvAsync(1000)).Should().Be(1);

        (await _engine.Memories.GetHistoryAsync(UserA, a.Memory.Id)).Select(h => h.Event).Should().Equal("created", "expired");
        await FluentActions.Awaiting(() => _engine.Memories.GetHistoryAsync(UserB, a.Memory.Id)).Should().ThrowAsync<NotFoundException>();
        await FluentActions.Awaiting(() => _engine.Memories.GetHistoryAsync(UserA, other.Memory.Id)).Should().ThrowAsync<NotFoundException>();
        (await _engine.Memories.GetHistoryAsync(OtherTenantA, other.Memory.Id)).Select(h => h.Event).Should().Equal("created", "expired");
        // The scoped key expired in its own partition; the tenant's key of the same name lives on.
        (await _engine.KeyValue.GetHistoryAsync(UserA, "session")).Items.Select(h => h.Event).Should().Equal("created", "expired");
        (await _engine.KeyValue.GetAsync(Admin, "session")).Value.GetInt32().Should().Be(2);
        (await _engine.KeyValue.GetHistoryAsync(Admin, "session")).Items.Select(h => h.Event).Should().Equal("created");
    }

    [Fact]
    public async Task ScopedBulkDelete_WithoutFilters_ClearsOnlyItsOwnScope()
    {
        await _engine.Memories.CreateAsync(UserA, new NewMemory { Content = "a one" });
        await _engine.Memories.CreateAsync(UserA, new NewMemory { Content = "a two" });
        await _engine.Memories.CreateAsync(UserB, new NewMemory { Content = "b one" });
        await _engine.Memories.CreateAsync(Admin, new NewMemory { Content = "nobody's" });
        await _engine.Memories.CreateAsync(OtherTenantA, new NewMemory { Content = "globex a" });

        (await _engine.Memories.DeleteManyAsync(UserA, MemoryFilter.None, confirm: true)).Deleted.Should().Be(2);

        (await _engine.Memories.ListAsync(Admin, MemoryFilter.None)).Items.Select(m => m.Content).Should().BeEquivalentTo(["b one", "nobody's"]);
        (await _engine.Memories.ListAsync(OtherTenantA, MemoryFilter.None)).Items.Should().ContainSingle();
        // Unscoped callers still need a scope filter, as before.
        await FluentActions.Awaiting(() => _engine.Memories.DeleteManyAsync(Admin, MemoryFilter.None, confirm: true)).Should().ThrowAsync<ValidationException>();
    }

    [Fact]
    public async Task ReadRole_MayReadButNotBulkDeleteNorCleanUp()
    {
        var reader = UserA with { Role = Role.Read };
        await _engine.Memories.CreateAsync(UserA, new NewMemory { Content = "a one" });
        (await _engine.Memories.ListAsync(reader, MemoryFilter.None)).Items.Should().ContainSingle();
        await FluentActions.Awaiting(() => _engine.Memories.DeleteManyAsync(reader, new MemoryFilter { UserId = "A" }, confirm: true)).Should().ThrowAsync<ForbiddenException>();
        await FluentActions.Awaiting(() => _engine.KeyValue.CleanupAsync(reader, "*")).Should().ThrowAsync<ForbiddenException>();
        (await _engine.Memories.ListAsync(reader, MemoryFilter.None)).Items.Should().ContainSingle();
    }

    [Fact]
    public async Task SearchEntitySignal_IgnoresNamesOnlyOtherScopesCarry()
    {
        // B's memory names Grace; A's names Ada. A query naming both must score A's memory as naming
        // every entity A can know of, or the share (and explain) would tell A that Grace exists elsewhere.
        await _engine.Memories.CreateAsync(UserA, new NewMemory { Content = "zebra notes", Entities = ["Ada"] });
        await _engine.Memories.CreateAsync(UserB, new NewMemory { Content = "zebra notes", Entities = ["Grace"] });
        var request = new SearchRequest { Query = "zebra Ada Grace", Explain = true };

        var hit = (await _engine.Search.SearchAsync(UserA, request)).Results.Should().ContainSingle().Subject;
        hit.Explain!.Entity.Should().Be(1.0);
        // Unscoped, both names are the tenant's: each memory names half of them.
        (await _engine.Search.SearchAsync(Admin, request)).Results.Should().HaveCount(2).And.OnlyContain(h => h.Explain!.Entity == 0.5);
    }

    [Fact]
    public async Task UpdateOutsideTheScope_IsNotFound_EvenWithAStaleVersion_AndChangesNothing()
    {
        var b = await _engine.Memories.CreateAsync(UserB, new NewMemory { Content = "b's" });
        (await FluentActions.Awaiting(() => _engine.Memories.UpdateAsync(UserA, b.Memory.Id, new MemoryPatch { Content = "taken" }, expectedVersion: 7))
            .Should().ThrowAsync<NotFoundException>()).Which.Message.Should().Be($"no memory with id '{b.Memory.Id}'");
        await FluentActions.Awaiting(() => _engine.Memories.DeleteAsync(UserA, b.Memory.Id)).Should().ThrowAsync<NotFoundException>();
        var after = await _engine.Memories.GetAsync(Admin, b.Memory.Id);
        after.Content.Should().Be("b's");
        after.Version.Should().Be(1);
    }

    [Fact]
    public void Partitions_AreDistinctPerTenantAndScope_AndNeverATenantName()
    {
        string[] names =
        [
            ScopeGuard.PartitionOf("acme", new KeyScope("A", null)),
            ScopeGuard.PartitionOf("acme", new KeyScope(null, "A")),
            ScopeGuard.PartitionOf("acme", new KeyScope("A", "X")),
            ScopeGuard.PartitionOf("acme", new KeyScope("A,agent_id=X", null)),
            ScopeGuard.PartitionOf("globex", new KeyScope("A", null)),
        ];
        names.Should().OnlyHaveUniqueItems();
        names.Should().OnlyContain(n => n.Contains(ScopeGuard.PartitionSeparator));
        names[2].Should().Be("acme\u001fuser_id=A\u001fagent_id=X");
        // A separator smuggled into a scope value could merge two scopes: refused.
        FluentActions.Invoking(() => ScopeGuard.PartitionOf("acme", new KeyScope("A\u001fagent_id=X", null))).Should().Throw<ForbiddenException>();
        // Unscoped callers keep their tenant as the partition.
        ScopeGuard.Enter(Admin, Role.Read, "read").Partition().Tenant.Should().Be("acme");
    }

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();
}
