namespace Engram.Cli.Bench;

/// <summary>
/// Entity names for conversation turns that carry no annotation, found with a deliberately simple
/// rule: a proper noun is a capitalised word (two characters or more, possessive "'s" dropped) that is
/// not in <see cref="StopList"/>; neighbouring ones with nothing but a space between them form one name
/// ("New York"). The first word of a sentence is capitalised anyway, so it counts only when the same
/// word also appears capitalised inside a sentence somewhere in the conversation (what the
/// constructor collects from all of its turns). Only turn texts are read, never questions or answers.
/// </summary>
internal sealed class ProperNouns
{
    /// <summary>Capitalised for other reasons: the pronoun I, greetings and interjections, days and months.</summary>
    private static readonly HashSet<string> StopList = new(StringComparer.OrdinalIgnoreCase)
    {
        "i", "im", "i'm", "i’m", "i've", "i’ve", "i'll", "i’ll", "i'd", "i’d",
        "a", "an", "the", "and", "but", "or", "so", "if", "then", "that", "this", "these", "those", "it", "it's", "it’s", "its",
        "what", "what's", "what’s", "how", "why", "when", "where", "who", "which", "my", "your", "our", "their", "his", "her",
        "we", "you", "he", "she", "they", "me", "us", "them", "there", "here", "just", "also", "by", "to", "in", "on", "at", "of", "for", "with",
        "ok", "okay", "oh", "ohh", "ooh", "hey", "hi", "hello", "wow", "whoa", "yeah", "yes", "yep", "no", "nope", "thanks", "thank",
        "haha", "hah", "lol", "omg", "awesome", "congrats", "congratulations", "sure", "cool", "great", "nice", "good", "sorry",
        "please", "well", "sounds", "looks", "seems", "amazing", "love", "glad", "aww", "aw", "ah", "hmm", "btw", "gonna", "let's", "let’s",
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
        "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
    };

    private readonly HashSet<string> _capitalisedInsideSentences = new(StringComparer.Ordinal);

    /// <param name="texts">Every turn of the conversation (to learn which sentence-initial words are names).</param>
    public ProperNouns(IEnumerable<string> texts)
    {
        foreach (var text in texts)
        {
            foreach (var word in Words(text))
            {
                if (!word.SentenceStart && IsCandidate(word.Core))
                {
                    _capitalisedInsideSentences.Add(word.Core);
                }
            }
        }
    }

    /// <summary>The proper nouns of <paramref name="text"/>, in order of appearance, each once.</summary>
    public List<string> Find(string text)
    {
        var names = new List<string>();
        var run = new List<string>();
        void Flush()
        {
            if (run.Count > 0)
            {
                var name = string.Join(' ', run);
                if (!names.Contains(name, StringComparer.OrdinalIgnoreCase))
                {
                    names.Add(name);
                }
                run.Clear();
            }
        }

        foreach (var word in Words(text))
        {
            var counts = IsCandidate(word.Core) && (!word.SentenceStart || _capitalisedInsideSentences.Contains(word.Core));
            if (!counts)
            {
                Flush();
                continue;
            }
            if (word.BreaksBefore)
            {
                Flush();
            }
            run.Add(word.Core);
            if (word.BreaksAfter)
            {
                Flush();
            }
        }
        Flush();
        return names;
    }

    private static bool IsCandidate(string core) =>
        core.Length >= 2 && char.IsUpper(core[0]) && !StopList.Contains(core);

    private readonly record struct Word(string Core, bool SentenceStart, bool BreaksBefore, bool BreaksAfter);

    /// <summary>
    /// White-space separated words with surrounding punctuation stripped: whether each starts a
    /// sentence (first word, or after . ! ? or a line break) and whether punctuation precedes or follows it.
    /// </summary>
    private static IEnumerable<Word> Words(string text)
    {
        var sentenceStart = true;
        foreach (var line in text.Split('\n'))
        {
            sentenceStart = true;
            foreach (var token in line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var start = 0;
                var end = token.Length;
                while (start < end && !char.IsLetterOrDigit(token[start]))
                {
                    start++;
                }
                while (end > start && !char.IsLetterOrDigit(token[end - 1]))
                {
                    end--;
                }
                var core = token[start..end];
                if (core.EndsWith("'s", StringComparison.Ordinal) || core.EndsWith("’s", StringComparison.Ordinal))
                {
                    core = core[..^2];
                }
                var tail = token[end..];
                var endsSentence = tail.IndexOfAny(['.', '!', '?', '…']) >= 0;
                if (core.Length > 0)
                {
                    yield return new Word(core, sentenceStart, start > 0, tail.Length > 0);
                }
                sentenceStart = endsSentence || (core.Length == 0 && sentenceStart);
            }
        }
    }
}
