using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using Engram.Core.Embeddings;

// Usage: dotnet run -c Release --project tools/EmbedEval -- [--data DIR] [--float32 f32.bin] [--sweep]
// Retrieval protocol: /work/shared/data/locomo-dev/README.md.
var dataDir = Arg("--data") ?? "/work/shared/data/locomo-dev";
var floatPath = Arg("--float32");
var sweep = args.Contains("--sweep");

// ---- Load time: parse the embedded model fresh (not the shared instance), then build the default provider. ----
var loads = new List<double>();
var ctors = new List<double>();
WordVectorModel model = null!;
for (var i = 0; i < 5; i++)
{
    var sw = Stopwatch.StartNew();
    using (var stream = typeof(WordVectorModel).Assembly.GetManifestResourceStream(WordVectorModel.EmbeddedResourceName)!)
    {
        model = WordVectorModel.Load(stream);
    }
    loads.Add(sw.Elapsed.TotalMilliseconds);
    sw.Restart();
    _ = new BuiltinEmbeddingProvider(model); // default options: SIF weights
    ctors.Add(sw.Elapsed.TotalMilliseconds);
}
Console.WriteLine($"model {model.ModelId}: {model.Count} words x {model.Dimensions}, {model.Type}");
Console.WriteLine($"load (parse embedded resource): first {loads[0]:F0} ms, best of 5 {loads.Min():F0} ms; provider setup (SIF weights): first {ctors[0]:F0} ms, best {ctors.Min():F0} ms");

var floatModel = floatPath is null ? null : WordVectorModel.Load(floatPath);
var conversations = LoadConversations(dataDir);
Console.WriteLine($"{conversations.Count} conversations, {conversations.Sum(c => c.Turns.Count)} turns, {conversations.Sum(c => c.Questions.Count)} questions (categories 1-4 with evidence)");
Console.WriteLine();

var variants = new List<(string Name, IEmbeddingProvider Provider, bool CorpusComponent)>
{
    ("int8 mean", new BuiltinEmbeddingProvider(model, new() { Weighting = WordWeighting.Mean, RemoveCommonComponent = false }), false),
    ("int8 mean + cc", new BuiltinEmbeddingProvider(model, new() { Weighting = WordWeighting.Mean, RemoveCommonComponent = true }), false),
    ("int8 SIF (default)", new BuiltinEmbeddingProvider(model), false),
    ("int8 SIF + cc", new BuiltinEmbeddingProvider(model, new() { RemoveCommonComponent = true }), false),
    ("int8 SIF + corpus PC (oracle)", new BuiltinEmbeddingProvider(model, new() { RemoveCommonComponent = false }), true),
    ("int8 SIF + symbols", new BuiltinEmbeddingProvider(model, new() { IncludeSymbols = true }), false),
    ("hash 256 (lexical baseline)", new HashEmbeddingProvider(256), false),
};
if (floatModel is not null)
{
    variants.Add(("f32 mean", new BuiltinEmbeddingProvider(floatModel, new() { Weighting = WordWeighting.Mean, RemoveCommonComponent = false }), false));
    variants.Add(("f32 SIF", new BuiltinEmbeddingProvider(floatModel), false));
    variants.Add(("f32 SIF + cc", new BuiltinEmbeddingProvider(floatModel, new() { RemoveCommonComponent = true }), false));
}
if (sweep)
{
    foreach (var a in new[] { 1e-4f, 3e-4f, 3e-3f, 1e-2f })
    {
        variants.Add(($"int8 SIF a={a}", new BuiltinEmbeddingProvider(model, new() { SifA = a, RemoveCommonComponent = false }), false));
    }
}

