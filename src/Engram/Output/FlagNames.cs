using System.CommandLine;
using System.Text.RegularExpressions;
using Engram.Core.Common;

namespace Engram.Cli.Output;

/// <summary>
/// The Core and the REST API name fields as JSON does (<c>ttl_seconds</c>, <c>filters.user_id</c>);
/// a CLI user typed a flag (<c>--ttl</c>, <c>--user</c>). A validation error is renamed to the flag
/// when the command that failed has it; otherwise (a positional argument, a field with no flag) the
/// name stays as it is.
/// </summary>
internal static partial class FlagNames
{
    private static readonly Dictionary<string, string> FlagByField = new(StringComparer.Ordinal)
    {
        ["ttl_seconds"] = "--ttl",
        ["user_id"] = "--user",
        ["agent_id"] = "--agent",
        ["session_id"] = "--session",
        ["namespace"] = "--namespace",
        ["tags"] = "--tag",
        ["tags_match"] = "--tags-match",
        ["entities"] = "--entity",
        ["entity"] = "--entity",
        ["metadata"] = "--metadata",
        ["importance"] = "--importance",
        ["valence"] = "--valence",
        ["type"] = "--type",
        ["entity_type"] = "--type",
        ["tier"] = "--tier",
        ["source"] = "--source",
        ["content"] = "--content",
        ["limit"] = "--limit",
        ["cursor"] = "--cursor",
        ["k"] = "--k",
        ["min_score"] = "--min-score",
        ["recency_half_life_days"] = "--half-life",
        ["depth"] = "--depth",
        ["relation_type"] = "--relation-type",
        ["weight"] = "--weight",
        ["confirm"] = "--confirm",
        ["nx"] = "--nx",
        ["by"] = "--by",
    };

    public static CliProblem Rename(ValidationException error, Command? command)
    {
        var flag = FlagFor(error.Field, command);
        var detail = flag is null ? error.Message : RenameInText(error.Message, error.Field, flag);
        return new CliProblem(error.Title, 400, detail, Output.ExitCodes.UserError) { Field = flag ?? error.Field };
    }

    /// <summary>The flag the failing command has for <paramref name="field"/>, or null.</summary>
    private static string? FlagFor(string field, Command? command)
    {
        if (field.StartsWith("--", StringComparison.Ordinal))
        {
            return field;
        }
        var name = Index().Replace(field.StartsWith("filters.", StringComparison.Ordinal) ? field["filters.".Length..] : field, "");
        if (command is null || !FlagByField.TryGetValue(name, out var flag))
        {
            return null;
        }
        return command.Options.Any(o => o.Name == flag || o.Aliases.Contains(flag)) ? flag : null;
    }

    /// <summary>
    /// Replaces the field's name in the message: anywhere when it is plainly an identifier
    /// (<c>ttl_seconds</c>, <c>filters.user_id</c>, <c>tags[2]</c>), else only as the message's
    /// subject ("importance must be …"), so an ordinary word such as "tags" in a sentence stays.
    /// </summary>
    private static string RenameInText(string message, string field, string flag)
    {
        if (field.StartsWith("--", StringComparison.Ordinal))
        {
            return message;
        }
        if (field.IndexOfAny(['_', '.', '[']) >= 0)
        {
            return Regex.Replace(message, $@"(?<![\w.\-\[]){Regex.Escape(field)}(?![\w\[])", flag);
        }
        return message.StartsWith(field + " ", StringComparison.Ordinal) ? flag + message[field.Length..] : message;
    }

    [GeneratedRegex(@"\[\d+\]$")]
    private static partial Regex Index();
}
