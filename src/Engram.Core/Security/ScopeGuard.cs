using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Core.Security;

/// <summary>
/// Role and scope enforcement on the way into the Core services, in one place, so every interface
/// (REST, the CLI, MCP and whatever comes next) is confined alike without code of its own. Each
/// service method opens a guard with <see cref="Enter"/> (which checks the role) and runs its
/// inputs through it: filters get the caller's scope added, writes get it stamped, and memories
/// outside it are reported exactly like missing ones. Unscoped callers pass through unchanged (the
/// store confines every statement to the tenant). Key-value state and the graph are not filtered but
/// partitioned: a scoped caller gets a store tenant of its own (<see cref="Partition"/>).
/// </summary>
public readonly struct ScopeGuard
{
    /// <summary>
    /// Joins the tenant and the scope parts in a partition name. Tenants are [A-Za-z0-9._-] and scope
    /// values refuse control characters (as memory scope fields do), so it occurs in neither: a
    /// partition can never equal a tenant, another tenant's partition or another scope's.
    /// </summary>
    public const char PartitionSeparator = '\u001f';

    private ScopeGuard(Caller caller) => Caller = caller;

    public Caller Caller { get; }

    private KeyScope? Scope => Caller.IsScoped ? Caller.Scope : null;

    /// <summary>Checks that <paramref name="caller"/> holds <paramref name="needed"/> (403 otherwise) and opens a guard for its inputs.</summary>
    public static ScopeGuard Enter(Caller caller, Role needed, string action)
    {
        ArgumentNullException.ThrowIfNull(caller);
        caller.Require(needed, action);
        return new ScopeGuard(caller);
    }

    /// <summary>
    /// The filter with the caller's scope added; 403 when it names another <c>user_id</c> or
    /// <c>agent_id</c> (<paramref name="prefix"/> is how the request named the filter object).
    /// </summary>
    public MemoryFilter Confine(MemoryFilter filter, string prefix = "")
    {
        if (Scope is not { } scope)
        {
            return filter;
        }
        return filter with
        {
            UserId = Within(prefix + "user_id", "filter", filter.UserId, scope.UserId),
            AgentId = Within(prefix + "agent_id", "filter", filter.AgentId, scope.AgentId),
        };
    }

    /// <summary>The new memory with the caller's scope stamped where absent; 403 when it names another value.</summary>
    public NewMemory Stamp(NewMemory memory, string prefix = "")
    {
        if (Scope is not { } scope)
        {
            return memory;
        }
        return memory with
        {
            UserId = Within(prefix + "user_id", "write", memory.UserId, scope.UserId),
            AgentId = Within(prefix + "agent_id", "write", memory.AgentId, scope.AgentId),
        };
    }

    /// <summary>403 when an update would move a memory out of the caller's scope (names another user_id or agent_id).</summary>
    public void CheckPatch(MemoryPatch patch)
    {
        if (Scope is not { } scope)
        {
            return;
        }
        if (patch.UserId.HasValue)
        {
            Within("user_id", "update", patch.UserId.Value ?? "", scope.UserId);
        }
        if (patch.AgentId.HasValue)
        {
            Within("agent_id", "update", patch.AgentId.Value ?? "", scope.AgentId);
        }
    }

    /// <summary>True when the caller may see <paramref name="memory"/> (always for unscoped callers).</summary>
    public bool Covers(Memory memory) => Covers(memory.UserId, memory.AgentId);

    /// <summary>
    /// True when the caller may see the memory a history describes: its scope is read from a snapshot
    /// entry (created, deleted, expired record the whole memory; scope fields never change), so the
    /// history of a deleted memory stays confined too. No snapshot: not covered.
    /// </summary>
    public bool Covers(IReadOnlyList<HistoryEntry> history)
    {
        if (Scope is null)
        {
            return true;
        }
        foreach (var entry in history)
        {
            if (entry.Event != HistoryEvents.Updated && entry.Changes.ValueKind == JsonValueKind.Object)
            {
                return Covers(Text(entry.Changes, "user_id"), Text(entry.Changes, "agent_id"));
            }
        }
        return false;
    }

    /// <summary>
    /// The caller as the key-value and graph stores must see it: unchanged when unscoped; for a scoped
    /// caller, the tenant replaced by its partition (<c>tenant␟user_id=U␟agent_id=A</c>, present parts
    /// only), so it reads and writes a namespace and a graph of its own that no other caller of the
    /// tenant lists, and no SQL or index needs to know about scopes.
    /// </summary>
    public Caller Partition() => Scope is { } scope ? Caller with { Tenant = PartitionOf(Caller.Tenant, scope) } : Caller;

    /// <summary>The store-level tenant of <paramref name="scope"/> under <paramref name="tenant"/> (see <see cref="Partition"/>).</summary>
    public static string PartitionOf(string tenant, KeyScope scope)
    {
        var name = tenant;
        if (scope.UserId is { } user)
        {
            name += PartitionSeparator + "user_id=" + Checked(user);
        }
        if (scope.AgentId is { } agent)
        {
            name += PartitionSeparator + "agent_id=" + Checked(agent);
        }
        return name;
    }

    /// <summary>The part that names a reserved partition Engram keeps for itself (no key's scope can produce it).</summary>
    private const string InternalPart = "engram=";

    /// <summary>
    /// A partition of <paramref name="tenant"/> that Engram keeps for its own state (<c>tenant␟engram=owner</c>, such as the
    /// Telegram bot's offsets): no API key reaches it, since a key's partition only ever holds <c>user_id=</c> and <c>agent_id=</c>
    /// parts. <paramref name="owner"/> follows the tenant name rules.
    /// </summary>
    public static string InternalPartition(string tenant, string owner) =>
        TenantNames.IsValid(owner) ? tenant + PartitionSeparator + InternalPart + owner : throw new ArgumentException($"invalid owner '{owner}'", nameof(owner));

    /// <summary>
    /// Whether <paramref name="name"/> is a store-level tenant the store itself makes: a tenant name, a partition exactly as
    /// <see cref="PartitionOf"/> builds it (a valid tenant, then <c>␟user_id=U</c> and/or <c>␟agent_id=A</c> in that order, each
    /// value held to the rule a key's scope is) or an <see cref="InternalPartition"/>. What an import, a restore and a migration
    /// accept as a record's tenant, so a file can hold nothing the store could not have written.
    /// </summary>
    public static bool IsStoreTenant(string? name)
    {
        if (name is null)
        {
            return false;
        }
        var cut = name.IndexOf(PartitionSeparator, StringComparison.Ordinal);
        if (cut < 0)
        {
            return TenantNames.IsValid(name);
        }
        var tenant = name[..cut];
        if (!TenantNames.IsValid(tenant))
        {
            return false;
        }
        var parts = name[(cut + 1)..].Split(PartitionSeparator);
        if (parts is [var only] && only.StartsWith(InternalPart, StringComparison.Ordinal))
        {
            return TenantNames.IsValid(only.AsSpan(InternalPart.Length));
        }
        string? user = null, agent = null;
        foreach (var part in parts)
        {
            if (user is null && agent is null && part.StartsWith("user_id=", StringComparison.Ordinal))
            {
                user = part["user_id=".Length..];
            }
            else if (agent is null && part.StartsWith("agent_id=", StringComparison.Ordinal))
            {
                agent = part["agent_id=".Length..];
            }
            else
            {
                return false;
            }
        }
        // Rebuilt by PartitionOf itself, so the rule can never drift from the names the store makes.
        return IsScopeValue(user) && IsScopeValue(agent) && string.Equals(PartitionOf(tenant, new KeyScope(user, agent)), name, StringComparison.Ordinal);
    }

    /// <summary>Returns <paramref name="name"/> when <see cref="IsStoreTenant"/>, or throws a <see cref="ValidationException"/> naming <paramref name="field"/>.</summary>
    public static string RequireStoreTenant(string? name, string field) =>
        IsStoreTenant(name)
            ? name!
            : throw new ValidationException(field, $"{field} must be a tenant (1-{TenantNames.MaxLength} characters of A-Z, a-z, 0-9, '.', '_' or '-') " +
                "or one of its scope partitions as the store names them (the tenant, then U+001F user_id=U and/or U+001F agent_id=A)");

    /// <summary>
    /// Whether the store-level tenant <paramref name="storeTenant"/> is <paramref name="tenant"/> or one of its partitions:
    /// the data an export of the tenant holds.
    /// </summary>
    public static bool BelongsTo(string storeTenant, string tenant) =>
        storeTenant.StartsWith(tenant, StringComparison.Ordinal)
        && (storeTenant.Length == tenant.Length || storeTenant[tenant.Length] == PartitionSeparator);

    /// <summary>The tenant a store-level tenant belongs to: itself, or the tenant before a partition's first separator.</summary>
    public static string BaseTenant(string storeTenant) =>
        storeTenant.IndexOf(PartitionSeparator, StringComparison.Ordinal) is var cut and >= 0 ? storeTenant[..cut] : storeTenant;

    /// <summary>
    /// Bounds that every partition of <paramref name="tenant"/>, and nothing else, lies strictly between in code-point (byte)
    /// order: <c>tenant␟</c> and the tenant followed by the character after the separator. For a range query that needs no
    /// LIKE (whose wildcards '_' and '%' tenant names may hold).
    /// </summary>
    public static (string After, string Before) PartitionBounds(string tenant) =>
        (tenant + PartitionSeparator, tenant + (char)(PartitionSeparator + 1));

    /// <summary>A store-level tenant for people to read: the separator shown as ␟ (U+241F).</summary>
    public static string Display(string storeTenant) => storeTenant.Replace(PartitionSeparator, '\u241f');

    private bool Covers(string? userId, string? agentId) =>
        Scope is not { } scope
        || ((scope.UserId is null || string.Equals(scope.UserId, userId, StringComparison.Ordinal))
            && (scope.AgentId is null || string.Equals(scope.AgentId, agentId, StringComparison.Ordinal)));

    /// <summary>The value a scoped field takes: the key's when absent; refused when it names another.</summary>
    private string? Within(string field, string what, string? given, string? scoped)
    {
        if (scoped is null || given is null)
        {
            return given ?? scoped;
        }
        if (!string.Equals(given, scoped, StringComparison.Ordinal))
        {
            throw new ForbiddenException($"this key is confined to {Scope}; the {what} names {field} '{given}', outside it");
        }
        return given;
    }

    private static string? Text(JsonElement snapshot, string property) =>
        snapshot.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    // A separator inside a scope value would let two scopes share a partition; the key tooling refuses such values, this is the backstop.
    private static string Checked(string value) =>
        IsScopeValue(value)
            ? value
            : throw new ForbiddenException("this key's scope holds an empty value or a control character; recreate the key");

    private static bool IsScopeValue(string? value) => value is null || (value.Length > 0 && !value.Any(char.IsControl));
}
