using System.Net;
using System.Text.Json;
using System.Threading.Channels;
using Engram.Server.Webhooks;
using Engram.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Engram.Tests.Alerts;

/// <summary>
/// A loopback Kestrel webhook receiver that checks each POST's <c>X-Engram-Signature</c> over the raw body with its
/// secret (5 minutes' tolerance, as a real receiver would), keeps the verified ones in order, and answers
/// <see cref="Failing"/> with a 500 (the next <c>FailNext</c> calls, or all while <c>FailAll</c>).
/// </summary>
public sealed class SignedWebhookReceiver : IAsyncDisposable
{
    public const string Secret = "test-webhook-secret-0123456789";

    private readonly WebApplication _app;
    private readonly Channel<Received> _received = Channel.CreateUnbounded<Received>();
    private int _posts;
    private int _badSignatures;

    private SignedWebhookReceiver(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/hook";

    /// <summary>Calls that still get a 500.</summary>
    public int FailNext;

    public volatile bool FailAll;

    /// <summary>Accept with 200, then send a body that never ends (a byte every 100 ms until the sender hangs up).</summary>
    public volatile bool EndlessBody;

    /// <summary>Every POST, answered or refused.</summary>
    public int Posts => Volatile.Read(ref _posts);

    public int BadSignatures => Volatile.Read(ref _badSignatures);

    public static async Task<SignedWebhookReceiver> StartAsync(int port = 0)
    {
        port = port == 0 ? EngramServer.FreePort() : port;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        var receiver = new SignedWebhookReceiver(app, port);
        app.MapPost("/hook", (Delegate)receiver.ReceiveAsync);
        await app.StartAsync();
        return receiver;
    }

    private async Task<IResult> ReceiveAsync(HttpContext http)
    {
        Interlocked.Increment(ref _posts);
        using var buffer = new MemoryStream();
        await http.Request.Body.CopyToAsync(buffer);
        var body = buffer.ToArray();
        if (!WebhookSignature.Verify(Secret, http.Request.Headers[WebhookSignature.Header], body, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5)))
        {
            Interlocked.Increment(ref _badSignatures);
            return Results.StatusCode(401);
        }
        if (FailAll || Interlocked.Decrement(ref FailNext) >= 0)
        {
            return Results.StatusCode((int)HttpStatusCode.InternalServerError);
        }
        using var json = JsonDocument.Parse(body);
        await _received.Writer.WriteAsync(new Received(http.Request.Headers[WebhookSignature.EventHeader].ToString(),
            http.Request.Headers[WebhookSignature.DeliveryHeader].ToString(), json.RootElement.Clone()));
        if (EndlessBody)
        {
            http.Response.StatusCode = 200;
            try
            {
                while (!http.RequestAborted.IsCancellationRequested)
                {
                    await http.Response.Body.WriteAsync("x"u8.ToArray(), http.RequestAborted);
                    await http.Response.Body.FlushAsync(http.RequestAborted);
                    await Task.Delay(100, http.RequestAborted);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException)
            {
                // the sender hung up
            }
            return Results.Empty;
        }
        return Results.NoContent();
    }

    /// <summary>The next verified, accepted post (in arrival order), waiting up to 30 s.</summary>
    public async Task<Received> NextAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await _received.Reader.ReadAsync(timeout.Token);
    }

    /// <summary>Accepted posts not read yet.</summary>
    public int Unread => _received.Reader.Count;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public sealed record Received(string Event, string DeliveryId, JsonElement Body);
}
