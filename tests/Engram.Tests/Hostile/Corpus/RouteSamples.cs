namespace Engram.Tests.Hostile.Corpus;

/// <summary>What a query parameter holds, which decides the hostile values it is given.</summary>
internal enum QueryKind
{
    Int,
    Bool,
    Text,
    Timestamp,
    Choice,
    Glob,
    Cursor,
}

/// <summary>
/// A valid request to one route and method, which the corpus then spoils: <see cref="Target"/> names its
/// route parameters <c>{name}</c> (filled from <see cref="Params"/> or with hostile values), and
/// <see cref="Body"/> is the JSON the route takes (null: it reads none). Samples only ever write what the
/// barrage may write (new memories in scope <c>hostile</c>, keys under <c>hostile:</c>, the probe entity
/// and relation) or change the scratch memory, so an accepted write never touches seeded data.
/// </summary>
internal sealed record RouteSample(string Method, string Pattern, string Target, string? Body, int[] Statuses)
{
    /// <summary>Values for the target's parameters; <c>$name</c> is a value the seed supplies (<see cref="SeededStore"/>).</summary>
    public IReadOnlyDictionary<string, string> Params { get; init; } = new Dictionary<string, string>();

    /// <summary>A query every request to this sample carries (e.g. the scope a bulk delete needs).</summary>
    public string Query { get; init; } = "";

    /// <summary>The query parameters the route reads, by kind.</summary>
    public IReadOnlyDictionary<string, QueryKind> QueryParams { get; init; } = new Dictionary<string, QueryKind>();

    /// <summary>Fields whose value is any JSON (a key-value value): never given a "wrong" type.</summary>
    public IReadOnlyList<string> AnyJsonFields { get; init; } = [];

    /// <summary>The valid sample may write (so a payload the route accepts is accounted for, not an error).</summary>
    public bool Writes { get; init; }

    /// <summary>Known from the table (false: built from the route pattern alone, for a route added after the table).</summary>
    public bool Known { get; init; } = true;

    public string Label => $"{Method} {Pattern}";
}

/// <summary>The valid sample of every route Engram had when the corpus was written; newer routes get a generic one.</summary>
internal static class RouteSamples
{
    private static readonly Dictionary<string, QueryKind> ListFilters = new()
    {
        ["limit"] = QueryKind.Int,
        ["cursor"] = QueryKind.Cursor,
        ["user_id"] = QueryKind.Text,
        ["agent_id"] = QueryKind.Text,
        ["session_id"] = QueryKind.Text,
        ["namespace"] = QueryKind.Text,
        ["source"] = QueryKind.Text,
        ["type"] = QueryKind.Text,
        ["tier"] = QueryKind.Choice,
        ["tags"] = QueryKind.Text,
        ["tags_match"] = QueryKind.Choice,
        ["entity"] = QueryKind.Text,
        ["metadata.k"] = QueryKind.Text,
        ["created_after"] = QueryKind.Timestamp,
        ["updated_before"] = QueryKind.Timestamp,
    };

