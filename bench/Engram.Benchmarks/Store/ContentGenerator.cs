using System.Text;
using Engram.Core.Memories;

namespace Engram.Benchmarks.Store;

/// <summary>
/// Realistic memories from word lists: one or two sentences of 60-250 characters, a few tags and a
/// user scope, reproducible from a seed. The generator's name and a running number keep every
/// content unique, so the duplicate check runs (as in production) but never folds two writes into one.
/// </summary>
public sealed class ContentGenerator(int seed, string name)
{
    private static readonly string[] Subjects =
        ["The user", "Alice", "The agent", "Our team", "Bob", "The customer", "My manager", "The on-call engineer", "Priya", "The assistant"];

    private static readonly string[] Verbs =
        ["prefers", "mentioned", "asked about", "decided on", "dislikes", "scheduled", "reviewed", "forgot about", "is allergic to", "recommended"];

    private static readonly string[] Objects =
    [
        "dark mode in every editor", "a meeting on Tuesday morning", "the quarterly revenue report", "vegetarian restaurants near the office",
        "the deployment to production", "flights to Lisbon in May", "the new onboarding flow", "tabs over spaces", "peanuts and shellfish",
        "the migration to PostgreSQL", "weekly one-on-ones", "the design review for the search page", "short answers with code samples",
    ];

    private static readonly string[] Tails =
    [
        "", " because the last attempt failed", " after the incident last week", " for the second time this month",
        " and wants a reminder the day before", " according to the support ticket", " when working late",
    ];

    private static readonly string[] Tags = ["preference", "work", "travel", "health", "project", "schedule", "food", "tooling"];

    private readonly Random _random = new(seed);
    private long _counter;

    public NewMemory Next()
    {
        var text = new StringBuilder(256);
        AppendSentence(text);
        if (_random.Next(3) == 0)
        {
            text.Append(' ');
            AppendSentence(text);
        }
        text.Append(" (note ").Append(name).Append('-').Append(++_counter).Append(')');
        return new NewMemory
        {
            Content = text.ToString(),
            Type = _random.Next(4) == 0 ? "preference" : "fact",
            Tags = [Tags[_random.Next(Tags.Length)], Tags[_random.Next(Tags.Length)]],
            UserId = "user-" + _random.Next(50),
            Importance = Math.Round(_random.NextDouble(), 2),
        };
    }

    public List<NewMemory?> NextBatch(int size)
    {
        var batch = new List<NewMemory?>(size);
        for (var i = 0; i < size; i++)
        {
            batch.Add(Next());
        }
        return batch;
    }

    private void AppendSentence(StringBuilder text) =>
        text.Append(Subjects[_random.Next(Subjects.Length)]).Append(' ')
            .Append(Verbs[_random.Next(Verbs.Length)]).Append(' ')
            .Append(Objects[_random.Next(Objects.Length)])
            .Append(Tails[_random.Next(Tails.Length)]).Append('.');
}
