using Engram.Core.Common;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Server.Operations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;

namespace Engram.Server.Http;

/// <summary>
/// <c>/v1/admin/backups</c>: list the backup folder, make a backup now, verify one. Server-wide, so admin keys only
/// (and not scoped ones). Making and verifying a backup take as long as the store is large: these routes have no
/// request time-out, and a backup runs on when its caller goes away (it stops only with the server).
/// </summary>
internal static class BackupEndpoints
{
    public static IEndpointRouteBuilder MapBackupEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/admin/backups").WithTags("admin");
        group.MapGet("", List).WithName("ListBackups").Requires(Role.Admin)
            .WithSummary("The backups in the backup folder, newest first: time, size, kind, last sequence, last verification.")
            .Produces<BackupList>();
        group.MapPost("", CreateAsync).WithName("CreateBackup").Requires(Role.Admin)
            .WithSummary("Make a backup now (kind manual, not pruned by retention), verify it, and return its manifest.")
            .Produces<CreatedBackupView>(StatusCodes.Status201Created).ProducesProblem(409).ProducesProblem(503).DisableRequestTimeout();
        group.MapPost("/{name}/verify", VerifyAsync).WithName("VerifyBackup").Requires(Role.Admin)
            .WithSummary("Verify a backup of the folder: checksums, SQLite's integrity check, manifest counts against the database.")
            .Produces<VerificationView>().ProducesProblem(400).ProducesProblem(404).DisableRequestTimeout();
        return app;
    }

    private static IResult List(HttpContext http, BackupService backups)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        Operator(http);
        return TypedResults.Ok(new BackupList(backups.Folder, backups.Options.Enabled ? backups.Options.Schedule : null, backups.List()));
    }

    private static async Task<IResult> CreateAsync(HttpContext http, BackupService backups, IHostApplicationLifetime lifetime)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        Operator(http);
        var (manifest, name, verification) = await backups.CreateAsync(BackupKinds.Manual, lifetime.ApplicationStopping);
        var size = new FileInfo(Path.Combine(backups.Folder, name)).Length;
        return TypedResults.Created($"/v1/admin/backups/{Uri.EscapeDataString(name)}",
            new CreatedBackupView(name, size, verification.Ok ? "ok" : "failed", verification.Problems, manifest));
    }

    private static async Task<IResult> VerifyAsync(string name, HttpContext http, BackupService backups, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        Operator(http);
        var verification = await backups.VerifyAsync(name, ct);
        return TypedResults.Ok(new VerificationView(name, verification.Ok, verification.Problems, Math.Round(verification.Milliseconds, 1), verification.Manifest));
    }

    private static void Operator(HttpContext http)
    {
        var caller = http.GetCaller();
        caller.Require(Role.Admin, "manage backups");
        if (caller.IsScoped)
        {
            throw new ForbiddenException("a scoped key may not manage backups (they hold every tenant's data)");
        }
    }
}

public sealed record BackupList(string Folder, string? Schedule, IReadOnlyList<BackupEntry> Items);

public sealed record CreatedBackupView(string Name, long SizeBytes, string Verified, IReadOnlyList<string> Problems, BackupManifest Manifest);

public sealed record VerificationView(string Name, bool Ok, IReadOnlyList<string> Problems, double TookMs, BackupManifest? Manifest);
