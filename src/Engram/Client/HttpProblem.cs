using System.Net;
using System.Text.Json;
using Engram.Core.Common;

namespace Engram.Cli.Client;

/// <summary>
/// Turns an error response of the REST API (an RFC 7807 problem body with title, detail and field)
/// back into the Core exception the server mapped it from, so the CLI reports it exactly as it
/// would have in process.
/// </summary>
internal static class HttpProblem
{
    public static Exception ToException(HttpStatusCode status, string? mediaType, string body, Uri server)
    {
        var problem = TryParse(mediaType, body);
        var code = (int)status;
        if (problem is null)
        {
            // Not Engram's API answering (a proxy, another service on that port, a wrong URL).
            return new BackendUnavailableException($"the server at {server} answered {code} {status} without an Engram problem body; is --server an Engram server?");
        }
        var detail = Text(problem.Value, "detail") ?? Text(problem.Value, "title") ?? $"the server answered {code}";
        return code switch
        {
            400 or 415 => new ValidationException(Text(problem.Value, "field") ?? "request", detail),
            404 => new NotFoundException(detail),
            409 => new ConflictException(detail, Text(problem.Value, "existing_id")),
            412 => new PreconditionFailedException(detail,
                problem.Value.TryGetProperty("current_version", out var version) && version.TryGetInt64(out var current) ? current : 0),
            503 when Text(problem.Value, "reason") is "read_only" => new Core.Operations.WritesRefusedException(Core.Operations.WriteRefusal.ReadOnly, detail),
            503 when Text(problem.Value, "reason") is "memory_budget" => new Core.Operations.WritesRefusedException(Core.Operations.WriteRefusal.MemoryBudget, detail),
            >= 400 and < 500 => new RequestRefusedException(Text(problem.Value, "title") ?? "Refused", detail, code),
            _ => new BackendUnavailableException($"the server failed ({code}): {detail}"),
        };
    }

    private static JsonElement? TryParse(string? mediaType, string body)
    {
        if (mediaType is null || !mediaType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? Text(JsonElement problem, string name) =>
        problem.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
