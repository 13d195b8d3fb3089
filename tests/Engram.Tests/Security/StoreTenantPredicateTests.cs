using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Tests.Support;

namespace Engram.Tests.Security;

/// <summary>
/// The store methods the services reach only indirectly (search's loads and metadata pre-filter, access
/// bookkeeping, counts), called with ids and filters of another tenant: each must confine itself to
/// the tenant it is given, so a missing tenant predicate in any of them fails here.
/// </summary>
public sealed class StoreTenantPredicateTests : IAsyncLifetime
{
    private static readonly Caller Acme = Caller.Default("test") with { Tenant = "acme" };
    private static readonly Caller Globex = Caller.Default("test") with { Tenant = "globex" };

    private readonly TempDirectory _data = new();
    private EngramEngine _engine = null!;

    public Task InitializeAsync()
    {
        _engine = EngramEngine.OpenSqlite(_data.Path);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _engine.DisposeAsync();
        _data.Dispose();
    }

    [Fact]
    public async Task EveryIndirectStoreRead_AndTheAccessBookkeeping_StayInTheirTenant()
    {
        var metadata = System.Text.Json.JsonDocument.Parse("{\"k\":\"v\"}").RootElement.Clone();
        var acme = await _engine.Memories.CreateAsync(Acme, new NewMemory { Content = "same words", UserId = "u", Metadata = metadata });
        await _engine.Memories.CreateAsync(Globex, new NewMemory { Content = "same words", UserId = "u", Metadata = metadata });
        var store = _engine.Store;
        var filter = new MemoryFilter { UserId = "u", Metadata = new Dictionary<string, string> { ["k"] = "v" } };

        (await store.GetManyAsync(Globex, [acme.Memory.Id])).Should().BeEmpty();
        (await store.GetAsync(Globex, acme.Memory.Id)).Should().BeNull();
        (await store.GetHistoryAsync(Globex, acme.Memory.Id)).Should().BeEmpty();
        (await store.ListIdsAsync(Globex, filter, 100)).Should().ContainSingle().Which.Should().NotBe(acme.Memory.Id);
        (await store.GetStatsAsync(Globex, filter)).Total.Should().Be(1);
        (await store.DeleteAsync(Globex, acme.Memory.Id)).Should().BeNull();
        await FluentActions.Awaiting(() => store.UpdateAsync(Globex, acme.Memory.Id, null, m => m with { Content = "taken" })).Should().ThrowAsync<NotFoundException>();
        (await store.DeleteManyAsync(Globex, new MemoryFilter { UserId = "u" })).Deleted.Should().Be(1);
        (await store.GetAsync(Acme, acme.Memory.Id))!.Content.Should().Be("same words");

        await store.RecordAccessAsync("globex", [(acme.Memory.Id, 5, DateTimeOffset.UtcNow)]);
        (await store.GetAsync(Acme, acme.Memory.Id))!.AccessCount.Should().Be(0);
        await store.RecordAccessAsync("acme", [(acme.Memory.Id, 5, DateTimeOffset.UtcNow)]);
        (await store.GetAsync(Acme, acme.Memory.Id))!.AccessCount.Should().Be(5);
    }
}
