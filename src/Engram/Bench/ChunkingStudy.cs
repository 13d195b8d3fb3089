using System.Numerics.Tensors;
using System.Text.Json;
using Engram.Core.Embeddings;

namespace Engram.Cli.Bench;

/// <summary>
/// Should a long memory be embedded in chunks and scored by its best chunk? Measured on the semantic signal
/// alone, on LoCoMo-shaped files (the turns and questions of <see cref="LocomoBenchmark"/>): every turn is
/// embedded whole (the model truncates at its window) and, when longer than a window of
/// <c>chunkChars</c> characters, also in overlapping chunks cut at sentence or word boundaries, each
/// carrying the turn's "speaker: " prefix. Each question ranks the turns three ways: by the whole turn's
/// cosine, by the best chunk's, and by the better of the two. The recall figures of the three rankings show
/// whether chunks move evidence up or move long distractors up.
/// </summary>
public sealed class ChunkingStudy(IEmbeddingProvider embedder, int chunkChars, int overlapChars)
{
    public sealed record Ranking(string Name, List<LocomoBenchmark.QuestionResult> Results);

    /// <summary>Turns chunked, chunks embedded, and the turns that were longer than one window.</summary>
    public int ChunkedTurns { get; private set; }

    public int Chunks { get; private set; }

    public int Turns { get; private set; }

    public async Task<Ranking[]> RunAsync(IReadOnlyList<string> files, Action<string>? progress, CancellationToken ct)
    {
        var whole = new List<LocomoBenchmark.QuestionResult>();
        var best = new List<LocomoBenchmark.QuestionResult>();
        var either = new List<LocomoBenchmark.QuestionResult>();
        foreach (var file in files)
        {
            using var document = JsonDocument.Parse(await File.ReadAllBytesAsync(file, ct).ConfigureAwait(false));
            var turns = LocomoBenchmark.ReadTurns(document.RootElement);
            var questions = LocomoBenchmark.ReadQuestions(document.RootElement);
            var dia = turns.Select(t => t.Metadata!.Value.GetProperty("dia_id").GetString()!).ToArray();
            var texts = turns.Select(t => t.Content ?? "").ToArray();
            var wholeVectors = await embedder.EmbedBatchAsync(texts, ct).ConfigureAwait(false);

            // Chunks of the long turns, flattened, with the turn each came from.
            var owners = new List<int>();
            var chunkTexts = new List<string>();
            for (var i = 0; i < texts.Length; i++)
            {
                var pieces = Split(texts[i], chunkChars, overlapChars);
                if (pieces.Count > 1)
                {
                    ChunkedTurns++;
                    foreach (var piece in pieces)
                    {
                        owners.Add(i);
                        chunkTexts.Add(piece);
                    }
                }
            }
            Turns += texts.Length;
            Chunks += chunkTexts.Count;
            var chunkVectors = chunkTexts.Count == 0 ? [] : await embedder.EmbedBatchAsync(chunkTexts, ct).ConfigureAwait(false);

            foreach (var (question, category, type, evidence, sessions) in questions)
            {
                var query = await embedder.EmbedQueryAsync(question, ct).ConfigureAwait(false);
                var wholeScore = wholeVectors.Select(v => TensorPrimitives.Dot(v, query)).ToArray();
                var chunkScore = (float[])wholeScore.Clone(); // a short turn is its own single chunk
                var touched = new bool[texts.Length];
                for (var c = 0; c < chunkVectors.Length; c++)
                {
                    var owner = owners[c];
                    var score = TensorPrimitives.Dot(chunkVectors[c], query);
                    chunkScore[owner] = touched[owner] ? Math.Max(chunkScore[owner], score) : score;
                    touched[owner] = true;
                }
                var eitherScore = wholeScore.Zip(chunkScore, Math.Max).ToArray();
                whole.Add(Result(question, category, type, evidence, sessions, wholeScore, dia));
                best.Add(Result(question, category, type, evidence, sessions, chunkScore, dia));
                either.Add(Result(question, category, type, evidence, sessions, eitherScore, dia));
            }
            progress?.Invoke($"{Path.GetFileName(file)}: {texts.Length} turns, {chunkTexts.Count} chunks, {questions.Count} questions");
        }
        return [new("whole turn (truncated at the model's window)", whole), new("best chunk", best), new("max(whole, best chunk)", either)];
    }

    private static LocomoBenchmark.QuestionResult Result(string question, int category, string? type, List<string> evidence, List<string> sessions,
        float[] scores, string[] dia)
    {
        var order = Enumerable.Range(0, scores.Length).OrderByDescending(i => scores[i]).Take(50).ToList();
        return new LocomoBenchmark.QuestionResult(question, category, type, evidence, sessions, order.Select(i => dia[i]).ToList(),
            order.Select(i => Math.Round((double)scores[i], 4)).ToList());
    }

    /// <summary>
    /// Cuts <paramref name="text"/> into windows of at most <paramref name="size"/> characters that overlap by
    /// about <paramref name="overlap"/>, ending at a sentence end or else a space where one is in the window's last
    /// third; every window after the first starts with the text's "speaker: " prefix. One window when it fits.
    /// </summary>
    public static List<string> Split(string text, int size, int overlap)
    {
        if (text.Length <= size)
        {
            return [text];
        }
        var colon = text.IndexOf(": ", StringComparison.Ordinal);
        var prefix = colon is > 0 and < 40 ? text[..(colon + 2)] : "";
        var pieces = new List<string>();
        var start = prefix.Length;
        while (start < text.Length)
        {
            var room = size - prefix.Length;
            var end = Math.Min(text.Length, start + room);
            if (end < text.Length)
            {
                var window = text.AsSpan(start, end - start);
                var cut = Math.Max(window.LastIndexOf(". "), Math.Max(window.LastIndexOf("\n"), Math.Max(window.LastIndexOf("? "), window.LastIndexOf("! "))));
                if (cut < room * 2 / 3)
                {
                    cut = window.LastIndexOf(' ');
                }
                if (cut > room / 3)
                {
                    end = start + cut + 1;
                }
            }
            pieces.Add(prefix + text[start..end].Trim());
            if (end >= text.Length)
            {
                break;
            }
            var next = end - overlap;
            var space = next > start ? text.IndexOf(' ', next) : -1;
            start = space > start && space < end ? space + 1 : end;
        }
        return pieces;
    }
}
