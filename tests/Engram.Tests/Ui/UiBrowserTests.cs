using System.Net.Http.Json;
using Engram.Core.Security;
using Engram.Tests.Support;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Engram.Tests.Ui;

/// <summary>
/// One Engram server (with API keys, on a temporary data folder) and one headless Chromium for the browser tests:
/// Debian's /usr/bin/chromium driven by Playwright's bundled driver; no browser is ever downloaded.
/// </summary>
public class UiBrowserFixture : IAsyncLifetime
{
    protected virtual Backend Backend => Backend.Sqlite;

    /// <summary>Put before each screenshot's name (the PostgreSQL run keeps its own).</summary>
    protected virtual string ShotPrefix => "";

    public EngramServer Server { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    public string AdminKey { get; private set; } = null!;

    public HttpClient Rest { get; private set; } = null!;

    /// <summary>Screenshots of every page, kept as test artifacts beside the test assembly.</summary>
    public static string Screenshots { get; } = Path.Combine(AppContext.BaseDirectory, "TestResults", "ui-screenshots");

    private IPlaywright _playwright = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Screenshots);
        Server = await EngramServer.StartAsync(Backend);
        AdminKey = await Server.CreateKeyAsync("default", Role.Admin, name: "browser-admin");
        Rest = Server.ClientWithKey(AdminKey);
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
    }

    /// <summary>A fresh browser context (its own cookies) logged in with the admin key through the login form.</summary>
    public async Task<IPage> LoggedInPageAsync(int width = 1280, int height = 900, bool javaScript = true)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = Server.BaseAddress.ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height },
            JavaScriptEnabled = javaScript,
        });
        var page = await context.NewPageAsync();
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync(); // data-confirm prompts: answer yes
        await page.GotoAsync("/ui");
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/ui/login\\?return=%2Fui$"));
        await page.GetByLabel("API key").FillAsync(AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/ui$"));
        return page;
    }

    public Task ShotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, ShotPrefix + name + ".png"), FullPage = true });

    public async Task<string> CreateAsync(object body)
    {
        var response = await Rest.PostAsJsonAsync("/v1/memories", body);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("id").GetString()!;
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>The web UI in a real browser (issue 18): log in, add, search with explain, edit with a conflict, history, delete, graph, key-value, scopes, admin.</summary>
[Trait("Category", "Browser")]
public sealed class UiBrowserTests(UiBrowserFixture ui) : IClassFixture<UiBrowserFixture>
{
    [Fact]
    public Task Log_in_add_a_memory_and_search_it_with_explain_and_two_weight_settings() => UiBrowserFlows.LogInAddAndSearchAsync(ui);

    [Fact]
    public Task Edit_with_a_conflict_then_history_and_delete() => UiBrowserFlows.EditWithConflictAsync(ui);

    /// <summary>
    /// Saving an edit of the content alone leaves the other fields as stored. A probe (session 47) found the form split
    /// "Acme, Inc." into two entities (one comma-separated field) and wrote importance back rounded to 3 decimals, and
    /// a value finer than its step (0.01) made the browser refuse to submit the form at all.
    /// </summary>
    [Fact]
    public async Task Saving_an_edit_of_the_content_keeps_entities_with_commas_and_an_exact_importance()
    {
        var id = await ui.CreateAsync(new { content = "Dana works at Acme", user_id = "dana", entities = new[] { "Acme, Inc.", "Dana" }, importance = 0.123456789 });
        var page = await ui.LoggedInPageAsync();
        await page.GotoAsync($"/ui/memories/{id}");
        var edit = page.Locator("#edit");
        await edit.Locator("textarea[name=content]").FillAsync("Dana works at Acme in Berlin");
        await edit.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.Locator(".notice.ok")).ToHaveTextAsync("Saved as version 2.");

        var stored = await (await ui.Rest.GetAsync($"/v1/memories/{id}")).JsonAsync();
        stored.GetProperty("content").GetString().Should().Be("Dana works at Acme in Berlin");
        stored.GetProperty("entities").EnumerateArray().Select(e => e.GetString()).Should().Equal("Acme, Inc.", "Dana");
        stored.GetProperty("importance").GetDouble().Should().Be(0.123456789);

        // A new entity is a new line.
        await edit.Locator("textarea[name=entities]").FillAsync("Acme, Inc.\nDana\nBerlin");
        await edit.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.Locator(".notice.ok")).ToHaveTextAsync("Saved as version 3.");
        stored = await (await ui.Rest.GetAsync($"/v1/memories/{id}")).JsonAsync();
        stored.GetProperty("entities").EnumerateArray().Select(e => e.GetString()).Should().Equal("Acme, Inc.", "Dana", "Berlin");
    }

    [Fact]
    public async Task Graph_key_value_and_scopes_pages()
    {
        (await ui.Rest.PostAsJsonAsync("/v1/graph/entities", new
        {
            entities = new[]
            {
                new { name = "Dana", entity_type = "person", observations = new[] { "leads the platform team" } },
                new { name = "Platform", entity_type = "team", observations = new[] { "owns the deploy pipeline" } },
                new { name = "Berlin", entity_type = "city", observations = new[] { "office since 2024" } },
            },
        })).EnsureSuccessStatusCode();
        (await ui.Rest.PostAsJsonAsync("/v1/graph/relations", new
        {
            relations = new[] { new { from = "Dana", to = "Platform", relation_type = "leads" }, new { from = "Platform", to = "Berlin", relation_type = "based_in" } },
        })).EnsureSuccessStatusCode();
        (await ui.Rest.PutAsJsonAsync("/v1/kv/session/dana", new { value = new { theme = "dark", step = 3 }, ttl_seconds = 600 })).EnsureSuccessStatusCode();
        (await ui.Rest.PutAsJsonAsync("/v1/kv/session/dana", new { value = new { theme = "dark", step = 4 }, ttl_seconds = 600 })).EnsureSuccessStatusCode();
        await ui.CreateAsync(new { content = "Dana moved to Berlin", user_id = "dana", entities = new[] { "Dana" } });

        var page = await ui.LoggedInPageAsync();
        await page.GotoAsync("/ui/graph?entity=Dana&depth=2");
        await Expect(page.Locator("#graph circle")).ToHaveCountAsync(3);
        await Expect(page.Locator("#neighbours")).ToContainTextAsync("owns the deploy pipeline");
        await Expect(page.Locator("main")).ToContainTextAsync("Dana moved to Berlin");
        await ui.ShotAsync(page, "graph");
        await page.Locator("#graph a[aria-label=Berlin]").ClickAsync();
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("entity=Berlin"));

        await page.GotoAsync("/ui/kv?pattern=session*");
        await page.GetByRole(AriaRole.Link, new() { Name = "session/dana" }).ClickAsync();
        await Expect(page.Locator("#kv-value pre").First).ToContainTextAsync("\"step\":4");
        await Expect(page.Locator("#kv-value [data-expires]")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^(59\\d|600) s$"));
        await Expect(page.Locator("#kv-value ol.timeline li")).ToHaveCountAsync(2);
        await ui.ShotAsync(page, "kv");

        await page.GotoAsync("/ui/scopes");
        await Expect(page.Locator("main table")).ToContainTextAsync("dana");
        await ui.ShotAsync(page, "scopes");

        var phone = await ui.LoggedInPageAsync(390, 844);
        await phone.GotoAsync("/ui/memories");
        (await phone.EvaluateAsync<int>("document.documentElement.scrollWidth")).Should().BeLessThanOrEqualTo(390, "no sideways scrolling on a phone");
        await ui.ShotAsync(phone, "memories-phone");
    }

    [Fact]
    public async Task Admin_creates_and_revokes_a_key_switches_read_only_and_backs_up()
    {
        var page = await ui.LoggedInPageAsync();
        await page.GotoAsync("/ui/admin");
        var create = page.Locator("form[action='/ui/admin/keys']");
        await create.GetByLabel("Name").FillAsync("ci-reader");
        await create.GetByLabel("Role").SelectOptionAsync("read");
        await create.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        await Expect(page.Locator("#new-key")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^egm_"));
        var newKey = await page.Locator("#new-key").TextContentAsync();
        (await ui.Server.ClientWithKey(newKey!).GetAsync("/v1/memories")).StatusCode.Should().Be(System.Net.HttpStatusCode.OK);

        await page.Locator("#keys tr", new() { HasText = "ci-reader" }).GetByRole(AriaRole.Button, new() { Name = "Revoke" }).ClickAsync();
        await Expect(page.Locator(".notice.ok")).ToContainTextAsync("Revoked key");
        (await ui.Server.ClientWithKey(newKey!).GetAsync("/v1/memories")).StatusCode.Should().Be(System.Net.HttpStatusCode.Unauthorized);

        await page.GetByRole(AriaRole.Button, new() { Name = "Switch to read-only" }).ClickAsync();
        await Expect(page.Locator("#readonly-state")).ToContainTextAsync("read-only");
        (await ui.Rest.PostAsJsonAsync("/v1/memories", new { content = "refused while read-only" })).StatusCode.Should().Be(System.Net.HttpStatusCode.ServiceUnavailable);
        await page.GetByRole(AriaRole.Button, new() { Name = "Accept writes again" }).ClickAsync();
        await Expect(page.Locator("#readonly-state")).ToContainTextAsync("accepting writes");

        await page.GetByRole(AriaRole.Button, new() { Name = "Back up now" }).ClickAsync();
        await Expect(page.Locator(".notice.ok")).ToContainTextAsync("verified: ok");
        await page.Locator("#backups").GetByRole(AriaRole.Button, new() { Name = "Verify" }).First.ClickAsync();
        await Expect(page.Locator(".notice.ok")).ToContainTextAsync("verified: ok");
        await Expect(page.Locator("#audit")).ToContainTextAsync("key.revoke");
        await Expect(page.Locator("#config")).ToContainTextAsync("\"data_path\"");
        await ui.ShotAsync(page, "admin");
    }

    /// <summary>
    /// The hostile-input probe (session 2026-12-07) in a browser: markup and script in every stored value the pages show
    /// (content, scope, tags, metadata, entities, relation types, observations, key-value keys and values, an API key's
    /// name) and in a search, with the UI's own script running (the graph drawn from data-graph, streamed results). No
    /// dialog opens and nothing trips the CSP, which would mean markup got through the encoding and was only blocked.
    /// </summary>
    [Fact]
    public async Task Hostile_stored_values_run_no_script_on_any_page()
    {
        string[] payloads = ["<img src=x onerror=alert('pwned')>", "\"><svg onload=alert('pwned')>", "</textarea><script>alert('pwned')</script>", "javascript:alert('pwned')"];
        var ids = new List<string>();
        for (var i = 0; i < payloads.Length; i++)
        {
            var p = payloads[i];
            ids.Add(await ui.CreateAsync(new { content = "hostile " + p, user_id = "hostile-" + i + p, tags = new[] { "t" + p }, entities = new[] { "E" + i + p }, metadata = new Dictionary<string, string> { ["k" + p] = p } }));
            (await ui.Rest.PostAsJsonAsync("/v1/graph/entities", new { entities = new[] { new { name = "H" + i + p, entity_type = "t", observations = new[] { p } } } })).EnsureSuccessStatusCode();
            (await ui.Rest.PutAsJsonAsync("/v1/kv/" + Uri.EscapeDataString("hostile" + i + p), new { value = p })).EnsureSuccessStatusCode();
        }
        for (var i = 0; i < payloads.Length; i++)
        {
            (await ui.Rest.PostAsJsonAsync("/v1/graph/relations", new { relations = new[] { new { from = "H" + i + payloads[i], to = "H" + ((i + 1) % payloads.Length) + payloads[(i + 1) % payloads.Length], relation_type = payloads[i] } } }))
                .EnsureSuccessStatusCode();
        }
        await ui.Server.CreateKeyAsync("default", Role.Read, name: "key<img_src=x_onerror=alert('pwned')>");
        var page = await ui.LoggedInPageAsync();
        var dialogs = new List<string>();
        var violations = new List<string>();
        page.Dialog += (_, dialog) => dialogs.Add(dialog.Message);
        page.Console += (_, message) =>
        {
            if (message.Text.Contains("Content Security Policy", StringComparison.Ordinal))
            {
                violations.Add(message.Text);
            }
        };

        var paths = new List<string> { "/ui", "/ui/memories", "/ui/search?q=hostile&compare=on", "/ui/search?q=" + Uri.EscapeDataString(payloads[0]), "/ui/graph", "/ui/kv", "/ui/scopes", "/ui/admin" };
        paths.AddRange(ids.Select(id => "/ui/memories/" + id));
        paths.AddRange(payloads.Select((p, i) => "/ui/kv?key=" + Uri.EscapeDataString("hostile" + i + p)));
        paths.AddRange(payloads.Select((p, i) => "/ui/graph?entity=" + Uri.EscapeDataString("H" + i + p))); // last: a graph page, drawn below
        foreach (var path in paths)
        {
            var response = await page.GotoAsync(path);
            response!.Status.Should().Be(200, path);
            await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
            (await page.EvaluateAsync<int>("document.querySelectorAll('script:not([src]), img[src=x], svg[onload], [onerror]').length")).Should().Be(0, path);
        }
        await Expect(page.Locator("#graph circle").First).ToBeVisibleAsync(); // the last graph page was drawn: its script ran
        dialogs.Should().BeEmpty("no stored value may run script");
        violations.Should().BeEmpty("nothing stored may even reach the CSP as markup");
    }
}

