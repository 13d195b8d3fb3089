using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Security;
using Engram.Tests.Support;
using Xunit.Abstractions;

namespace Engram.Tests.Security;

/// <summary>
/// The isolation matrix: data in three tenants × four scopes (unscoped, user A, user B, agent X) across
/// memories, key-value state and the graph, then every operation of every Core service called as
/// every caller (each scope with a writing and a read-only role). Nothing of another tenant or scope
/// may be returned, changed, counted, listed, searched or deleted; foreign ids answer like missing
/// ones; naming another scope is 403; a read-only role calling a write is 403. Operations are rows of
/// a table (<see cref="Operations"/>): add one there and it runs for every caller.
/// </summary>
public sealed class ScopeIsolationMatrixTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly string[] Tenants = ["t1", "t2", "t3"];

    /// <summary>The scope combinations seeded per tenant: (user_id, agent_id).</summary>
    private static readonly (string? User, string? Agent)[] SeedScopes = [(null, null), ("A", null), ("B", null), (null, "X"), ("A", "X"), ("B", "X"), (null, "Y")];

    private readonly TempDirectory _data = new();
    private EngramEngine _engine = null!;

    /// <summary>Every live memory the test made (outside a bulk-delete row's own data): id → where it lives.</summary>
    private readonly Dictionary<string, Placed> _memories = new(StringComparer.Ordinal);

    /// <summary>Key-value keys expected in each partition (tenant + scope label) and the value of "plain".</summary>
    private readonly Dictionary<string, SortedSet<string>> _keys = [];

    private readonly Dictionary<string, long> _counters = [];

    private sealed record Placed(string Tenant, string? User, string? Agent);

    /// <summary>One caller of the matrix.</summary>
    private sealed record Who(string Tenant, string ScopeLabel, KeyScope? Scope, Role Role)
    {
        public Caller Caller { get; } = new(Tenant, $"{ScopeLabel}-{Role.Name()}@{Tenant}", Role, Scope);

        /// <summary>The KV / graph partition this caller shares with the other role of the same scope.</summary>
        public string Partition => Tenant + "/" + ScopeLabel;

        public bool Sees(Placed m) => m.Tenant == Tenant && (Scope?.UserId is null || Scope.UserId == m.User) && (Scope?.AgentId is null || Scope.AgentId == m.Agent);

        /// <summary>A filter naming a scope this caller is not confined to (for unscoped callers: user B, which it may name).</summary>
        public MemoryFilter OtherScope => Scope?.AgentId is not null ? new MemoryFilter { AgentId = "Y" }
            : new MemoryFilter { UserId = Scope?.UserId == "B" ? "A" : "B" };

        public override string ToString() => Caller.Actor;
    }

    private sealed record Operation(string Name, Role Needs, Func<Who, Task> Run);

    private static IEnumerable<Who> Callers() =>
        from tenant in Tenants
        from scope in new (string Label, KeyScope? Scope)[] { ("all", null), ("userA", new("A", null)), ("userB", new("B", null)), ("agentX", new(null, "X")) }
        from role in scope.Scope is null ? new[] { Role.Admin, Role.Read } : [Role.Write, Role.Read]
        select new Who(tenant, scope.Label, scope.Scope, role);

    private static Caller Admin(string tenant) => new(tenant, "admin@" + tenant);

    public async Task InitializeAsync()
    {
        _engine = EngramEngine.OpenSqlite(_data.Path);
        foreach (var tenant in Tenants)
        {
            foreach (var (user, agent) in SeedScopes)
            {
                await CreateAsync(Admin(tenant), new NewMemory { Content = $"zebra seed {tenant} {user} {agent}", UserId = user, AgentId = agent });
            }
        }
        foreach (var who in Callers().Where(w => w.Role >= Role.Write))
        {
            foreach (var key in new[] { "plain", "app:session:1", "tmp:1", "tmp:2" })
            {
                await _engine.KeyValue.SetAsync(who.Caller, key, Json($"\"{who.Partition}\""), 0);
            }
            _keys[who.Partition] = ["app:session:1", "plain", "tmp:1", "tmp:2"];
            await _engine.Graph.CreateEntitiesAsync(who.Caller, [new NewEntity { Name = "Ada", EntityType = "person", Observations = [who.Partition] },
                new NewEntity { Name = Node(who), EntityType = "thing", Observations = ["node of " + who.Partition] }]);
            await _engine.Graph.CreateRelationsAsync(who.Caller, [new NewRelation { From = "Ada", To = Node(who), RelationType = "owns" }]);
        }
    }

    public async Task DisposeAsync()
    {
        await _engine.DisposeAsync();
        _data.Dispose();
    }

    [Fact]
    public async Task EveryCaller_EveryOperation_StaysInItsTenantAndScope()
    {
        var pairs = 0;
        var forbidden = 0;
        var callers = Callers().ToList();
        var operations = Operations(callers);
        foreach (var who in callers)
        {
            foreach (var op in operations)
            {
                try
                {
                    if (who.Role < op.Needs)
                    {
                        await FluentActions.Awaiting(() => op.Run(who)).Should().ThrowAsync<ForbiddenException>().WithMessage("*role (read) may not*");
                        forbidden++;
                    }
                    else
                    {
                        await op.Run(who);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    throw new Xunit.Sdk.XunitException($"{op.Name} as {who}: {ex.Message}", ex);
                }
                pairs++;
            }
        }
        await EverythingSeededIsIntactAsync(callers);
        output.WriteLine($"isolation matrix: {Tenants.Length} tenants x 4 scopes x 2 roles = {callers.Count} callers x {operations.Count} operations = {pairs} (caller, operation) pairs checked; {forbidden} of them role refusals (403)");
    }

    private List<Operation> Operations(IReadOnlyList<Who> callers)
    {
        var memories = _engine.Memories;
        var kv = _engine.KeyValue;
        var graph = _engine.Graph;
        var partitions = callers.Where(c => c.Role == Role.Read).ToList(); // one reader per partition
        return
        [
            // ---- memories: reads ----
            new("memories.get", Role.Read, async who =>
            {
                foreach (var (id, placed) in _memories.ToList())
                {
                    if (who.Sees(placed))
                    {
                        (await memories.GetAsync(who.Caller, id)).Id.Should().Be(id);
                    }
                    else
                    {
                        await ExpectMissingAsync(() => memories.GetAsync(who.Caller, id), $"no memory with id '{id}'");
                    }
                }
            }),
            new("memories.history", Role.Read, async who =>
            {
                foreach (var (id, placed) in _memories.ToList())
                {
                    if (who.Sees(placed))
                    {
                        (await memories.GetHistoryAsync(who.Caller, id)).Should().NotBeEmpty();
                    }
                    else
                    {
                        await ExpectMissingAsync(() => memories.GetHistoryAsync(who.Caller, id), $"no memory with id '{id}' has ever existed");
                    }
                }
            }),
            new("memories.list", Role.Read, async who => Ids(await memories.ListAsync(who.Caller, MemoryFilter.None, 1000)).Should().BeEquivalentTo(Visible(who))),
            new("memories.list.own-scope-named", Role.Read, async who =>
                Ids(await memories.ListAsync(who.Caller, new MemoryFilter { UserId = who.Scope?.UserId, AgentId = who.Scope?.AgentId }, 1000))
                    .Should().BeEquivalentTo(Visible(who))),
            new("memories.list.entity", Role.Read, async who =>
                Ids(await memories.ListAsync(who.Caller, new MemoryFilter { Entity = "ada" }, 1000)).Should().BeEquivalentTo(Visible(who))),
            new("memories.list.other-scope-named", Role.Read, async who =>
            {
                if (who.Scope is null)
                {
                    Ids(await memories.ListAsync(who.Caller, who.OtherScope, 1000)).Should().BeEquivalentTo(
                        Visible(who, m => m.User == who.OtherScope.UserId));
                }
                else
                {
                    await ExpectForbiddenAsync(() => memories.ListAsync(who.Caller, who.OtherScope, 1000));
                }
            }),
            new("graph.entity-memories", Role.Read, async who =>
            {
                // What GET /v1/graph/entities/{name}/memories does: resolve in the caller's graph, then list.
                await graph.ResolveMemoryLinkAsync(who.Caller, "Ada");
                Ids(await memories.ListAsync(who.Caller, new MemoryFilter { Entity = "Ada" }, 1000)).Should().BeEquivalentTo(Visible(who));
            }),
            new("search", Role.Read, async who =>
            {
                var result = await _engine.Search.SearchAsync(who.Caller, new SearchRequest { Query = "zebra", K = 100, Explain = true });
                result.Results.Select(h => h.Memory.Id).Should().BeEquivalentTo(Visible(who));
            }),
            new("search.metadata-filter", Role.Read, async who =>
            {
                var filters = new SearchFilters { Metadata = new Dictionary<string, JsonElement> { ["kind"] = Json("\"matrix\"") } };
                var result = await _engine.Search.SearchAsync(who.Caller, new SearchRequest { Query = "zebra", K = 100, Filters = filters });
                result.Results.Select(h => h.Memory.Id).Should().BeEquivalentTo(Visible(who));
            }),
            new("search.other-scope-named", Role.Read, async who =>
            {
                var request = new SearchRequest { Query = "zebra", K = 100, Filters = SearchFilters.From(who.OtherScope) };
                if (who.Scope is null)
                {
                    (await _engine.Search.SearchAsync(who.Caller, request)).Results.Select(h => h.Memory.Id)
                        .Should().BeEquivalentTo(Visible(who, m => m.User == who.OtherScope.UserId));
                }
                else
                {
                    await ExpectForbiddenAsync(() => _engine.Search.SearchAsync(who.Caller, request));
                }
            }),
            new("stats", Role.Read, async who =>
            {
                var stats = await _engine.GetStatsAsync(who.Caller);
                stats.Memories.Total.Should().Be(Visible(who).Count);
                var json = JsonSerializer.SerializeToElement(stats, EngramJson.Options);
                // Store-wide figures count every tenant: admins only.
                json.TryGetProperty("index", out _).Should().Be(who.Role == Role.Admin);
                json.TryGetProperty("store_bytes", out _).Should().Be(who.Role == Role.Admin);
            }),

            // ---- memories: writes ----
            new("memories.create", Role.Write, async who =>
            {
                var written = await CreateAsync(who.Caller, new NewMemory { Content = $"zebra made by {who}" });
                written.UserId.Should().Be(who.Scope?.UserId);
                written.AgentId.Should().Be(who.Scope?.AgentId);
            }),
            new("memories.create.other-scope-named", Role.Write, async who =>
            {
                var other = new NewMemory { Content = $"zebra aimed elsewhere by {who}", UserId = who.OtherScope.UserId, AgentId = who.OtherScope.AgentId };
                if (who.Scope is null)
                {
                    await CreateAsync(who.Caller, other);
                }
                else
                {
                    await ExpectForbiddenAsync(() => memories.CreateAsync(who.Caller, other));
                }
            }),
            new("memories.batch.other-scope-named", Role.Write, async who =>
            {
                var tagged = new NewMemory { Content = "", Entities = ["Ada"], Metadata = Json("{\"kind\":\"matrix\"}") };
                NewMemory[] items = [tagged with { Content = $"zebra batch own {who}" },
                    tagged with { Content = $"zebra batch other {who}", UserId = who.OtherScope.UserId, AgentId = who.OtherScope.AgentId }];
                if (who.Scope is null)
                {
                    foreach (var (item, result) in items.Zip(await memories.CreateBatchAsync(who.Caller, items)))
                    {
                        _memories[result.Id!] = new Placed(who.Tenant, item.UserId, item.AgentId);
                    }
                }
                else
                {
                    await ExpectForbiddenAsync(() => memories.CreateBatchAsync(who.Caller, items));
                    // Nothing of the refused batch was stored (the matrix's list rows would also see it).
                    (await memories.ListAsync(Admin(who.Tenant), MemoryFilter.None, 1000)).Items.Should().NotContain(m => m.Content.Contains($"zebra batch own {who}", StringComparison.Ordinal));
                }
            }),
            new("memories.create.duplicate-of-other-scope", Role.Write, async who =>
            {
                // The same content as another scope's seed: a scoped caller must get its own memory, never the other one.
                var written = await memories.CreateAsync(who.Caller, new NewMemory { Content = $"zebra seed {who.Tenant} B ", Entities = ["Ada"], Metadata = Json("{\"kind\":\"matrix\"}") });
                var placed = new Placed(who.Tenant, written.Memory.UserId, written.Memory.AgentId);
                who.Sees(placed).Should().BeTrue();
                _memories.TryAdd(written.Memory.Id, placed);
            }),
            new("memories.update.foreign", Role.Write, async who =>
            {
                foreach (var (id, _) in _memories.Where(m => !who.Sees(m.Value)).ToList())
                {
                    await ExpectMissingAsync(() => memories.UpdateAsync(who.Caller, id, new MemoryPatch { Importance = 0.9 }), $"no memory with id '{id}'");
                    // A stale If-Match must not tell a foreign memory from a missing one either.
                    await ExpectMissingAsync(() => memories.UpdateAsync(who.Caller, id, new MemoryPatch { Importance = 0.9 }, expectedVersion: 99), $"no memory with id '{id}'");
                }
            }),
            new("memories.update.own", Role.Write, async who =>
            {
                var own = await CreateAsync(who.Caller, new NewMemory { Content = $"zebra to update by {who}" });
                (await memories.UpdateAsync(who.Caller, own.Id, new MemoryPatch { Importance = 0.9 })).Memory.Version.Should().Be(2);
                var move = new MemoryPatch { UserId = new Optional<string?>(who.OtherScope.UserId ?? "A"), AgentId = who.OtherScope.AgentId is null ? default : new Optional<string?>(who.OtherScope.AgentId) };
                if (who.Scope is null)
                {
                    await ExpectAsync<ValidationException>(() => memories.UpdateAsync(who.Caller, own.Id, move));
                }
                else
                {
                    await ExpectForbiddenAsync(() => memories.UpdateAsync(who.Caller, own.Id, move));
                }
            }),
            new("memories.delete.foreign", Role.Write, async who =>
            {
                foreach (var (id, _) in _memories.Where(m => !who.Sees(m.Value)).ToList())
                {
                    await ExpectMissingAsync(() => memories.DeleteAsync(who.Caller, id), $"no memory with id '{id}'");
                }
            }),
            new("memories.delete.own", Role.Write, async who =>
            {
                var own = await memories.CreateAsync(who.Caller, new NewMemory { Content = $"short lived {who}", Entities = ["Ada"] });
                await memories.DeleteAsync(who.Caller, own.Memory.Id);
            }),
            new("memories.bulk-delete", Role.Write, async who =>
            {
                if (who.Role < Role.Write)
                {
                    await memories.DeleteManyAsync(who.Caller, new MemoryFilter { SessionId = "doomed" }, confirm: true);
                    return;
                }
                // Fresh doomed memories in every tenant and scope; the caller's bulk delete must take exactly its visible ones.
                var doomed = new Dictionary<string, Placed>(StringComparer.Ordinal);
                foreach (var tenant in Tenants)
                {
                    foreach (var (user, agent) in SeedScopes)
                    {
                        var m = await memories.CreateAsync(Admin(tenant), new NewMemory { Content = $"doomed {tenant} {user} {agent}", UserId = user, AgentId = agent, SessionId = "doomed" });
                        doomed[m.Memory.Id] = new Placed(tenant, user, agent);
                    }
                }
                var result = await memories.DeleteManyAsync(who.Caller, new MemoryFilter { SessionId = "doomed" }, confirm: true);
                result.Deleted.Should().Be(doomed.Values.Count(who.Sees));
                foreach (var tenant in Tenants)
                {
                    var left = await memories.ListAsync(Admin(tenant), new MemoryFilter { SessionId = "doomed" }, 1000);
                    Ids(left).Should().BeEquivalentTo(doomed.Where(d => d.Value.Tenant == tenant && !who.Sees(d.Value)).Select(d => d.Key));
                    await memories.DeleteManyAsync(Admin(tenant), new MemoryFilter { SessionId = "doomed" }, confirm: true);
                }
            }),
            new("memories.bulk-delete.other-scope-named", Role.Write, async who =>
            {
                var filter = who.OtherScope with { SessionId = "nothing-here" };
                if (who.Scope is null)
                {
                    (await memories.DeleteManyAsync(who.Caller, filter, confirm: true)).Deleted.Should().Be(0);
                }
                else
                {
                    await ExpectForbiddenAsync(() => memories.DeleteManyAsync(who.Caller, filter, confirm: true));
                }
            }),

            // ---- key-value ----
            new("kv.get", Role.Read, async who =>
            {
                (await kv.GetAsync(who.Caller, "plain")).Value.GetString().Should().Be(who.Partition);
                (await kv.GetAsync(who.Caller, "app:session:1")).Value.GetString().Should().Be(who.Partition);
            }),
            new("kv.mget", Role.Read, async who =>
            {
                var found = await kv.GetManyAsync(who.Caller, ["plain", "app:session:1", "nope"]);
                found.Select(f => f.Found ? f.Value!.Value.GetString() : null).Should().Equal(who.Partition, who.Partition, null);
            }),
            new("kv.list", Role.Read, async who =>
                (await kv.ListAsync(who.Caller, null, 1000, null)).Items.Select(i => i.Key).Should().BeEquivalentTo(_keys[who.Partition])),
            new("kv.list.pattern", Role.Read, async who =>
                (await kv.ListAsync(who.Caller, "app:*", 1000, null)).Items.Select(i => i.Key).Should().Equal("app:session:1")),
            new("kv.history", Role.Read, async who =>
            {
                var history = await kv.GetHistoryAsync(who.Caller, "plain");
                history.Items.Should().NotBeEmpty();
                history.Items.Should().OnlyContain(h => h.Actor.EndsWith("@" + who.Tenant, StringComparison.Ordinal) && h.Actor.StartsWith(who.ScopeLabel + "-", StringComparison.Ordinal));
            }),
            new("kv.foreign-keys", Role.Read, async who =>
            {
                foreach (var other in partitions.Where(p => p.Partition != who.Partition))
                {
                    await FluentActions.Awaiting(() => kv.GetAsync(who.Caller, "own:" + other.Partition)).Should().ThrowAsync<NotFoundException>();
                }
            }),
            new("kv.history.foreign", Role.Read, async who =>
            {
                foreach (var other in partitions.Where(p => p.Partition != who.Partition && p.Tenant == who.Tenant))
                {
                    await ExpectAsync<NotFoundException>(() => kv.GetHistoryAsync(who.Caller, "own:" + other.Partition));
                }
            }),
            new("kv.expire", Role.Write, async who =>
            {
                (await kv.ExpireAsync(who.Caller, "plain", 3600)).TtlSeconds.Should().BePositive();
                foreach (var reader in partitions.Where(p => p.Partition != who.Partition))
                {
                    (await kv.GetAsync(reader.Caller, "plain")).TtlSeconds.Should().Be(0, $"{reader}'s key is not the one given a TTL");
                }
                await kv.ExpireAsync(who.Caller, "plain", 0);
            }),
            new("kv.set", Role.Write, async who =>
            {
                await kv.SetAsync(who.Caller, "own:" + who.Partition, Json("1"), 0);
                _keys[who.Partition].Add("own:" + who.Partition);
                foreach (var reader in partitions)
                {
                    var found = (await kv.GetManyAsync(reader.Caller, ["own:" + who.Partition]))[0].Found;
                    found.Should().Be(reader.Partition == who.Partition, $"{reader} must {(reader.Partition == who.Partition ? "" : "not ")}see it");
                }
            }),
            new("kv.incr", Role.Write, async who =>
            {
                var value = await kv.IncrementAsync(who.Caller, "counter");
                _keys[who.Partition].Add("counter");
                value.Should().Be(_counters[who.Partition] = _counters.GetValueOrDefault(who.Partition) + 1);
            }),
            new("kv.delete.foreign", Role.Write, async who =>
            {
                foreach (var other in partitions.Where(p => p.Partition != who.Partition))
                {
                    await ExpectAsync<NotFoundException>(() => kv.DeleteAsync(who.Caller, "own:" + other.Partition));
                }
            }),
            new("kv.cleanup", Role.Write, async who =>
            {
                (await kv.CleanupAsync(who.Caller, "tmp:*")).Should().Be(2);
                foreach (var reader in partitions.Where(p => p.Partition != who.Partition))
                {
                    (await kv.ListAsync(reader.Caller, "tmp:*", 1000, null)).Items.Should().HaveCount(2, $"{reader}'s keys are not the cleanup's");
                }
                await kv.SetAsync(who.Caller, "tmp:1", Json("1"), 0);
                await kv.SetAsync(who.Caller, "tmp:2", Json("2"), 0);
            }),

            // ---- graph ----
            new("graph.read", Role.Read, async who =>
            {
                var all = await graph.ReadGraphAsync(who.Caller);
                all.Entities.Select(e => e.Name).Should().BeEquivalentTo(["Ada", Node(who)]);
                all.Entities.Single(e => e.Name == "Ada").Observations.Should().Equal(who.Partition);
            }),
            new("graph.search", Role.Read, async who =>
            {
                var found = await graph.SearchAsync(who.Caller, "node of");
                found.Entities.Select(e => e.Name).Should().Equal(Node(who));
            }),
            new("graph.open.foreign", Role.Read, async who =>
                (await graph.OpenNodesAsync(who.Caller, [.. partitions.Where(p => p.Partition != who.Partition).Select(Node)])).Entities.Should().BeEmpty()),
            new("graph.neighbors", Role.Read, async who =>
            {
                (await graph.NeighborsAsync(who.Caller, "Ada")).Entities.Select(e => e.Name).Should().BeEquivalentTo(["Ada", Node(who)]);
                foreach (var other in partitions.Where(p => p.Partition != who.Partition))
                {
                    await FluentActions.Awaiting(() => graph.NeighborsAsync(who.Caller, Node(other))).Should().ThrowAsync<NotFoundException>();
                    await FluentActions.Awaiting(() => graph.PathAsync(who.Caller, "Ada", Node(other))).Should().ThrowAsync<NotFoundException>();
                    await FluentActions.Awaiting(() => graph.ResolveMemoryLinkAsync(who.Caller, Node(other))).Should().ThrowAsync<NotFoundException>();
                    await FluentActions.Awaiting(() => graph.GetHistoryAsync(who.Caller, Node(other))).Should().ThrowAsync<NotFoundException>();
                }
            }),
            new("graph.history", Role.Read, async who =>
                (await graph.GetHistoryAsync(who.Caller, "Ada")).Items.Should().OnlyContain(h => h.Actor.StartsWith(who.ScopeLabel + "-", StringComparison.Ordinal)
                    && h.Actor.EndsWith("@" + who.Tenant, StringComparison.Ordinal))),
            new("graph.observe", Role.Write, async who =>
            {
                await graph.AddObservationsAsync(who.Caller, [new ObservationAddition { EntityName = "Ada", Contents = ["extra of " + who.Partition] }]);
                foreach (var reader in partitions.Where(p => p.Partition != who.Partition))
                {
                    (await graph.OpenNodesAsync(reader.Caller, ["Ada"])).Entities.Single().Observations.Should().Equal(reader.Partition);
                }
                (await graph.DeleteObservationsAsync(who.Caller, [new ObservationDeletion { EntityName = "Ada", Observations = ["extra of " + who.Partition] }])).Should().Be(1);
            }),
            new("graph.delete.foreign", Role.Write, async who =>
            {
                var others = partitions.Where(p => p.Partition != who.Partition).Select(Node).ToList();
                (await graph.DeleteEntitiesAsync(who.Caller, others)).Should().Be(0);
                (await graph.DeleteRelationsAsync(who.Caller, [.. others.Select(n => (NewRelation?)new NewRelation { From = "Ada", To = n, RelationType = "owns" })])).Should().Be(0);
                await ExpectAsync<ValidationException>(() => graph.CreateRelationsAsync(who.Caller, [new NewRelation { From = "Ada", To = others[0], RelationType = "owns" }]));
            }),
        ];
    }

    /// <summary>After the matrix: every memory, key and graph entity the test expects is still there, untouched by other callers.</summary>
    private async Task EverythingSeededIsIntactAsync(IReadOnlyList<Who> callers)
    {
        foreach (var tenant in Tenants)
        {
            var all = await _engine.Memories.ListAsync(Admin(tenant), MemoryFilter.None, 1000);
            Ids(all).Should().BeEquivalentTo(_memories.Where(m => m.Value.Tenant == tenant).Select(m => m.Key));
            all.Items.Where(m => m.Content.StartsWith("zebra seed", StringComparison.Ordinal) && m.SessionId is null).Should().OnlyContain(m => m.Version == 1);
        }
        foreach (var reader in callers.Where(c => c.Role == Role.Read))
        {
            (await _engine.KeyValue.GetAsync(reader.Caller, "plain")).Value.GetString().Should().Be(reader.Partition);
            (await _engine.Graph.ReadGraphAsync(reader.Caller)).Entities.Should().HaveCount(2);
        }
    }

    private async Task<Memory> CreateAsync(Caller caller, NewMemory memory)
    {
        var metadata = Json("{\"kind\":\"matrix\"}");
        var written = await _engine.Memories.CreateAsync(caller, memory with { Entities = ["Ada"], Metadata = metadata }, DuplicatePolicy.Allow);
        _memories[written.Memory.Id] = new Placed(caller.Tenant, written.Memory.UserId, written.Memory.AgentId);
        return written.Memory;
    }

    private List<string> Visible(Who who, Func<Placed, bool>? also = null) =>
        [.. _memories.Where(m => who.Sees(m.Value) && (also is null || also(m.Value))).Select(m => m.Key)];

    private static IEnumerable<string> Ids(MemoryPage page) => page.Items.Select(m => m.Id);

    private static string Node(Who who) => "Node " + who.Partition;

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    /// <summary>
    /// Expects <typeparamref name="T"/>; anything else, a role refusal (403) included, propagates, so a
    /// row run by a read-only caller fails its first call with that refusal, which the matrix expects.
    /// </summary>
    private static async Task<T> ExpectAsync<T>(Func<Task> call) where T : Exception
    {
        try
        {
            await call();
        }
        catch (T ex)
        {
            return ex;
        }
        throw new Xunit.Sdk.XunitException($"expected {typeof(T).Name}, but the call succeeded");
    }

    /// <summary>A 404 worded exactly as for an id that never existed.</summary>
    private static async Task ExpectMissingAsync(Func<Task> call, string message) =>
        (await ExpectAsync<NotFoundException>(call)).Message.Should().Be(message);

    /// <summary>A 403 for naming another scope (a role refusal is not caught here: see <see cref="ExpectAsync{T}"/>).</summary>
    private static async Task ExpectForbiddenAsync(Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (ForbiddenException ex) when (ex.Message.Contains("confined to", StringComparison.Ordinal))
        {
            return;
        }
        throw new Xunit.Sdk.XunitException("expected 403 for naming another scope, but the call succeeded");
    }
}
