using System.Text;

namespace Engram.Tests.Durability;

/// <summary>Sentence-like memory contents from small word lists, reproducible from a seed.</summary>
public sealed class SentenceGenerator(int seed)
{
    private static readonly string[] Subjects = ["The user", "Alice", "The agent", "Our team", "Bob", "The customer", "My manager", "The build"];
    private static readonly string[] Verbs = ["prefers", "mentioned", "asked about", "decided on", "dislikes", "scheduled", "reviewed", "forgot"];
    private static readonly string[] Objects =
    [
        "dark mode in the editor", "a meeting on Tuesday morning", "the quarterly report", "vegetarian restaurants",
        "the deployment to production", "flights to Lisbon in May", "the new onboarding flow", "tabs over spaces",
    ];
    private static readonly string[] Tails = ["", " because it was late", " after the last incident", " for the second time", " without telling anyone"];

    private readonly Random _random = new(seed);

    /// <summary>A sentence ending in <paramref name="marker"/>, which keeps every content unique (no duplicate folding).</summary>
    public string Next(string marker)
    {
        var text = new StringBuilder(128);
        text.Append(Subjects[_random.Next(Subjects.Length)]).Append(' ')
            .Append(Verbs[_random.Next(Verbs.Length)]).Append(' ')
            .Append(Objects[_random.Next(Objects.Length)])
            .Append(Tails[_random.Next(Tails.Length)])
            .Append(" (").Append(marker).Append(").");
        return text.ToString();
    }

    public int Next(int minValue, int maxValue) => _random.Next(minValue, maxValue);
}
