using System.Globalization;
using System.Text;
using Engram.Core.Memories;
using Engram.Core.Search;

namespace Engram.Core.Llm;

/// <summary>A memory recalled for a chat turn, with the score it was ranked by (the lens's, when one applies).</summary>
public sealed record RecalledMemory(Memory Memory, double Score);

/// <summary>
/// What the chat (<c>POST /v1/chat</c>) and the memory proxy (<c>POST /v1/chat/completions</c>) put in front of the
/// model: the memories recalled for the last user turn, as one system message listing each with the date it was
/// recorded. The valence lens (<see cref="Valence"/>) weights recall by emotional intensity and tells the model how each
/// memory felt.
/// </summary>
public static class ChatContext
{
    /// <summary>No lens: the search's ranking as it is.</summary>
    public const string NoLens = "none";

    /// <summary>
    /// The valence lens: candidates are ranked by <c>score × (1 + |valence|)</c> (a memory felt strongly, either way,
    /// counts up to twice as much; one without a valence is unchanged), from <see cref="CandidateFactor"/> times k
    /// search results, and each memory the model sees carries its tone: <c>(felt: negative, -0.7)</c>.
    /// </summary>
    public const string Valence = "valence";

    /// <summary>How many more candidates than k a lens re-ranks.</summary>
    public const int CandidateFactor = 3;

    /// <summary>Longest memory text put in the prompt (longer ones are cut with an ellipsis).</summary>
    public const int MaxMemoryChars = 2_000;

    /// <summary>The lens named by a request (null: none), or null when the name is not one.</summary>
    public static string? ParseLens(string? lens) => lens switch
    {
        null or "" or NoLens => NoLens,
        Valence => Valence,
        _ => null,
    };

    /// <summary>How many search results to ask for, for k memories under <paramref name="lens"/>.</summary>
    public static int Candidates(int k, string lens, int maxK) => lens == Valence ? Math.Min(maxK, k * CandidateFactor) : k;

    /// <summary>The k memories the model sees, best first, scored by the lens.</summary>
    public static IReadOnlyList<RecalledMemory> Rank(IReadOnlyList<SearchHit> hits, int k, string lens)
    {
        var recalled = hits.Select(h => new RecalledMemory(h.Memory, lens == Valence ? h.Score * (1 + Math.Abs(h.Memory.Valence ?? 0)) : h.Score));
        if (lens == Valence)
        {
            // A stable sort: equal weighted scores keep the search's order.
            recalled = recalled.OrderByDescending(r => r.Score);
        }
        return [.. recalled.Take(k)];
    }

    /// <summary>The tone of a valence for the prompt: <c>negative, -0.7</c>, <c>neutral, 0.1</c>, <c>not recorded</c>.</summary>
    public static string Feeling(double? valence) => valence switch
    {
        null => "not recorded",
        >= 0.2 => string.Create(CultureInfo.InvariantCulture, $"positive, {valence:0.##}"),
        <= -0.2 => string.Create(CultureInfo.InvariantCulture, $"negative, {valence:0.##}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"neutral, {valence:0.##}"),
    };

    /// <summary>The system message listing <paramref name="memories"/> (one line each: date, text, tone under the valence lens).</summary>
    public static string SystemMessage(IReadOnlyList<RecalledMemory> memories, string lens)
    {
        var text = new StringBuilder();
        if (memories.Count == 0)
        {
            text.Append("You have a long-term memory of this user, but nothing in it relates to this message.");
            return text.ToString();
        }
        text.Append("You have a long-term memory of this user. These memories were recalled for this message, most relevant first, ")
            .Append("each with the date it was recorded (UTC)");
        text.Append(lens == Valence ? " and how it felt to the user (valence from -1, painful, to 1, joyful):\n" : ":\n");
        foreach (var recalled in memories)
        {
            var memory = recalled.Memory;
            var content = memory.Content.ReplaceLineEndings(" ");
            if (content.Length > MaxMemoryChars)
            {
                content = content[..MaxMemoryChars] + "…";
            }
            text.Append("- [").Append(memory.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)).Append("] ").Append(content);
            if (lens == Valence)
            {
                text.Append(" (felt: ").Append(Feeling(memory.Valence)).Append(')');
            }
            text.Append('\n');
        }
        text.Append("Use them where they help to answer; where they disagree, the more recent one is more likely current. ")
            .Append("Do not list them unless asked.");
        if (lens == Valence)
        {
            text.Append(" Let their tone guide yours: be considerate about what was painful, and share in what was joyful.");
        }
        return text.ToString();
    }
}