Console.WriteLine($"{"variant",-32} {"R@1",6} {"R@5",6} {"R@10",6} {"R@20",6}   R@10 by category 1/2/3/4");
foreach (var (name, provider, corpusComponent) in variants)
{
    var result = Evaluate(conversations, provider, corpusComponent);
    var cats = string.Join(" / ", Enumerable.Range(1, 4).Select(c => result.ByCategory.TryGetValue(c, out var r) ? r[2].ToString("F3", CultureInfo.InvariantCulture) : "-"));
    Console.WriteLine($"{name,-32} {result.Overall[0],6:F3} {result.Overall[1],6:F3} {result.Overall[2],6:F3} {result.Overall[3],6:F3}   {cats}");
}
if (sweep)
{
    // Candidate fixed common components: the top eigenvector of the weighted second moment of word vectors.
    var sif = new BuiltinEmbeddingProvider(model, new() { RemoveCommonComponent = false });
    foreach (var top in new[] { 5000, 20000 })
    {
        var rows = new float[top][];
        for (var i = 0; i < top; i++)
        {
            rows[i] = new float[model.Dimensions];
            model.CopyVector(i, rows[i]);
            TensorPrimitives.Multiply(rows[i], sif.Weight(i) * MathF.Sqrt((float)BuiltinEmbeddingProvider.ZipfProbability(i)), rows[i]);
        }
        var direction = FirstSingularVector(rows, model.Dimensions);
        var current = new BuiltinEmbeddingProvider(model, new() { RemoveCommonComponent = true }).CommonComponent.ToArray();
        var result = Evaluate(conversations, sif, false, direction);
        Console.WriteLine($"{"int8 SIF + word-PC top " + top,-32} {result.Overall[0],6:F3} {result.Overall[1],6:F3} {result.Overall[2],6:F3} {result.Overall[3],6:F3}   cos(PC, mean cc) = {TensorPrimitives.Dot(direction, current):F3}");
    }
}
Console.WriteLine($"(questions per category: {string.Join(", ", conversations.SelectMany(c => c.Questions).GroupBy(q => q.Category).OrderBy(g => g.Key).Select(g => $"{g.Key}: {g.Count()}"))})");

// ---- Throughput: single-threaded, all turns, repeated for about two seconds. ----
Console.WriteLine();
var texts = conversations.SelectMany(c => c.Turns.Select(t => t.Text)).ToArray();
var chars = texts.Sum(t => t.Length);
Console.WriteLine($"throughput over {texts.Length} turns (mean {chars / (double)texts.Length:F0} chars), single thread:");
foreach (var (name, provider) in new (string, BuiltinEmbeddingProvider)[] { ("int8 SIF", new BuiltinEmbeddingProvider(model)) }
    .Concat(floatModel is null ? [] : [("f32 SIF", new BuiltinEmbeddingProvider(floatModel))]))
{
    var buffer = new float[provider.Dimensions];
    foreach (var t in texts)
    {
        provider.Embed(t, buffer); // warm up
    }
    var allocated = GC.GetAllocatedBytesForCurrentThread();
    var sw = Stopwatch.StartNew();
    long done = 0;
    while (sw.ElapsedMilliseconds < 2000)
    {
        foreach (var t in texts)
        {
            provider.Embed(t, buffer);
        }
        done += texts.Length;
    }
    var seconds = sw.Elapsed.TotalSeconds;
    allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
    Console.WriteLine($"  {name}: {done / seconds:N0} sentences/s, {chars * (done / (double)texts.Length) / seconds / 1e6:F1} M chars/s, {allocated / (double)done:F1} bytes allocated per sentence");
}
var hash = new HashEmbeddingProvider(256);
var hsw = Stopwatch.StartNew();
long hdone = 0;
while (hsw.ElapsedMilliseconds < 1000)
{
    foreach (var t in texts)
    {
        _ = hash.Embed(t);
    }
    hdone += texts.Length;
}
Console.WriteLine($"  hash 256: {hdone / hsw.Elapsed.TotalSeconds:N0} sentences/s");
return 0;

