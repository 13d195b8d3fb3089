using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Engram.Cli.Commands;

/// <summary>
/// Options whose values need parsing. Custom parsers replace System.CommandLine's default message
/// (which names .NET types such as System.Nullable`1) with one that says what the flag expects.
/// </summary>
internal static class OptionFactory
{
    public static Option<double?> Number(string name, string description, string helpName = "X") => new(name)
    {
        Description = description,
        HelpName = helpName,
        CustomParser = result => Parse(result, name, "a number", (string s, out double v) =>
            double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out v) && double.IsFinite(v)),
    };

    public static Option<long?> WholeNumber(string name, string description, string helpName = "N") => new(name)
    {
        Description = description,
        HelpName = helpName,
        CustomParser = result => Parse(result, name, "a whole number", (string s, out long v) =>
            long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v)),
    };

    /// <summary>
    /// A count (a page size, k): a whole number that fits an int. The backend owns the range's rule and its message; a
    /// number past any int is refused here as out of range, quoting it as given.
    /// </summary>
    public static Option<int?> Count(string name, string description, string helpName = "N") => new(name)
    {
        Description = description,
        HelpName = helpName,
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
            var digits = text.StartsWith('-') ? text[1..] : text;
            if (digits.Length == 0 || !digits.All(char.IsAsciiDigit))
            {
                result.AddError($"{name} must be a whole number (got '{text}')");
                return null;
            }
            if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            {
                result.AddError($"{name} is out of range (got {text})");
                return null;
            }
            return value;
        },
    };

    /// <summary>A required whole-number argument, refused in words rather than by its .NET type.</summary>
    public static Argument<long> WholeNumberArgument(string name, string description) => new(name)
    {
        Description = description,
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            {
                return value;
            }
            result.AddError($"{name} must be a whole number (got '{text}')");
            return 0;
        },
    };

    public static Option<string?> Text(string name, string description, string helpName) => new(name)
    {
        Description = description,
        HelpName = helpName,
    };

    /// <summary>A repeatable option: <c>--tag a --tag b</c>.</summary>
    public static Option<string[]> Repeatable(string name, string description, string helpName) => new(name)
    {
        Description = description,
        HelpName = helpName,
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    public static Option<string?> Choice(string name, string description, params string[] choices)
    {
        var option = new Option<string?>(name) { Description = description, HelpName = string.Join('|', choices) };
        option.AcceptOnlyFromAmong(choices);
        return option;
    }

    private delegate bool TryParse<T>(string text, out T value);

    private static T? Parse<T>(ArgumentResult result, string name, string expected, TryParse<T> tryParse) where T : struct
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (tryParse(text, out var value))
        {
            return value;
        }
        result.AddError($"{name} must be {expected} (got '{text}')");
        return null;
    }
}
