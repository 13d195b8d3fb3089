using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Configuration;

namespace Engram.Core.Memories;

/// <summary>
/// Every rule of the write path, each failing with a <see cref="ValidationException"/> that names
/// the field (its JSON name) and the rule, so HTTP, MCP and the CLI all say the same thing.
/// </summary>
public sealed class MemoryValidator(MemoryLimits limits)
{
    public MemoryLimits Limits { get; } = limits;

    public string Content(string? content)
    {
        if (content is null)
        {
            throw new ValidationException("content", "content is required");
        }
        var trimmedLength = content.AsSpan().Trim().Length;
        if (trimmedLength == 0)
        {
            throw new ValidationException("content", "content must not be empty or only white space");
        }
        // Characters are code points (UnicodeText.CountCharacters); a string of UTF-16 units within the limit needs no count.
        if (content.Length > Limits.MaxContentChars && UnicodeText.CountCharacters(content) is var characters && characters > Limits.MaxContentChars)
        {
            throw new ValidationException("content", $"content has {characters} characters; the limit is {Limits.MaxContentChars}");
        }
        UnicodeText.Require(content, "content");
        return content;
    }

    public string Type(string? type)
    {
        if (type is null)
        {
            return "fact";
        }
        if (type.Length is 0 or > 64 || !IsLowercaseWord(type))
        {
            throw new ValidationException("type",
                "type must be a lowercase word of 1-64 characters (a-z, digits, '_' or '-', starting with a letter), e.g. fact, preference, experience, observation, reflection, instruction");
        }
        return type;
    }

    public static double Importance(double? importance) => importance switch
    {
        null => 0.5,
        var v when double.IsFinite(v.Value) && v >= 0 && v <= 1 => v.Value,
        _ => throw new ValidationException("importance", $"importance must be between 0 and 1 (got {importance})"),
    };

    public static double? Valence(double? valence) => valence switch
    {
        null => null,
        var v when double.IsFinite(v.Value) && v >= -1 && v <= 1 => v,
        _ => throw new ValidationException("valence", $"valence must be between -1 and 1 (got {valence})"),
    };

    public IReadOnlyList<string> Tags(IReadOnlyList<string>? tags)
    {
        if (tags is null)
        {
            return [];
        }
        if (tags.Count > Limits.MaxTags)
        {
            throw new ValidationException("tags", $"at most {Limits.MaxTags} tags are allowed (got {tags.Count})");
        }
        var result = new List<string>(tags.Count);
        foreach (var raw in tags)
        {
            var tag = raw is null ? null : FoldTag(raw);
            if (string.IsNullOrEmpty(tag))
            {
                throw new ValidationException("tags", "tags must be non-empty strings");
            }
            if (tag.Length > Limits.MaxTagChars && UnicodeText.CountCharacters(tag) is var characters && characters > Limits.MaxTagChars)
            {
                throw new ValidationException("tags", $"tag '{UnicodeText.Excerpt(tag, 20)}…' has {characters} characters; the limit is {Limits.MaxTagChars}");
            }
            if (HasControl(tag) || tag.Contains(','))
            {
                // Commas separate tags in query strings (?tags=a,b), so a tag cannot hold one.
                throw new ValidationException("tags", "tags must not contain commas or control characters");
            }
            UnicodeText.Require(tag, "tags");
            if (!result.Contains(tag, StringComparer.Ordinal))
            {
                result.Add(tag);
            }
        }
        return result;
    }

    /// <summary>
    /// A tag as it is stored and compared: trimmed of white space and invisible characters, without those inside
    /// (<see cref="UnicodeText.FoldInvisible"/>), as entity names are: "draft" and "\uFEFFdraft" or "dr\u200Baft" look
    /// alike, so they are one tag. Case is kept. Writes (<see cref="Tags"/>), filters (<see cref="Filter"/>) and the schema
    /// migration of tags stored before the fold (<see cref="Graph.InvisibleFold.Tags"/>) all fold through here.
    /// </summary>
    public static string FoldTag(string tag) => UnicodeText.FoldInvisible(tag);

