using System.Text;
using Engram.Core.Memories;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// Memory number <c>i</c> of a deterministic synthetic corpus: one to three sentences in the shape of
/// agent notes ("Priya asked about the budget review before the release last week."), whose content
/// words come from <see cref="Vocabulary"/> with realistic frequencies, plus a user, tags, a type and an
/// importance. Any memory can be regenerated from its number alone, so senders, queries and the
/// lexical benchmark share one corpus without holding it.
/// </summary>
public sealed class CorpusGenerator(Vocabulary vocabulary, int seed)
{
    private static readonly string[] Subjects =
    [
        "The user", "Alice", "Bob", "The agent", "Our team", "The customer", "My manager", "Priya", "Chen", "The on-call engineer",
        "Maria", "The assistant", "Sam", "The client", "Jonas", "Fatima", "Our CTO", "The landlord", "Grandma", "The support lead",
    ];

    private static readonly string[] Verbs =
    [
        "prefers", "mentioned", "asked about", "decided on", "dislikes", "scheduled", "reviewed", "forgot about", "is worried about",
        "recommended", "bought", "wants", "cancelled", "shared notes on", "complained about", "is learning", "finished", "booked",
        "compared", "postponed", "signed up for", "asked for help with", "loves", "needs", "reported a problem with",
    ];

    private static readonly string[] Links = ["for the", "with the", "about the", "and the", "of the", "near the", "before the", "after the", "during the", "and"];

    private static readonly string[] Tails =
    [
        "", "", "", " last week", " yesterday", " again", " this morning", " for the third time", " before the deadline",
        " during the standup", " on Friday", " after the call",
    ];

    private static readonly string[] Tags = ["preference", "work", "travel", "health", "project", "schedule", "food", "tooling", "family", "finance", "learning", "support"];

    private static readonly string[] Types = ["fact", "fact", "fact", "preference", "event", "instruction"];

    public Vocabulary Vocabulary => vocabulary;

    public string Text(long index)
    {
        var random = SplitMix.For(seed, index);
        var text = new StringBuilder(256);
        var roll = random.NextDouble();
        var sentences = roll < 0.5 ? 1 : roll < 0.85 ? 2 : 3;
        for (var s = 0; s < sentences; s++)
        {
            if (s > 0)
            {
                text.Append(' ');
            }
            AppendSentence(text, ref random);
        }
        return text.ToString();
    }

    public NewMemory Memory(long index)
    {
        // A second stream for the fields, so the text of memory i is the same with or without them.
        var random = SplitMix.For(seed ^ 0x3C6EF372, index);
        var first = Tags[random.Next(Tags.Length)];
        var second = Tags[random.Next(Tags.Length)];
        return new NewMemory
        {
            Content = Text(index),
            Type = Types[random.Next(Types.Length)],
            Tags = first == second ? [first] : [first, second],
            UserId = "user-" + random.Next(100),
            Importance = Math.Round(random.NextDouble(), 2),
        };
    }

    private void AppendSentence(StringBuilder text, ref SplitMix random)
    {
        text.Append(Subjects[random.Next(Subjects.Length)]).Append(' ').Append(Verbs[random.Next(Verbs.Length)]).Append(" the ");
        AppendWords(text, ref random, 1 + random.Next(2));
        text.Append(' ').Append(Links[random.Next(Links.Length)]).Append(' ');
        AppendWords(text, ref random, 1 + random.Next(3));
        if (random.Next(3) == 0)
        {
            text.Append(", ").Append(Links[random.Next(Links.Length)]).Append(' ');
            AppendWords(text, ref random, 1 + random.Next(2));
        }
        text.Append(Tails[random.Next(Tails.Length)]).Append('.');
    }

    private void AppendWords(StringBuilder text, ref SplitMix random, int count)
    {
        for (var i = 0; i < count; i++)
        {
            if (i > 0)
            {
                text.Append(' ');
            }
            text.Append(vocabulary.Sample(ref random));
        }
    }
}
