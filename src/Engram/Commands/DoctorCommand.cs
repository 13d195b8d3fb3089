using System.CommandLine;
using System.Text.Json;
using Engram.Cli.Client;
using Engram.Cli.Output;
using Engram.Core.Storage;
using Engram.Server;
using Engram.Server.Operations;
using Microsoft.Extensions.Configuration;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram doctor</c>: the server's readiness checks plus configuration problems, each with what to do. In process
/// on a data folder (<c>--data</c>: <see cref="Doctor"/>), or against a running server (<c>--server</c>: its
/// <c>/health</c>). The store's notices (what its open recovered from: <see cref="StoreNotice"/>) are warnings, one line each.
/// Exit code 0 only when every check is ok; 1 when one warns or fails; 2 when the server cannot be reached.
/// </summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var backend = new BackendOptions();
        var urls = new Option<string?>("--urls")
        {
            Description = $"The addresses the server listens on, to check (default: the configured urls, else {EngramServerOptions.DefaultUrls}).",
            HelpName = "URLS",
        };
        var command = new Command("doctor", "Check the configuration, the data folder and the server's health; say what to do about each problem.") { urls };
        backend.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var json = parse.GetValue(backend.Json);
            try
            {
                var data = parse.GetValue(backend.Data);
                var store = parse.GetValue(backend.Store);
                var server = parse.GetValue(backend.Server);
                StoreOption.Check(store);
                if ((data is not null || store is not null) && server is not null)
                {
                    throw new Core.Common.ValidationException("--server", "give --data, --store or --server, not more than one");
                }
                if (data is not null && store is not null)
                {
                    throw new Core.Common.ValidationException("--store", "give --store or --data, not both");
                }
                server ??= data is null && store is null ? Environment.GetEnvironmentVariable(BackendOptions.ServerVariable) is { Length: > 0 } s ? s : null : null;
                // Without --data, DATABASE_URL names the store as for every other command.
                store ??= data is null ? Environment.GetEnvironmentVariable(StoreOption.Variable) is { Length: > 0 } u ? u : null : null;
                var notices = new List<StoreNotice>();
                var checks = server is not null
                    ? await RemoteAsync(BackendOptions.ServerUri(server), notices, ct)
                    : await Doctor.RunAsync(Client.ConfiguredOptions.Configuration(), data ?? (Environment.GetEnvironmentVariable(BackendOptions.DataVariable) is { Length: > 0 } d ? d : null),
                        parse.GetValue(urls), ct, store, notices);
                var healthy = checks.All(c => c.Status == HealthChecks.Ok);
                if (json)
                {
                    JsonOutput.Write(Console.Out, new DoctorResponse(healthy, checks, notices));
                }
                else
                {
                    Print(checks, healthy);
                }
                return healthy ? ExitCodes.Ok : ExitCodes.UserError;
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, json, command);
            }
        });
        return command;
    }

    private static async Task<IReadOnlyList<HealthCheck>> RemoteAsync(Uri server, List<StoreNotice> notices, CancellationToken ct)
    {
        using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };
        if (Environment.GetEnvironmentVariable(HttpMemoryClient.ApiKeyVariable) is { Length: > 0 } key)
        {
            http.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + key.Trim());
        }
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync("health", ct);
        }
        catch (HttpRequestException ex)
        {
            throw new BackendUnavailableException($"cannot reach the Engram server at {server}: {ex.Message}", ex);
        }
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct);
            if ((int)response.StatusCode is 401 or 403)
            {
                return [new HealthCheck("api_key", HealthChecks.Fail, 0, $"the server answered {(int)response.StatusCode} to GET /health",
                    $"set {HttpMemoryClient.ApiKeyVariable} to a key of the server (any role)")];
            }
            try
            {
                using var document = JsonDocument.Parse(body);
                if (document.RootElement.TryGetProperty("checks", out var list))
                {
                    // The store's notices (an admin key's answer only): each a warning of its own, as in process.
                    if (document.RootElement.TryGetProperty("storage", out var storage) && storage.TryGetProperty("notices", out var listed)
                        && listed.ValueKind == JsonValueKind.Array)
                    {
                        notices.AddRange(listed.EnumerateArray().Select(n => new StoreNotice(
                            n.TryGetProperty("time", out var time) && time.TryGetDateTimeOffset(out var at) ? at : DateTimeOffset.MinValue,
                            n.TryGetProperty("kind", out var kind) ? kind.GetString() ?? "" : "", n.TryGetProperty("message", out var message) ? message.GetString() ?? "" : "")));
                    }
                    return Doctor.WithEachNotice([.. list.EnumerateArray().Select(c => new HealthCheck(
                        c.GetProperty("name").GetString() ?? "?", c.GetProperty("status").GetString() ?? HealthChecks.Fail,
                        c.TryGetProperty("ms", out var ms) ? ms.GetDouble() : 0, c.GetProperty("detail").GetString() ?? "",
                        c.TryGetProperty("fix", out var fix) ? fix.GetString() : null))], notices);
                }
            }
            catch (JsonException)
            {
            }
            throw new BackendUnavailableException($"the server at {server} answered {(int)response.StatusCode} without Engram's health checks; is it an Engram server of this version?");
        }
    }

    private static void Print(IReadOnlyList<HealthCheck> checks, bool healthy)
    {
        foreach (var check in checks)
        {
            var mark = check.Status switch { HealthChecks.Ok => "ok  ", HealthChecks.Warn => "WARN", _ => "FAIL" };
            Console.WriteLine($"{mark} {check.Name,-14} {check.Detail}{(check.Ms >= 1 ? $" ({check.Ms:0} ms)" : "")}");
            if (check.Fix is { } fix)
            {
                Console.WriteLine($"     {"",-14} fix: {fix}");
            }
        }
        var problems = checks.Count(c => c.Status != HealthChecks.Ok);
        Console.WriteLine(healthy ? "All is well." : $"{problems} problem(s) found.");
    }

    /// <summary>What <c>doctor --json</c> prints; <paramref name="Notices"/>: the store's (<see cref="StoreNotice"/>), each also a warning check.</summary>
    internal sealed record DoctorResponse(bool Healthy, IReadOnlyList<HealthCheck> Checks, IReadOnlyList<StoreNotice> Notices);
}
