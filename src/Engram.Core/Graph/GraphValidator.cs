using System.Text;
using Engram.Core.Common;

namespace Engram.Core.Graph;

/// <summary>
/// The graph's input rules, checked before anything reaches the store. Each failure names the JSON
/// field (with its index, e.g. <c>entities[2].name</c>) so a client can point at the culprit.
/// </summary>
public static class GraphValidator
{
    public const int MaxNameLength = 256;
    public const int MaxTypeLength = 128;
    public const int MaxObservationBytes = 4096;
    public const int MaxBatch = 1_000;
    public const int MaxDepth = 5;
    public const int MaxPathLength = 6;

    public static void Batch<T>(IReadOnlyList<T>? items, string field)
    {
        if (items is null || items.Count == 0)
        {
            throw new ValidationException(field, $"{field} must be a non-empty array");
        }
        if (items.Count > MaxBatch)
        {
            throw new ValidationException(field, $"{field} holds {items.Count} items; at most {MaxBatch} per request");
        }
    }

    /// <summary>
    /// An entity name as the graph keeps and looks it up: trimmed, without invisible characters and in NFC (see
    /// <see cref="NormalizeName"/>), so every route, tool, import and lookup that takes a name agrees on which entity it means.
    /// </summary>
    public static string Name(string? value, string field)
    {
        var name = value is null ? null : UnicodeText.FoldInvisible(value);
        if (string.IsNullOrEmpty(name))
        {
            throw new ValidationException(field, $"{field} is required and must not be blank");
        }
        UnicodeText.Require(name, field);
        // Normalized before the length check: NFC may lengthen a name (U+0958 and a few others decompose).
        name = NormalizeName(name);
        if (name.Length > MaxNameLength && UnicodeText.CountCharacters(name) is var characters && characters > MaxNameLength)
        {
            throw new ValidationException(field, $"{field} is {characters} characters; at most {MaxNameLength}");
        }
        if (name.Any(char.IsControl))
        {
            throw new ValidationException(field, $"{field} must not contain control characters");
        }
        return name;
    }

    /// <summary>
    /// A name in Unicode NFC, the form memory entity names take (<see cref="Memories.EntityNames.Normalize"/>): "José"
    /// typed precomposed (U+00E9) and decomposed (e + U+0301) is one entity, not two that look alike. For the same reason
    /// invisible characters are folded away (<see cref="UnicodeText.FoldInvisible"/>): a byte order mark or zero-width
    /// space at an end, a zero-width space or word joiner inside, so "\uFEFFAl\u200Bice" is "Alice" (joiners inside emoji
    /// sequences and Persian or Indic words stay). Stores written before names were normalized are brought to this form by
    /// their schema migration (SqliteGraphNameMigration, PostgresGraphNameMigration), which merges entities whose names
    /// become equal.
    /// </summary>
    public static string NormalizeName(string name) => UnicodeText.Normalize(UnicodeText.FoldInvisible(name), NormalizationForm.FormC);

    /// <summary>
    /// Entity and relation types: free text up to 128 characters (MCP clients use words like "person" or "works_at"),
    /// trimmed and without invisible characters as names are (<see cref="UnicodeText.FoldInvisible"/>), so "works_at" and
    /// "works\u200B_at" are one relation type.
    /// </summary>
    public static string Type(string? value, string field)
    {
        var type = value is null ? null : UnicodeText.FoldInvisible(value);
        if (string.IsNullOrEmpty(type))
        {
            throw new ValidationException(field, $"{field} is required and must not be blank");
        }
        if (type.Length > MaxTypeLength && UnicodeText.CountCharacters(type) is var characters && characters > MaxTypeLength)
        {
            throw new ValidationException(field, $"{field} is {characters} characters; at most {MaxTypeLength}");
        }
        if (type.Any(char.IsControl))
        {
            throw new ValidationException(field, $"{field} must not contain control characters");
        }
        UnicodeText.Require(type, field);
        return type;
    }

    public static string ObservationText(string? value, string field)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new ValidationException(field, $"{field} must be a non-blank string");
        }
        UnicodeText.Require(value, field);
        var bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes > MaxObservationBytes)
        {
            throw new ValidationException(field, $"{field} is {bytes} bytes of UTF-8; at most {MaxObservationBytes}");
        }
        return value;
    }

    public static Observation Observation(ObservationInput? value, string field)
    {
        if (value is null)
        {
            throw new ValidationException(field, $"{field} must be a string or an object with content");
        }
        Window(value.ValidFrom, value.ValidTo, field);
        return new Observation { Content = ObservationText(value.Content, value.ValidFrom is null && value.ValidTo is null ? field : field + ".content"), ValidFrom = value.ValidFrom, ValidTo = value.ValidTo };
    }

    public static void Window(DateTimeOffset? from, DateTimeOffset? to, string field)
    {
        if (from is { } start && to is { } end && end <= start)
        {
            throw new ValidationException(field + ".valid_to", $"{field}.valid_to must be after valid_from");
        }
    }

    public static double? Weight(double? value, string field) =>
        value is { } weight && !double.IsFinite(weight)
            ? throw new ValidationException(field, $"{field} must be a finite number")
            : value;

    public static int Depth(int? value, int fallback, int max, string field) => value switch
    {
        null => fallback,
        < 1 => throw new ValidationException(field, $"{field} must be at least 1"),
        var depth when depth > max => throw new ValidationException(field, $"{field} must be at most {max}"),
        var depth => depth.Value,
    };
}
