using System.Security.Cryptography;
using System.Text;
using Engram.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Telegram.Bot;
using Telegram.Bot.Types;

namespace Engram.Server.Telegram;

/// <summary>
/// <c>POST /v1/telegram/webhook</c>: where Telegram delivers updates in webhook mode (TELEGRAM_WEBHOOK_URL). Telegram
/// sends no API key, so the route is public; it answers only requests with the secret token the bot registered
/// (X-Telegram-Bot-Api-Secret-Token, 401 otherwise), and 404 when the bot is not in webhook mode. The update is handled
/// before the answer (at most once: <see cref="TelegramBot.HandleAsync"/> skips an update it handled before).
/// </summary>
internal static class TelegramWebhookEndpoint
{
    public const string Path = "/v1/telegram/webhook";

    public const string SecretHeader = "X-Telegram-Bot-Api-Secret-Token";

    public static IEndpointRouteBuilder MapTelegramWebhook(this IEndpointRouteBuilder app)
    {
        app.MapPost(Path, ReceiveAsync).WithName("TelegramWebhook").Public().WithTags("telegram")
            .WithSummary("Telegram's webhook delivery of bot updates; needs the X-Telegram-Bot-Api-Secret-Token header the bot registered (no API key). 404 unless the bot runs in webhook mode.")
            .Accepts<System.Text.Json.Nodes.JsonObject>("application/json").Produces(StatusCodes.Status200OK).ProducesProblem(400).ProducesProblem(401).ProducesProblem(404);
        return app;
    }

    private static async Task<IResult> ReceiveAsync(HttpContext http, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var bound = http.RequestServices.GetRequiredService<RequestBodyLimits>().For(BodySize.Memory);
        if (http.Request.ContentLength > bound)
        {
            // Refused before anything else, bot or not, like every route that takes a body.
            throw new BadHttpRequestException($"the request body is larger than {bound} bytes, the bound of this route (raise it with {RequestBodyLimits.SettingFor(BodySize.Memory)})",
                StatusCodes.Status413PayloadTooLarge);
        }
        if (http.RequestServices.GetService<TelegramBot>() is not { WebhookSecret: { } secret } bot)
        {
            return Problems.For(StatusCodes.Status404NotFound, "the Telegram bot is not in webhook mode on this server (TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_URL)");
        }
        var given = http.Request.Headers[SecretHeader].ToString();
        if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(secret)))
        {
            return Problems.For(StatusCodes.Status401Unauthorized, $"the {SecretHeader} header is missing or is not the bot's webhook secret");
        }
        var update = await JsonBody.ReadAsync<Update>(http.Request, BodySize.Memory, JsonBotAPI.Options, ct);
        await bot.HandleAsync(update, ct);
        return TypedResults.Ok();
    }
}