/// <summary>The browser flows the SQLite and the PostgreSQL runs share.</summary>
internal static class UiBrowserFlows
{
    public static async Task LogInAddAndSearchAsync(UiBrowserFixture ui)
    {
        await ui.CreateAsync(new { content = "Alice prefers dark mode in every editor", user_id = "alice", type = "preference", tags = new[] { "editor", "ui" }, importance = 0.8 });
        await ui.CreateAsync(new { content = "Alice works on the Engram search ranking", user_id = "alice", type = "fact", entities = new[] { "Engram" } });
        await ui.CreateAsync(new { content = "Bob drinks green tea every morning", user_id = "bob", type = "fact", tags = new[] { "habit" } });
        var page = await ui.LoggedInPageAsync();
        await Expect(page.Locator("main")).ToContainTextAsync("memories");
        await ui.ShotAsync(page, "overview");

        await page.GotoAsync("/ui/memories");
        var add = page.Locator("#add");
        await add.Locator("textarea[name=content]").FillAsync("Alice's team meets on Tuesdays at 10");
        await add.Locator("input[name=user_id]").FillAsync("alice");
        await add.Locator("input[name=tags]").FillAsync("meetings");
        await add.GetByRole(AriaRole.Button, new() { Name = "Add" }).ClickAsync();
        await Expect(page.Locator(".notice.ok")).ToHaveTextAsync("Added.");
        await Expect(page.Locator("#memory-content")).ToHaveTextAsync("Alice's team meets on Tuesdays at 10");

        await page.GotoAsync("/ui/memories?user_id=alice");
        await Expect(page.Locator("tbody tr")).ToHaveCountAsync(3);
        await ui.ShotAsync(page, "memories");

        await page.GotoAsync("/ui/search?q=dark+mode+editor&user_id=alice");
        await Expect(page.Locator("#results-a li.result").First).ToContainTextAsync("dark mode");
        (await page.Locator("#results-a .bars.explain span").CountAsync()).Should().BeGreaterThan(0);
        await Expect(page.Locator("output[for=a_semantic]")).ToHaveTextAsync("0.60", new() { Timeout = 5000 });
        await page.Locator("#a_lexical").FillAsync("1");
        await Expect(page.Locator("output[for=a_lexical]")).ToHaveTextAsync("1.00", new() { Timeout = 5000 });
        await page.GetByLabel("Compare with a second setting").CheckAsync();
        await page.Locator("#b_semantic").FillAsync("0");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("compare=on"));
        await Expect(page.Locator("#results-b li.result").First).ToBeVisibleAsync();
        await ui.ShotAsync(page, "search");
        (await page.Locator("blazor-ssr").CountAsync()).Should().Be(0, "the streamed results were put in place");

