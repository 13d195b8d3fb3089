using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Ui;

/// <summary>
/// The web UI at <c>/ui</c> (issue 18): server-rendered pages and form posts, mapped as ordinary endpoints so
/// each carries its access rule like every REST route and calls the same services under the same caller.
/// </summary>
internal static class UiEndpoints
{
    public static IEndpointRouteBuilder MapUi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/ui/assets/{name}", (string name, HttpContext http, UiAssets assets) => assets.Serve(name, http)).WithName("UiAsset").Public().ExcludeFromDescription();
        var ui = app.MapGroup("/ui").ExcludeFromDescription().AddEndpointFilter(HtmlErrors);
        ui.MapGet("/login", UiLogin.PageAsync).WithName("UiLoginPage").Public();
        ui.MapPost("/login", UiLogin.LoginAsync).WithName("UiLogin").Public();
        ui.MapPost("/logout", UiLogin.LogoutAsync).WithName("UiLogout").Requires(Role.Read);
        ui.MapGet("", UiOverview.PageAsync).WithName("UiOverview").Requires(Role.Read);
        ui.MapGet("/memories", UiMemories.ListAsync).WithName("UiMemories").Requires(Role.Read);
        ui.MapPost("/memories", UiMemories.CreateAsync).WithName("UiCreateMemory").Requires(Role.Write);
        ui.MapPost("/memories/bulk-delete", UiMemories.BulkDeleteAsync).WithName("UiBulkDelete").Requires(Role.Write);
        ui.MapGet("/memories/{id}", UiMemories.DetailAsync).WithName("UiMemory").Requires(Role.Read);
        ui.MapPost("/memories/{id}", UiMemories.UpdateAsync).WithName("UiUpdateMemory").Requires(Role.Write);
        ui.MapPost("/memories/{id}/delete", UiMemories.DeleteAsync).WithName("UiDeleteMemory").Requires(Role.Write);
        ui.MapGet("/search", UiSearch.PageAsync).WithName("UiSearch").Requires(Role.Read);
        ui.MapGet("/graph", UiGraph.PageAsync).WithName("UiGraph").Requires(Role.Read);
        ui.MapGet("/kv", UiKv.PageAsync).WithName("UiKv").Requires(Role.Read);
        ui.MapGet("/scopes", UiScopes.PageAsync).WithName("UiScopes").Requires(Role.Read);
        ui.MapGet("/admin", UiAdmin.PageAsync).WithName("UiAdmin").Requires(Role.Admin);
        ui.MapGet("/admin/export", ExportEndpoints.ExportAsync).WithName("UiExport").Requires(Role.Admin);
        ui.MapPost("/admin/keys", UiAdmin.CreateKeyAsync).WithName("UiCreateKey").Requires(Role.Admin);
        ui.MapPost("/admin/keys/{id}/revoke", UiAdmin.RevokeKeyAsync).WithName("UiRevokeKey").Requires(Role.Admin);
        ui.MapPost("/admin/keys/{id}/rotate", UiAdmin.RotateKeyAsync).WithName("UiRotateKey").Requires(Role.Admin);
        ui.MapPost("/admin/readonly", UiAdmin.ReadOnlyAsync).WithName("UiReadOnly").Requires(Role.Admin);
        ui.MapPost("/admin/backups", UiAdmin.BackupAsync).WithName("UiCreateBackup").Requires(Role.Admin);
        ui.MapPost("/admin/backups/{name}/verify", UiAdmin.VerifyBackupAsync).WithName("UiVerifyBackup").Requires(Role.Admin);
        return app;
    }

    /// <summary>A browser (Accept: text/html) gets a refusal as a page with the same status; other clients the usual problem body.</summary>
    private static async ValueTask<object?> HtmlErrors(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            return await next(context);
        }
        catch (EngramException e) when (UiPage.WantsHtml(context.HttpContext))
        {
            return UiPage.Error(context.HttpContext, e switch
            {
                Core.Operations.WritesRefusedException => 503,
                ValidationException => 400,
                NotFoundException => 404,
                ForbiddenException => 403,
                ConflictException => 409,
                PreconditionFailedException => 412,
                _ => 400,
            }, e.Message);
        }
        catch (BadHttpRequestException e) when (UiPage.WantsHtml(context.HttpContext) && e.StatusCode is >= 400 and < 500)
        {
            // UiPage.ReadFormAsync's refusals (a post without a form body 415, a form past the bound 413): a browser got
            // them as a JSON problem body, the one 4xx of the UI that was not a page.
            return UiPage.Error(context.HttpContext, e.StatusCode, e.Message);
        }
    }
}
