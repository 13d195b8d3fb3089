using System.Text.Json;
using Engram.Core.Common;

namespace Engram.Cli.Output;

/// <summary>
/// <c>--json</c>: the body the REST API returns for the same request, serialized with the same
/// options (snake_case, UTC timestamps), compact and on one line so scripts can pipe it to jq.
/// </summary>
internal static class JsonOutput
{
    public static void Write<T>(TextWriter output, T value) => output.WriteLine(Serialize(value));

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, EngramJson.Options);
}