    /// <summary>
    /// Entity names: trimmed, NFC, 1..MaxEntityChars, no control characters; a name repeated in
    /// another case is dropped (the first spelling stays), since names are compared case-insensitively.
    /// Unlike tags, commas are allowed ("Acme, Inc."): the entity filter takes exactly one name.
    /// </summary>
    public IReadOnlyList<string> Entities(IReadOnlyList<string>? entities)
    {
        if (entities is null)
        {
            return [];
        }
        if (entities.Count > Limits.MaxEntities)
        {
            throw new ValidationException("entities", $"at most {Limits.MaxEntities} entities are allowed (got {entities.Count})");
        }
        var result = new List<string>(entities.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in entities)
        {
            // Invisible characters folded away as the graph folds its names: "Alice" and "Al\u200Bice" are one entity (the
            // spelling kept; EntityNames.Key folds them too, so filters match memories stored before this fold).
            var name = raw is null ? "" : EntityNames.Normalize(UnicodeText.FoldInvisible(raw));
            if (name.Length == 0)
            {
                throw new ValidationException("entities", "entities must be non-empty strings");
            }
            if (name.Length > Limits.MaxEntityChars && UnicodeText.CountCharacters(name) is var characters && characters > Limits.MaxEntityChars)
            {
                throw new ValidationException("entities", $"entity '{UnicodeText.Excerpt(name, 20)}…' has {characters} characters; the limit is {Limits.MaxEntityChars}");
            }
            if (HasControl(name))
            {
                throw new ValidationException("entities", "entity names must not contain control characters");
            }
            UnicodeText.Require(name, "entities");
            if (seen.Add(EntityNames.Key(name)))
            {
                result.Add(name);
            }
        }
        return result;
    }

    public JsonElement Metadata(JsonElement? metadata)
    {
        if (metadata is null || metadata.Value.ValueKind == JsonValueKind.Null)
        {
            return EmptyObject;
        }
        if (metadata.Value.ValueKind != JsonValueKind.Object)
        {
            throw new ValidationException("metadata", $"metadata must be a JSON object (got {metadata.Value.ValueKind.ToString().ToLowerInvariant()})");
        }
        // Measured on its own bytes: turning invalid UTF-8 into a string would throw before the Unicode check.
        var size = UnicodeText.RawUtf8(metadata.Value).Length;
        if (size > Limits.MaxMetadataBytes)
        {
            throw new ValidationException("metadata", $"metadata is {size} bytes of JSON; the limit is {Limits.MaxMetadataBytes}");
        }
        StoredJsonRules.Require(metadata.Value, "metadata");
        return metadata.Value.Clone();
    }

    /// <summary>
    /// Scope fields, source: optional, 1..MaxFieldChars, no control characters, and no invisible characters
    /// (<see cref="UnicodeText.RequireVisible"/>): a scope value is an identifier, so "alice" and "al\u200Bice" would be
    /// two users that look alike everywhere. Refused rather than folded: quietly moving a write into another scope than
    /// the one named is worse than a 400 naming the field.
    /// </summary>
    /// <param name="keepsInvisible">Take invisible characters: a store's own records copied by a restore or a migration,
    /// written before they were refused (<see cref="Storage.Transfer.ImportValidation.KeepsStoredIdentifiers"/>).</param>
    public string? Field(string name, string? value, bool keepsInvisible = false)
    {
        if (value is null)
        {
            return null;
        }
        if (value.Length == 0 || (value.Length > Limits.MaxFieldChars && UnicodeText.CountCharacters(value) > Limits.MaxFieldChars) || HasControl(value) || value.AsSpan().Trim().Length != value.Length)
        {
            throw new ValidationException(name,
                $"{name} must be 1-{Limits.MaxFieldChars} characters without control characters or surrounding white space");
        }
        UnicodeText.Require(value, name);
        if (!keepsInvisible)
        {
            UnicodeText.RequireVisible(value, name);
        }
        return value;
    }

