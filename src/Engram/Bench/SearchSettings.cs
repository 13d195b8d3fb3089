using System.Globalization;
using Engram.Core.Common;
using Engram.Core.Search;

namespace Engram.Cli.Bench;

/// <summary>Search settings given on the command line as NAME=VALUE (the property names of <see cref="SearchOptions"/>), for experiments.</summary>
public static class SearchSettings
{
    /// <summary>A copy of <paramref name="baseline"/> with <paramref name="assignments"/> applied, validated.</summary>
    public static SearchOptions Apply(SearchOptions baseline, IEnumerable<string> assignments)
    {
        var result = new SearchOptions();
        var properties = typeof(SearchOptions).GetProperties().Where(p => p.CanRead && p.CanWrite).ToList();
        foreach (var property in properties)
        {
            property.SetValue(result, property.GetValue(baseline));
        }
        foreach (var assignment in assignments)
        {
            var at = assignment.IndexOf('=', StringComparison.Ordinal);
            var name = at < 0 ? assignment : assignment[..at].Trim();
            var property = properties.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
                ?? throw new ValidationException("set", $"'{name}' is not a search setting (one of {string.Join(", ", properties.Select(p => p.Name))})");
            var text = at < 0 ? "" : assignment[(at + 1)..].Trim();
            try
            {
                var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                property.SetValue(result, text.Length == 0 && type != property.PropertyType ? null : type.IsEnum ? Enum.Parse(type, text, ignoreCase: true) : Convert.ChangeType(text, type, CultureInfo.InvariantCulture));
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException or OverflowException or InvalidCastException)
            {
                throw new ValidationException("set", $"'{text}' is not a valid value for {property.Name}");
            }
        }
        var errors = result.Validate().ToList();
        return errors.Count == 0 ? result : throw new ValidationException("set", string.Join("; ", errors));
    }
}