        // With JavaScript off nothing is streamed: the results come in place in the one response.
        var noScript = await ui.LoggedInPageAsync(javaScript: false);
        await noScript.GotoAsync("/ui/search?q=dark+mode+editor&user_id=alice&compare=on");
        await Expect(noScript.Locator("#results-a li.result").First).ToContainTextAsync("dark mode");
        await Expect(noScript.Locator("#results-b li.result").First).ToContainTextAsync("dark mode");
        await Expect(noScript.Locator("main")).Not.ToContainTextAsync("Searching");
    }

    public static async Task EditWithConflictAsync(UiBrowserFixture ui)
    {
        var id = await ui.CreateAsync(new { content = "The release is planned for March", user_id = "carol" });
        var page = await ui.LoggedInPageAsync();
        await page.GotoAsync($"/ui/memories/{id}");
        (await ui.Rest.PatchAsync($"/v1/memories/{id}", JsonContent.Create(new { content = "The release is planned for April" }))).EnsureSuccessStatusCode();

        var edit = page.Locator("#edit");
        await edit.Locator("textarea[name=content]").FillAsync("The release is planned for May");
        await edit.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.Locator(".notice.error")).ToContainTextAsync("Conflict");
        await Expect(page.Locator("#memory-content")).ToHaveTextAsync("The release is planned for April");
        await Expect(edit.Locator("textarea[name=content]")).ToHaveValueAsync("The release is planned for May");
        await ui.ShotAsync(page, "edit-conflict");

        await edit.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.Locator(".notice.ok")).ToHaveTextAsync("Saved as version 3.");
        var history = page.Locator("ol.timeline li");
        await Expect(history).ToHaveCountAsync(3);
        await Expect(history.First.Locator("ins").First).ToHaveTextAsync("The release is planned for May");
        await Expect(history.First.Locator("del").First).ToHaveTextAsync("The release is planned for April");
        await ui.ShotAsync(page, "memory-history");

        await page.GetByRole(AriaRole.Button, new() { Name = "Delete" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/ui/memories$"));
        await Expect(page.Locator(".notice.ok")).ToHaveTextAsync($"Deleted {id}.");
        (await ui.Rest.GetAsync($"/v1/memories/{id}")).StatusCode.Should().Be(System.Net.HttpStatusCode.NotFound);
    }
}

/// <summary>The browser fixture on a PostgreSQL database.</summary>
public sealed class PostgresUiBrowserFixture : UiBrowserFixture
{
    protected override Backend Backend => Backend.Postgres;

    protected override string ShotPrefix => "postgres-";
}

/// <summary>The web UI in Chromium on PostgreSQL: log in, add, search with explain (streamed and not), edit with a conflict, history, delete.</summary>
[Trait("Category", "Browser")]
public sealed class PostgresUiBrowserTests(PostgresUiBrowserFixture ui) : IClassFixture<PostgresUiBrowserFixture>
{
    [Fact]
    public async Task Log_in_add_search_with_explain_and_edit_with_a_conflict_on_postgres()
    {
        await UiBrowserFlows.LogInAddAndSearchAsync(ui);
        await UiBrowserFlows.EditWithConflictAsync(ui);
    }
}