    /// <summary>
    /// Checks a filter (listing, bulk delete, search) before it reaches the store; <paramref name="prefix"/>
    /// is how the caller named the filter object (<c>filters.</c> in a search body). Scope and source
    /// values that are empty or only white space are refused everywhere alike: no memory holds such a
    /// value, so the filter was a mistake, and in a bulk delete it must not count as a scope. Lists hold
    /// at most <see cref="MemoryLimits.MaxFilterValues"/> values.
    /// </summary>
    public MemoryFilter Filter(MemoryFilter filter, string prefix = "")
    {
        FilterValue(prefix + "user_id", filter.UserId);
        FilterValue(prefix + "agent_id", filter.AgentId);
        FilterValue(prefix + "session_id", filter.SessionId);
        FilterValue(prefix + "namespace", filter.Namespace);
        FilterValue(prefix + "source", filter.Source);
        Count(filter.Tags?.Count, prefix + "tags");
        Count(filter.Types?.Count, prefix + "type");
        Count(filter.Tiers?.Count, prefix + "tier");
        Count(filter.Metadata?.Count, prefix + "metadata");
        // Tags are compared as they are stored, folded (FoldTag): "urgent\u200B" finds the memory tagged "urgent". A tag of
        // invisible characters only stays as given rather than vanishing from the filter (which would widen a bulk delete).
        return filter.Tags is { Count: > 0 } tags && tags.Any(t => !string.Equals(FoldedFilterTag(t), t, StringComparison.Ordinal))
            ? filter with { Tags = [.. tags.Select(FoldedFilterTag)] }
            : filter;

        // A null (a JSON array may hold one) goes on as it came.
        static string FoldedFilterTag(string tag) => tag is not null && FoldTag(tag) is { Length: > 0 } folded ? folded : tag!;

        void Count(int? count, string field)
        {
            if (count > Limits.MaxFilterValues)
            {
                throw new ValidationException(field, $"{field} filters on {count} values; the limit is {Limits.MaxFilterValues} (Engram:Limits:MaxFilterValues)");
            }
        }
    }

    private static void FilterValue(string name, string? value)
    {
        if (value is not null && value.AsSpan().Trim().IsEmpty)
        {
            throw new ValidationException(name, $"{name} must not be empty; leave it out to match every value");
        }
    }

    public static DateTimeOffset? Expiry(DateTimeOffset? expiresAt, long? ttlSeconds, DateTimeOffset now)
    {
        if (expiresAt is not null && ttlSeconds is not null)
        {
            throw new ValidationException("ttl_seconds", "give expires_at or ttl_seconds, not both");
        }
        if (ttlSeconds is { } ttl)
        {
            return ttl is < 1 or > 100L * 365 * 24 * 3600
                ? throw new ValidationException("ttl_seconds", "ttl_seconds must be between 1 and 3153600000 (100 years)")
                : now.AddSeconds(ttl);
        }
        if (expiresAt is { } at && at <= now)
        {
            throw new ValidationException("expires_at", "expires_at must be in the future");
        }
        return expiresAt;
    }

    public static void Validity(DateTimeOffset? validFrom, DateTimeOffset? validTo)
    {
        if (validFrom is not null && validTo is not null && validTo < validFrom)
        {
            throw new ValidationException("valid_to", "valid_to must not be before valid_from");
        }
    }

    private static bool IsLowercaseWord(string text)
    {
        if (text[0] is < 'a' or > 'z')
        {
            return false;
        }
        foreach (var c in text)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' or '-'))
            {
                return false;
            }
        }
        return true;
    }

    private static bool HasControl(string text)
    {
        foreach (var c in text)
        {
            if (char.IsControl(c))
            {
                return true;
            }
        }
        return false;
    }

    public static JsonElement EmptyObject { get; } = JsonDocument.Parse("{}").RootElement.Clone();
}
