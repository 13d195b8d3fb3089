using Engram.Core;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Server.Http;
using Engram.Server.Http.Mem0;
using Engram.Server.Jobs;
using Engram.Server.Mcp;
using Engram.Server.Operations;
using Engram.Server.Ui;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Engram.Server;

/// <summary>
/// Builds the Engram host: the library seam the CLI's <c>serve</c>, the tests and the benchmarks
/// all use, so they run the same server.
/// </summary>
public static class ServerApplication
{
    /// <summary>
    /// Creates the web application. Configuration, lowest to highest: appsettings.json, environment
    /// (ENGRAM_DATA, Engram__*), <paramref name="args"/>, then <paramref name="configure"/> (CLI flags, tests).
    /// </summary>
    public static WebApplication Build(string[]? args = null, Action<EngramServerOptions>? configure = null, TimeProvider? clock = null, string? urls = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = args ?? [],
            ContentRootPath = AppContext.BaseDirectory,
        });
        MapOperatorVariables(builder.Configuration);
        var started = new StartupLog.StartedFlag();
        StartupLog.Configure(builder.Logging, started);
        var listenUrls = urls ?? builder.Configuration["urls"] ?? EngramServerOptions.DefaultUrls;
        builder.WebHost.UseUrls(listenUrls);
        builder.WebHost.ConfigureKestrel(RequestLimits.ConfigureKestrel);
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(15));

        var options = EngramServerOptions.Bind(builder.Configuration);
        configure?.Invoke(options);
        // The caches the server sizes stay within a share of the memory budget (Operations.MemoryBudget).
        Operations.MemoryBudget.Resolve(options.Memory.BudgetMB).CapCaches(options);
        var errors = options.Validate().Concat(ListenAddresses.CheckSyntax(listenUrls)).Concat(TlsOptions.CheckUrls(listenUrls, options.Tls)).ToList();
        if (errors.Count == 0 && options.Backup.FolderRefusal(options.DataPath) is { } backupFolder)
        {
            errors.Add(backupFolder);
        }
        if (errors.Count > 0)
        {
            throw new OptionsValidationException(EngramServerOptions.Section, typeof(EngramServerOptions), errors);
        }

        // Bodies are bounded per route (RequestBodyLimits, applied by JsonBody); a route that reads none gets the smallest bound.
        var bodyLimits = new RequestBodyLimits(options);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = bodyLimits.Small);
        builder.Services.AddSingleton(bodyLimits);
        // Limits (issue 11): TLS certificate, CORS allow-list, rate limits, request time-outs.
        var tlsCertificate = options.Tls.Enabled ? options.Tls.LoadCertificate() : null;
        builder.WebHost.UseKestrelHttpsConfiguration(); // the slim builder leaves https:// addresses out
        if (tlsCertificate is not null)
        {
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureHttpsDefaults(https => https.ServerCertificate = tlsCertificate));
        }
        var origins = new OriginPolicy(options.Cors.AllowedOrigins);
        builder.Services.AddSingleton(origins);
        builder.Services.AddSingleton<Http.Mem0.Mem0Events>();
        if (origins.CorsEnabled)
        {
            builder.Services.AddEngramCors(origins);
        }
        if (options.RateLimit.Enabled)
        {
            builder.Services.AddEngramRateLimits(options.RateLimit);
        }
        if (options.RequestTimeoutSeconds > 0)
        {
            builder.Services.AddEngramRequestTimeouts(options.RequestTimeoutSeconds);
        }
        builder.Services.AddSingleton(Options.Create(options));
        // One server per data folder (ServerLock); resolved before the store, so disposed after it.
        builder.Services.AddSingleton(_ => ServerLock.Acquire(options.DataPath));
        builder.Services.AddSingleton(clock ?? TimeProvider.System);
        builder.Services.AddSingleton(sp =>
        {
            var store = StoreFactory.Open(options.StoreLocation, sp.GetRequiredService<TimeProvider>());
            if (store is Core.Storage.Sqlite.SqliteMemoryStore { OpenNotices.Count: > 0 } sqlite)
            {
                // What the open recovered from (a key-value journal set aside or damaged): the store has no logger of its own.
                var log = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Engram.Storage");
                foreach (var notice in sqlite.OpenNotices)
                {
                    log.LogError("{Notice} ({Kind}; GET /health lists it, engram_store_notices counts it)", notice.Message, notice.Kind);
                }
            }
            return new EngramEngine(store, options.Limits, options.Search, options.Embeddings.CreateProvider(options.Outbound),
                sp.GetRequiredService<TimeProvider>(), options.SnapshotFile(), options.KeyValue);
        });
        builder.Services.AddSingleton(_ => new Core.Llm.LlmAccess(Core.Llm.LanguageModel.CreateIfConfigured(options.Llm, options.Outbound)));
        builder.Services.AddSingleton(sp => new Core.Reflection.ReflectionService(sp.GetRequiredService<EngramEngine>(), sp.GetRequiredService<Core.Llm.LlmAccess>(),
            options.Reflect));
        builder.Services.AddSingleton(sp => sp.GetRequiredService<EngramEngine>().Store);
        builder.Services.AddSingleton(sp => sp.GetRequiredService<EngramEngine>().Memories);
        builder.Services.AddSingleton(sp => sp.GetRequiredService<EngramEngine>().Search);
        builder.Services.AddSingleton(sp => sp.GetRequiredService<EngramEngine>().Graph);
        builder.Services.AddSingleton(sp => sp.GetRequiredService<EngramEngine>().KeyValue);
        builder.Services.AddSingleton(sp => (IKeyValueStore)sp.GetRequiredService<EngramEngine>().Store);
        // API keys and the audit log (auth). The trail is resolved after the engine, so it is disposed (drained) before the store closes.
        builder.Services.AddSingleton(sp => new AuditTrail((IAuditLog)sp.GetRequiredService<IMemoryStore>(), options.Auth.AuditMaxRows));
        builder.Services.AddSingleton(sp => (IAuditLog)sp.GetRequiredService<IMemoryStore>());
        builder.Services.AddSingleton(sp => new ApiKeyService((IApiKeyStore)sp.GetRequiredService<IMemoryStore>(), sp.GetRequiredService<AuditTrail>(),
            sp.GetRequiredService<TimeProvider>(), options.Auth.KeyCacheSize));
        builder.Services.AddSingleton(new FailedAuthThrottle(options.Auth.FailedAttemptsPerMinute, options.RateLimit.MaxClients));
        var nonLoopback = ListenAddresses.FirstNonLoopback(listenUrls, builder.Configuration);
        builder.Services.AddSingleton(new AuthMode(OpenAllowed: nonLoopback is null));
        // MCP over Streamable HTTP at /mcp, stateless: the tools read the caller of the HTTP request.
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddSingleton<IMcpCallerSource, HttpMcpCallerSource>();
        builder.Services.AddEngramMcp().WithHttpTransport(http => http.Stateless = true);
        // Extraction (issue 16): the conversation extractor (POST /v1/memories with messages, the chat's remember) and its workers.
        builder.Services.AddSingleton(sp => new Core.Llm.ConversationExtractor((Core.Llm.IExtractionJobStore)sp.GetRequiredService<EngramEngine>().Store,
            sp.GetRequiredService<EngramEngine>().Memories, sp.GetRequiredService<EngramEngine>().Search, sp.GetRequiredService<EngramEngine>().Graph,
            sp.GetRequiredService<Core.Llm.LlmAccess>(), sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddSingleton<Core.Llm.IConversationExtractor>(sp => sp.GetRequiredService<Core.Llm.ConversationExtractor>());
        builder.Services.AddHostedService<ExtractionWorkers>();
        builder.Services.AddHostedService<ExpirySweeper>();
        if (options.Resp.Enabled)
        {
            if (options.Resp.InlineCompletions)
            {
                Resp.InlineTransport.UseEventThreadPerCore();
            }
            // The Redis protocol endpoint (issue 20); a singleton too, so the start-up summary and tests can ask it for the port bound.
            builder.Services.AddSingleton<Resp.RespListener>();
            builder.Services.AddHostedService(services => services.GetRequiredService<Resp.RespListener>());
        }
        builder.Services.AddHostedService<IndexMaintenance>();
        builder.Services.AddHostedService<ReflectionScheduler>(); // reflections (issue 16): on when a model is configured, or Engram:Reflect:Enabled
        builder.Services.AddEngramMetrics();
        // Operations (issue 14): the memory monitor (budget, load shedding), the health checks, read-only mode.
        builder.Services.AddSingleton<Operations.MemoryMonitor>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Operations.MemoryMonitor>());
        builder.Services.AddSingleton(sp => new Operations.HealthChecks(sp.GetRequiredService<EngramEngine>(), options, sp.GetRequiredService<Operations.MemoryMonitor>(),
            sp.GetRequiredService<Core.Llm.LlmAccess>()));
        // Alerts and memory-event webhooks (issue 19): off unless configured; the admin API lists them either way.
        builder.Services.AddSingleton(sp => new Alerts.AlertSignals(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>(), options.Alerts.IsOn ? sp.GetRequiredService<EngramEngine>().Search : null));
        builder.Services.AddSingleton<Alerts.AlertService>();
        builder.Services.AddSingleton(sp => new Operations.RequestRate(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>(), sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Alerts.AlertService>());
        builder.Services.AddSingleton<Webhooks.MemoryEventWebhooks>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Webhooks.MemoryEventWebhooks>());
        builder.Services.AddSingleton<BackupService>(); // backups (issue 14): REST and the schedule
        AddUi(builder.Services, options); // the web UI at /ui (issue 18)
        if (options.Backup.Enabled)
        {
            builder.Services.AddHostedService<BackupScheduler>();
        }
        if (options.Telegram.Enabled)
        {
            // The Telegram chat bot (issue 19): long polling, or the webhook route below with TELEGRAM_WEBHOOK_URL.
            builder.Services.AddSingleton<Telegram.TelegramConversation>();
            builder.Services.AddSingleton<Telegram.TelegramBot>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<Telegram.TelegramBot>());
        }
        builder.Services.ConfigureHttpJsonOptions(json => EngramJson.Configure(json.SerializerOptions));
        builder.Services.AddProblemDetails();
        builder.Services.AddOpenApi(OpenApiDocuments.Name, openApi => openApi.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "Engram";
            document.Info.Description = "Persistent memory for AI agents.";
            document.Info.Version = SystemEndpoints.Version;
            return Task.CompletedTask;
        }).AddSchemaTransformer(OpenApiSchemas.DescribeCustomConverters));

        var app = builder.Build();
        app.Services.GetRequiredService<Operations.RequestRate>(); // listening from the first request, not from the overview's first view
        // Lock the folder and open the store now: a second server, a bad data folder or a too-new
        // schema fails the start, not the first request.
        var serverLock = app.Services.GetRequiredService<ServerLock>();
        try
        {
            app.Services.GetRequiredService<EngramEngine>().Gate.ReadOnly = options.ReadOnly;
            app.Services.GetRequiredService<EngramEngine>().Access.Capacity = Operations.MemoryBudget.Resolve(options.Memory.BudgetMB).AccessCounts();
            app.Services.GetRequiredService<BackupService>(); // the backup metrics, seeded from the backup folder
        }
        catch
        {
            serverLock.Dispose();
            throw;
        }
        // With no API keys Engram is open: refuse to listen beyond loopback before anything binds (auth).
        var keys = app.Services.GetRequiredService<ApiKeyService>();
        keys.RefreshAsync().GetAwaiter().GetResult();
        if (!keys.HasActiveKeys && nonLoopback is not null)
        {
            app.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw new OpenModeRefusedException(
                $"no API keys exist, so Engram serves only on loopback and will not listen on {nonLoopback}; create a key first: " +
                $"engram keys create --data {options.DataPath} --tenant default --role admin");
        }
        StartupLog.ReportWhenStarted(app, options, started);
        StartupLog.ReportUnknownSettings(app, UnknownSettings.Find(builder.Configuration));

        // HEAD outermost, so it counts the problem bodies too; routing after both, so HEAD reaches the
        // GET endpoints and a refusal by the limits is a problem body.
        if (tlsCertificate is not null && options.Tls.HstsMaxAgeSeconds > 0)
        {
            app.UseMiddleware<Hsts>(options.Tls.HstsMaxAgeSeconds); // header added as the response starts, so its place does not matter
        }
        app.UseMiddleware<HeadRequestMiddleware>();
        app.UseMiddleware<ProblemMiddleware>();
        app.UseMiddleware<RequestLimits>();
        app.UseMiddleware<RawPathRouting>(); // keys and entity names with a "." or ".." segment are routed as sent
        app.UseRouting();
        if (origins.CorsEnabled)
        {
            app.UseEngramCors(origins); // before the authentication gate: answers allowed origins' preflights, which carry no key
        }
        app.UseMcpRequestChecks(); // the MCP spec's Origin check (a foreign page gets 403 whatever key it has) and the body bound of /mcp
        app.UseMiddleware<AuthenticationGate>(); // sets the caller (tenant, role, scope) every endpoint and the limiter read
        if (options.RateLimit.Enabled)
        {
            app.UseMiddleware<RateLimitMiddleware>(); // after the authentication gate: partitions by the caller's key, else its address
        }
        if (options.RequestTimeoutSeconds > 0)
        {
            app.UseRequestTimeouts(); // after the gate and the limiter: the budget counts the endpoint's work, not a queue wait
        }

        app.MapOpenApi("/openapi/{documentName}.json").AddEndpointFilter(OpenApiDocuments.OnlyKnown).Requires(Core.Security.Role.Read);
        app.MapSystemEndpoints();
        app.MapMemoriesEndpoints();
        app.MapJobsEndpoints();
        app.MapSearchEndpoints();
        app.MapGraphEndpoints();
        app.MapKeyValueEndpoints();
        app.MapAdminEndpoints();
        app.MapOperationsEndpoints();
        app.MapBackupEndpoints();
        app.MapAlertEndpoints();
        app.MapExportEndpoints();
        app.MapChatEndpoints();
        app.MapReflectEndpoints();
        app.MapMem0Endpoints();
        Telegram.TelegramWebhookEndpoint.MapTelegramWebhook(app);
        app.MapEngramMcp();
        app.MapEngramMetrics();
        app.MapUi();
        return app;
    }

    /// <summary>
    /// The web UI's services: Data Protection (its keys kept in the store, so a login survives a restart and works on every instance) for
    /// the session cookie, antiforgery for its forms, the fingerprinted assets, and the Razor component renderer.
    /// </summary>
    private static void AddUi(IServiceCollection services, EngramServerOptions options)
    {
        services.AddDataProtection().SetApplicationName("Engram");
        // The keys live in the store (Ui/StoreKeyRepository): shared by every instance on one database.
        services.AddSingleton<IConfigureOptions<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>>(sp =>
            new ConfigureOptions<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>(keys => keys.XmlRepository = new Ui.StoreKeyRepository(
                (Core.Storage.Transfer.IStoreTransfer)sp.GetRequiredService<IMemoryStore>(), Path.Combine(Path.GetFullPath(options.DataPath), "ui-keys"))));
        services.AddAntiforgery(antiforgery =>
        {
            antiforgery.Cookie.Name = "engram_af";
            antiforgery.Cookie.SameSite = Microsoft.AspNetCore.Http.SameSiteMode.Strict;
            antiforgery.Cookie.Path = "/ui";
            // Secure over HTTPS like the session cookie (antiforgery's own default never marks it, so an HTTPS login page
            // handed out a token cookie that a plain-HTTP request to the same host would carry in the clear).
            antiforgery.Cookie.SecurePolicy = Microsoft.AspNetCore.Http.CookieSecurePolicy.SameAsRequest;
            antiforgery.FormFieldName = "_af";
        });
        // Each token names the login it was issued to (the gate sets no HttpContext.User, so antiforgery saw no identity).
        services.AddSingleton<Microsoft.AspNetCore.Antiforgery.IAntiforgeryAdditionalDataProvider, Ui.UiAntiforgeryBinding>();
        services.AddSingleton<Ui.UiSession>();
        services.AddSingleton<Ui.UiFlash>();
        services.AddSingleton<Ui.UiAssets>();
        services.AddRazorComponents(); // the pages are Razor components, rendered statically per route (RazorComponentResult)
    }

    /// <summary>
    /// Maps the environment variable names operators already use onto Engram's settings. Public so the
    /// CLI's in-process mode reads the same settings as the server.
    /// </summary>
    public static void MapOperatorVariables(IConfiguration configuration)
    {
        foreach (var (variable, key) in OperatorVariables)
        {
            if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value)
            {
                configuration[$"{EngramServerOptions.Section}:{key}"] = value;
            }
        }
    }

    /// <summary>The operator variables and the settings (under <c>Engram</c>) they set.</summary>
    public static IReadOnlyList<(string Variable, string Key)> OperatorVariables { get; } =
        [
            ("ENGRAM_DATA", "DataPath"),
            ("DATABASE_URL", "Store"),
            ("SEMANTIC_WEIGHT", "Search:SemanticWeight"),
            ("LEXICAL_WEIGHT", "Search:LexicalWeight"),
            ("RECENCY_WEIGHT", "Search:RecencyWeight"),
            ("IMPORTANCE_WEIGHT", "Search:ImportanceWeight"),
            ("ENTITY_WEIGHT", "Search:EntityWeight"),
            ("TOP_K_RETRIEVAL", "Search:TopK"),
            ("ENGRAM_EMBEDDINGS", "Embeddings:Provider"),
            ("ENGRAM_TRANSFORMER_MODEL", "Embeddings:Transformer:Model"),
            ("ENGRAM_TRANSFORMER_THREADS", "Embeddings:Transformer:Threads"),
            ("EMBEDDINGS_BASE_URL", "Embeddings:OpenAi:BaseUrl"),
            ("EMBEDDINGS_MODEL", "Embeddings:OpenAi:Model"),
            ("EMBEDDINGS_API_KEY", "Embeddings:OpenAi:ApiKey"),
            ("EMBEDDINGS_DIMENSIONS", "Embeddings:OpenAi:Dimensions"),
            ("MEMORY_DEFAULT_TTL_SECONDS", "KeyValue:DefaultTtlSeconds"),
            ("ENGRAM_TLS_PASSWORD", "Tls:Password"),
            ("READONLY_MODE", "ReadOnly"),
            ("ENGRAM_MEMORY_BUDGET_MB", "Memory:BudgetMB"),
            ("LLM_BASE_URL", "Llm:BaseUrl"),
            ("LLM_MODEL", "Llm:Model"),
            ("LLM_API_KEY", "Llm:ApiKey"),
            ("LLM_TIMEOUT_SECONDS", "Llm:TimeoutSeconds"),
            ("LLM_MAX_CONCURRENCY", "Llm:MaxConcurrency"),
            ("TELEGRAM_BOT_TOKEN", "Telegram:BotToken"),
            ("TELEGRAM_API_BASE_URL", "Telegram:ApiBaseUrl"),
            ("TELEGRAM_ALLOWED_USERS", "Telegram:AllowedUsers"),
            ("TELEGRAM_ADMINS", "Telegram:Admins"),
            ("TELEGRAM_WEBHOOK_URL", "Telegram:WebhookUrl"),
            ("TELEGRAM_WEBHOOK_SECRET", "Telegram:WebhookSecret"),
            ("TELEGRAM_RATE_LIMIT_PER_MINUTE", "Telegram:RateLimitPerMinute"),
            ("ALERT_TELEGRAM_CHAT_IDS", "Alerts:TelegramChatIds"),
            ("ALERT_WEBHOOK_URL", "Alerts:WebhookUrl"),
            ("ALERT_WEBHOOK_SECRET", "Alerts:WebhookSecret"),
            ("ALERT_INTERVAL_SECONDS", "Alerts:EvaluationIntervalSeconds"),
            ("ALERT_COOLDOWN_MINUTES", "Alerts:CooldownMinutes"),
            ("WEBHOOK_URLS", "Webhooks:Urls"),
            ("WEBHOOK_SECRET", "Webhooks:Secret"),
            ("WEBHOOK_EVENTS", "Webhooks:Events"),
            ("LLM_EXTRACTION_WORKERS", "Llm:ExtractionWorkers"),
            ("REFLECT_INTERVAL_MINUTES", "Reflect:IntervalMinutes"),
            ("REFLECT_DUPLICATE_THRESHOLD", "Reflect:DuplicateThreshold"),
            ("ENGRAM_RESP", "Resp:Listen"),
        ];
}