    public static readonly RouteSample[] Table =
    [
        new("GET", "/health", "/health", null, [200]),
        new("GET", "/health/live", "/health/live", null, [200]),
        new("GET", "/health/ready", "/health/ready", null, [200]),
        new("GET", "/v1/stats", "/v1/stats", null, [200]),
        new("GET", "/v1/scopes", "/v1/scopes", null, [200]),
        new("GET", "/metrics", "/metrics", null, [200]),
        new("GET", "/openapi/{documentName}.json", "/openapi/{documentName}.json", null, [200]) { Params = P("documentName", "v1") },

        new("POST", "/v1/memories", "/v1/memories",
            """{"content":"hostile probe","type":"fact","tier":"working","importance":0.5,"valence":0.1,"tags":["probe"],"entities":["Probe"],"metadata":{"k":"v"},"user_id":"hostile","ttl_seconds":3600}""",
            [200, 201]) { Writes = true, QueryParams = Q(("on_duplicate", QueryKind.Choice)) },
        new("POST", "/v1/memories/batch", "/v1/memories/batch",
            """{"items":[{"content":"hostile batch probe","user_id":"hostile","tags":["probe"]}]}""", [200]) { Writes = true, QueryParams = Q(("on_duplicate", QueryKind.Choice)) },
        new("GET", "/v1/memories", "/v1/memories", null, [200]) { QueryParams = new Dictionary<string, QueryKind>(ListFilters) { ["include_superseded"] = QueryKind.Bool } },
        new("DELETE", "/v1/memories", "/v1/memories", null, [200]) { Query = "user_id=hostile-nobody&confirm=true", QueryParams = ListFilters },
        new("GET", "/v1/memories/{id}", "/v1/memories/{id}", null, [200]) { Params = P("id", "$memory") },
        new("PATCH", "/v1/memories/{id}", "/v1/memories/{id}", """{"content":"scratch patched","importance":0.7,"tags":["p"],"metadata":{"k":1},"ttl_seconds":3600}""", [200])
            { Params = P("id", "$scratch"), Writes = true },
        new("DELETE", "/v1/memories/{id}", "/v1/memories/{id}", null, [404]) { Params = P("id", "$absent") },
        new("GET", "/v1/memories/{id}/history", "/v1/memories/{id}/history", null, [200]) { Params = P("id", "$memory") },
        new("GET", "/v1/jobs/{id}", "/v1/jobs/{id}", null, [404]) { Params = P("id", "$absent") },
        // Reflections (issue 16): links of a memory; a duplicates-only run (no model in the corpus server), which may flag seeded near-duplicates.
        new("GET", "/v1/memories/{id}/links", "/v1/memories/{id}/links", null, [200]) { Params = P("id", "$memory") },
        new("POST", "/v1/reflect", "/v1/reflect", """{"duplicates_only":true,"dry_run":true,"user_id":"hostile"}""", [200]) { Writes = true },

        new("POST", "/v1/search", "/v1/search",
            """{"query":"dark mode editor","k":3,"filters":{"user_id":"seed-alice","tags":["ui"],"metadata":{"app":"vscode"}},"min_score":0.0,"weights":{"recency":0.1},"explain":true}""", [200]),

        new("POST", "/v1/graph/entities", "/v1/graph/entities", """{"entities":[{"name":"HostileProbe","entity_type":"probe","observations":["seen"]}]}""", [200]) { Writes = true },
        new("POST", "/v1/graph/relations", "/v1/graph/relations", """{"relations":[{"from":"Alice","to":"Billing","relation_type":"hostile_rel","weight":0.5}]}""", [200]) { Writes = true },
        new("POST", "/v1/graph/observations", "/v1/graph/observations", """{"observations":[{"entity_name":"Nobody","contents":["x"]}]}""", [404]),
        new("POST", "/v1/graph/entities/delete", "/v1/graph/entities/delete", """{"entity_names":["Nobody"]}""", [200]),
        new("POST", "/v1/graph/observations/delete", "/v1/graph/observations/delete", """{"deletions":[{"entity_name":"Nobody","observations":["x"]}]}""", [200, 404]),
        new("POST", "/v1/graph/relations/delete", "/v1/graph/relations/delete", """{"relations":[{"from":"Nobody","to":"Noone","relation_type":"x"}]}""", [200]),
        new("GET", "/v1/graph", "/v1/graph", null, [200]) { QueryParams = Q(("include_invalid", QueryKind.Bool)) },
        new("GET", "/v1/graph/search", "/v1/graph/search", null, [200])
            { Query = "query=billing", QueryParams = Q(("query", QueryKind.Text), ("limit", QueryKind.Int), ("include_invalid", QueryKind.Bool)) },
        new("GET", "/v1/graph/nodes", "/v1/graph/nodes", null, [200]) { Query = "names=Alice", QueryParams = Q(("names", QueryKind.Text), ("include_invalid", QueryKind.Bool)) },
        new("GET", "/v1/graph/entities/{name}/neighbors", "/v1/graph/entities/{name}/neighbors", null, [200])
            { Params = P("name", "Alice"), QueryParams = Q(("depth", QueryKind.Int), ("relation_type", QueryKind.Text), ("include_invalid", QueryKind.Bool)) },
        new("GET", "/v1/graph/entities/{name}/memories", "/v1/graph/entities/{name}/memories", null, [200])
            { Params = P("name", "Alice"), QueryParams = Q(("limit", QueryKind.Int), ("cursor", QueryKind.Cursor)) },
        new("GET", "/v1/graph/entities/{name}/history", "/v1/graph/entities/{name}/history", null, [200]) { Params = P("name", "Alice") },
        new("GET", "/v1/graph/path", "/v1/graph/path", null, [200])
            { Query = "from=Alice&to=Billing", QueryParams = Q(("from", QueryKind.Text), ("to", QueryKind.Text), ("include_invalid", QueryKind.Bool)) },

        new("GET", "/v1/kv", "/v1/kv", null, [200]) { QueryParams = Q(("pattern", QueryKind.Glob), ("limit", QueryKind.Int), ("cursor", QueryKind.Cursor)) },
        new("POST", "/v1/kv/mget", "/v1/kv/mget", """{"keys":["seed:a","hostile:absent"]}""", [200]),
        new("POST", "/v1/kv/mset", "/v1/kv/mset", """{"items":[{"key":"hostile:mset","value":{"a":1},"ttl_seconds":3600}]}""", [200])
            { Writes = true, AnyJsonFields = ["value"] },
        new("POST", "/v1/kv/cleanup", "/v1/kv/cleanup", """{"pattern":"hostile:none:*"}""", [200]),
        new("PUT", "/v1/kv/{key}", "/v1/kv/{key}", """{"value":{"a":[1,"x"]},"ttl_seconds":3600,"nx":false,"xx":false}""", [200, 201])
            { Params = P("key", "hostile:put"), Writes = true, AnyJsonFields = ["value"] },
        new("GET", "/v1/kv/{key}", "/v1/kv/{key}", null, [200])
            { Params = P("key", "seed:a"), QueryParams = Q(("history", QueryKind.Bool), ("limit", QueryKind.Int), ("cursor", QueryKind.Cursor)) },
        new("DELETE", "/v1/kv/{key}", "/v1/kv/{key}", null, [404]) { Params = P("key", "hostile:absent") },
        new("POST", "/v1/kv/{key}", "/v1/kv/{key}/incr", """{"by":2}""", [200]) { Params = P("key", "hostile:counter"), Writes = true },
        new("POST", "/v1/kv/{key}", "/v1/kv/{key}/expire", """{"ttl_seconds":60}""", [404]) { Params = P("key", "hostile:absent") },

        // Operations (issue 14, guard): server-wide, admin only. The read-only sample turns it off, so no variant can close writes.
        new("GET", "/v1/admin/memory", "/v1/admin/memory", null, [200]),
        new("POST", "/v1/admin/cache/cleanup", "/v1/admin/cache/cleanup", null, [200]),
        new("POST", "/v1/admin/gc", "/v1/admin/gc", null, [200]),
        new("GET", "/v1/admin/readonly", "/v1/admin/readonly", null, [200]),
        new("POST", "/v1/admin/readonly", "/v1/admin/readonly", """{"enabled":false}""", [200]),
        // Backups (issue 14): admin only; a backup of the small seeded store takes well under a second.
        new("GET", "/v1/admin/backups", "/v1/admin/backups", null, [200]),
        new("POST", "/v1/admin/backups", "/v1/admin/backups", null, [201, 409]) { Writes = true },
        new("POST", "/v1/admin/backups/{name}/verify", "/v1/admin/backups/{name}/verify", null, [404]) { Params = P("name", "engram-absent.engram-backup") },
        // Export (issue 14): streamed JSON Lines of the caller's tenant (all_tenants=true: every tenant).
        // Alerts and memory-event webhooks (issue 19): admin only; the corpus server has none configured (lists answer empty).
        new("GET", "/v1/admin/alerts", "/v1/admin/alerts", null, [200]) { QueryParams = Q(("limit", QueryKind.Int)) },
        new("GET", "/v1/admin/webhooks/deliveries", "/v1/admin/webhooks/deliveries", null, [200]) { QueryParams = Q(("state", QueryKind.Choice), ("limit", QueryKind.Int)) },
        new("POST", "/v1/admin/webhooks/deliveries/{id}/retry", "/v1/admin/webhooks/deliveries/{id}/retry", null, [404]) { Params = P("id", "absent-delivery") },
        new("GET", "/v1/admin/export", "/v1/admin/export", null, [200]) { QueryParams = Q(("all_tenants", QueryKind.Bool)) },

        // Chat with memory (issue 16): the corpus server has a scripted model (FakeChatModel, an echo), so valid requests answer 200.
        new("POST", "/v1/chat", "/v1/chat", """{"messages":[{"role":"user","content":"dark mode editor"}],"user_id":"seed-alice","k":3,"lens":"valence"}""", [200]),
        new("POST", "/v1/chat/completions", "/v1/chat/completions", """{"messages":[{"role":"user","content":"dark mode editor"}],"user":"seed-alice"}""", [200]),
        new("GET", "/v1/models", "/v1/models", null, [200]),
        // The Telegram bot's webhook (issue 19): public; the corpus server runs no bot, so every request is a 404 problem.
        new("POST", "/v1/telegram/webhook", "/v1/telegram/webhook", """{"update_id":1,"message":{"message_id":1,"date":0,"chat":{"id":1,"type":"private"},"text":"hi"}}""", [404]),
        // The mem0-compatible API (issue 17): writes only in scope hostile, deletes only of nobody's memories.
        new("GET", "/v1/ping", "/v1/ping/", null, [200]),
        new("POST", "/v3/memories/add", "/v3/memories/add/",
            """{"messages":[{"role":"user","content":"hostile mem0 probe"}],"user_id":"hostile","agent_id":"hostile-agent","run_id":"r","app_id":"a","metadata":{"k":"v"},"infer":false,"timestamp":1700000000,"expiration_date":"2999-01-01","org_id":"o"}""",
            [200]) { Writes = true, AnyJsonFields = ["metadata"] },
        new("POST", "/v3/memories/search", "/v3/memories/search/",
            """{"query":"dark mode editor","filters":{"AND":[{"user_id":"seed-alice"},{"OR":[{"agent_id":"*"},{"NOT":{"metadata":{"app":{"ne":"vscode"}}}}]},{"created_at":{"gte":"2000-01-01"}}]},"top_k":5,"threshold":0.0,"rerank":false}""",
            [200]) { AnyJsonFields = ["filters"] },
        new("POST", "/v3/memories", "/v3/memories/", """{"filters":{"user_id":"seed-alice"}}""", [200])
            { Query = "page=1&page_size=10", QueryParams = Q(("page", QueryKind.Int), ("page_size", QueryKind.Int)), AnyJsonFields = ["filters"] },
        new("POST", "/v2/memories", "/v2/memories/", """{"filters":{"user_id":"seed-alice"}}""", [200])
            { QueryParams = Q(("page", QueryKind.Int), ("page_size", QueryKind.Int)), AnyJsonFields = ["filters"] },
        new("POST", "/v2/memories/search", "/v2/memories/search/", """{"query":"dark mode","filters":{"user_id":"seed-alice"},"top_k":3}""", [200]) { AnyJsonFields = ["filters"] },
        new("POST", "/v1/memories/search", "/v1/memories/search/", """{"query":"dark mode","user_id":"seed-alice","top_k":3}""", [200]),
        new("PUT", "/v1/memories/{id}", "/v1/memories/{id}/", """{"text":"scratch put","metadata":{"k":2}}""", [200])
            { Params = P("id", "$scratch"), Writes = true, AnyJsonFields = ["metadata"] },
        new("GET", "/v1/entities", "/v1/entities/", null, [200]) { QueryParams = Q(("page", QueryKind.Int), ("page_size", QueryKind.Int)) },
        new("DELETE", "/v1/entities/{type}/{name}", "/v1/entities/{type}/{name}/", null, [200]) { Params = new Dictionary<string, string> { ["type"] = "user", ["name"] = "hostile-nobody" } },
        new("DELETE", "/v2/entities/{type}/{name}", "/v2/entities/{type}/{name}/", null, [200]) { Params = new Dictionary<string, string> { ["type"] = "user", ["name"] = "hostile-nobody" } },
        new("PUT", "/v1/batch", "/v1/batch/", """{"memories":[{"memory_id":"00000000-0000-0000-0000-000000000000","text":"x"}]}""", [404]),
        new("DELETE", "/v1/batch", "/v1/batch/", """{"memories":[{"memory_id":"00000000-0000-0000-0000-000000000000"}]}""", [404]),
        new("GET", "/v1/event/{id}", "/v1/event/{id}/", null, [404]) { Params = P("id", "hostile-absent") },

        // The web UI (issue 18): pages are GETs whose blank form fields count as absent (no QueryParams: a blank value is no probe);
        // every form post needs the page's antiforgery token, which no probe has: 415 without a form body, 400 with one, 413 past the bound.
        new("GET", "/ui/assets/{name}", "/ui/assets/{name}", null, [404]) { Params = P("name", "app.0000000000000000.css") },
        new("GET", "/ui/login", "/ui/login", null, [200]),
        new("POST", "/ui/login", "/ui/login", null, [400, 413, 415]),
        new("POST", "/ui/logout", "/ui/logout", null, [400, 413, 415]),
        new("GET", "/ui", "/ui", null, [200]),
        new("GET", "/ui/memories", "/ui/memories", null, [200]) { Query = "user_id=seed-alice" },
        new("POST", "/ui/memories", "/ui/memories", null, [400, 413, 415]),
        new("POST", "/ui/memories/bulk-delete", "/ui/memories/bulk-delete", null, [400, 413, 415]),
        new("GET", "/ui/memories/{id}", "/ui/memories/{id}", null, [200]) { Params = P("id", "$scratch") },
        new("POST", "/ui/memories/{id}", "/ui/memories/{id}", null, [400, 413, 415]) { Params = P("id", "$scratch") },
        new("POST", "/ui/memories/{id}/delete", "/ui/memories/{id}/delete", null, [400, 413, 415]) { Params = P("id", "$scratch") },
        new("GET", "/ui/search", "/ui/search", null, [200]) { Query = "q=dark+mode&user_id=seed-alice" },
        new("GET", "/ui/graph", "/ui/graph", null, [200]),
        new("GET", "/ui/kv", "/ui/kv", null, [200]) { Query = "pattern=seed:*" },
        new("GET", "/ui/scopes", "/ui/scopes", null, [200]),
        new("GET", "/ui/admin", "/ui/admin", null, [200]),
        new("GET", "/ui/admin/export", "/ui/admin/export", null, [200]),
        new("POST", "/ui/admin/keys", "/ui/admin/keys", null, [400, 413, 415]),
        new("POST", "/ui/admin/keys/{id}/revoke", "/ui/admin/keys/{id}/revoke", null, [400, 413, 415]) { Params = P("id", "absent") },
        new("POST", "/ui/admin/keys/{id}/rotate", "/ui/admin/keys/{id}/rotate", null, [400, 413, 415]) { Params = P("id", "absent") },
        new("POST", "/ui/admin/readonly", "/ui/admin/readonly", null, [400, 413, 415]),
        new("POST", "/ui/admin/backups", "/ui/admin/backups", null, [400, 413, 415]),
        new("POST", "/ui/admin/backups/{name}/verify", "/ui/admin/backups/{name}/verify", null, [400, 413, 415]) { Params = P("name", "engram-absent.engram-backup") },

        // MCP (Streamable HTTP): a read-only tool call, so no spoiled variant can write; answers per Exceptions.Mcp.
        new("POST", "/mcp", "/mcp", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"memory_get","arguments":{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}}}""", [200]),
    ];

    /// <summary>The samples of every served route and method; a route the table does not know gets a generic one.</summary>
    public static IReadOnlyList<RouteSample> For(IReadOnlyList<ServedRoute> routes)
    {
        var samples = new List<RouteSample>();
        foreach (var route in routes)
        {
            foreach (var (method, requestType) in route.Methods)
            {
                var known = Table.Where(s => s.Method == method && s.Pattern == route.Template).ToList();
                samples.AddRange(known.Count > 0 ? known : [Generic(route, method, requestType)]);
            }
        }
        return samples;
    }

    /// <summary>Samples of the table that name no served route (a route renamed or removed): the table is stale.</summary>
    public static IEnumerable<string> Stale(IReadOnlyList<ServedRoute> routes) =>
        Table.Where(s => !routes.Any(r => r.Template == s.Pattern && r.Methods.ContainsKey(s.Method))).Select(s => s.Label);

    private static RouteSample Generic(ServedRoute route, string method, Type? requestType) =>
        new(method, route.Template, route.Template, requestType is null ? null : "{}", [])
        {
            Params = route.Parameters.ToDictionary(p => p, _ => "probe"),
            Known = false,
        };

    private static Dictionary<string, string> P(string name, string value) => new() { [name] = value };

    private static Dictionary<string, QueryKind> Q(params (string Name, QueryKind Kind)[] parameters) => parameters.ToDictionary(p => p.Name, p => p.Kind);
}
