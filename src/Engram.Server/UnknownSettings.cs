using System.Collections;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Engram.Server;

/// <summary>
/// Settings under <c>Engram</c> that bind to nothing: a misspelt name (<c>Engram__KeyValue__Durablity</c>), a section
/// that does not exist, or a value for a property derived from others. The configuration binder ignores them without a
/// word, so the operator would believe a setting took effect; the server logs them when it starts and
/// <c>engram doctor</c> reports them. Lists and dictionaries take any keys and are not looked into.
/// </summary>
public static class UnknownSettings
{
    /// <summary>Each unknown setting, with why ("Engram:KeyValue:Durablity: no such setting").</summary>
    public static IReadOnlyList<string> Find(IConfiguration configuration)
    {
        var found = new List<string>();
        Walk(configuration.GetSection(EngramServerOptions.Section), typeof(EngramServerOptions), found);
        return found;
    }

    private static void Walk(IConfigurationSection section, Type type, List<string> found)
    {
        foreach (var child in section.GetChildren())
        {
            var property = type.GetProperty(child.Key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is null || property.GetIndexParameters().Length > 0 || property.GetMethod is not { IsPublic: true })
            {
                found.Add($"{child.Path}: no such setting");
                continue;
            }
            var valueType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (IsSingleValue(valueType))
            {
                if (property.SetMethod is not { IsPublic: true })
                {
                    found.Add($"{child.Path}: not a setting (derived from the others)");
                }
                else if (child.GetChildren().Any())
                {
                    found.Add($"{child.Path}: takes a single value, not a section");
                }
                continue;
            }
            if (typeof(IEnumerable).IsAssignableFrom(valueType))
            {
                continue;
            }
            Walk(child, valueType, found);
        }
    }

    private static bool IsSingleValue(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan) || type == typeof(Uri)
        || type == typeof(DateTimeOffset) || type == typeof(DateTime) || type == typeof(Guid);
}