string? Arg(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

static List<Conversation> LoadConversations(string dir)
{
    var list = new List<Conversation>();
    foreach (var file in Directory.GetFiles(dir, "*.json").Order(StringComparer.Ordinal))
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
        var root = doc.RootElement;
        var turns = new List<Turn>();
        for (var s = 1; root.TryGetProperty($"session_{s}", out var session) || root.TryGetProperty($"session_{s}_date_time", out _); s++)
        {
            if (session.ValueKind != JsonValueKind.Array)
            {
                continue;
            }
            foreach (var turn in session.EnumerateArray())
            {
                var text = $"{turn.GetProperty("speaker").GetString()}: {turn.GetProperty("text").GetString()}";
                if (turn.TryGetProperty("blip_caption", out var caption) && caption.ValueKind == JsonValueKind.String)
                {
                    text += " " + caption.GetString();
                }
                turns.Add(new Turn(turn.GetProperty("dia_id").GetString()!, text));
            }
        }
        var questions = new List<Question>();
        foreach (var qa in root.GetProperty("qa").EnumerateArray())
        {
            var category = qa.GetProperty("category").GetInt32();
            if (category is < 1 or > 4 || !qa.TryGetProperty("evidence", out var evidence))
            {
                continue;
            }
            // One evidence entry in the data is "D8:6; D9:17": split it.
            var ids = evidence.EnumerateArray()
                .SelectMany(e => e.GetString()!.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                .ToHashSet(StringComparer.Ordinal);
            if (ids.Count > 0)
            {
                questions.Add(new Question(qa.GetProperty("question").GetString()!, category, ids));
            }
        }
        list.Add(new Conversation(Path.GetFileName(file), turns, questions));
    }
    return list;
}

static EvalResult Evaluate(List<Conversation> conversations, IEmbeddingProvider provider, bool corpusComponent, float[]? fixedDirection = null)
{
    int[] ks = [1, 5, 10, 20];
    var sums = new double[4];
    var byCategory = new Dictionary<int, (double[] Sums, int Count)>();
    var n = 0;
    foreach (var conversation in conversations)
    {
        var turnVectors = provider.EmbedBatchAsync(conversation.Turns.Select(t => t.Text).ToList()).AsTask().GetAwaiter().GetResult();
        float[]? pc = corpusComponent ? FirstSingularVector(turnVectors, provider.Dimensions) : fixedDirection;
        if (pc is not null)
        {
            foreach (var v in turnVectors)
            {
                RemoveAndNormalize(v, pc);
            }
        }
        var scores = new float[turnVectors.Length];
        var order = new int[turnVectors.Length];
        foreach (var question in conversation.Questions)
        {
            var q = provider.EmbedAsync(question.Text).AsTask().GetAwaiter().GetResult();
            if (pc is not null)
            {
                RemoveAndNormalize(q, pc);
            }
            for (var i = 0; i < turnVectors.Length; i++)
            {
                scores[i] = -TensorPrimitives.Dot(q, turnVectors[i]);
                order[i] = i;
            }
            Array.Sort((float[])scores.Clone(), order); // stable enough: ties are rare and broken by index order
            if (!byCategory.TryGetValue(question.Category, out var cat))
            {
                cat = (new double[4], 0);
            }
            for (var k = 0; k < ks.Length; k++)
            {
                var hits = 0;
                for (var r = 0; r < Math.Min(ks[k], order.Length); r++)
                {
                    if (question.Evidence.Contains(conversation.Turns[order[r]].DiaId))
                    {
                        hits++;
                    }
                }
                var recall = hits / (double)question.Evidence.Count;
                sums[k] += recall;
                cat.Sums[k] += recall;
            }
            byCategory[question.Category] = (cat.Sums, cat.Count + 1);
            n++;
        }
    }
    return new EvalResult(
        sums.Select(s => s / n).ToArray(),
        byCategory.ToDictionary(kv => kv.Key, kv => kv.Value.Sums.Select(s => s / kv.Value.Count).ToArray()));
}

static float[] FirstSingularVector(float[][] rows, int dims)
{
    var v = new float[dims];
    v.AsSpan().Fill(1f / MathF.Sqrt(dims));
    var next = new float[dims];
    for (var iteration = 0; iteration < 50; iteration++)
    {
        Array.Clear(next);
        foreach (var row in rows)
        {
            TensorPrimitives.MultiplyAdd(row, TensorPrimitives.Dot(row, v), next, next);
        }
        TensorPrimitives.Divide(next, TensorPrimitives.Norm(next), v);
    }
    return v;
}

static void RemoveAndNormalize(float[] v, float[] direction)
{
    TensorPrimitives.MultiplyAdd(direction, -TensorPrimitives.Dot(v, direction), v, v);
    var norm = TensorPrimitives.Norm(v);
    if (norm > 0)
    {
        TensorPrimitives.Divide(v, norm, v);
    }
}

internal sealed record Turn(string DiaId, string Text);

internal sealed record Question(string Text, int Category, HashSet<string> Evidence);

internal sealed record Conversation(string Name, List<Turn> Turns, List<Question> Questions);

internal sealed record EvalResult(double[] Overall, Dictionary<int, double[]> ByCategory);
