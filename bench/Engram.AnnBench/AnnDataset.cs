using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Engram.Core.Embeddings;
using Engram.Core.Indexing;

namespace Engram.AnnBench;

/// <summary>Unit-length word vectors split into indexed data and held-out queries, plus exact ground truth.</summary>
internal sealed class AnnDataset
{
    private AnnDataset(int dimensions, float[] data, float[] queries, string[] queryWords)
    {
        Dimensions = dimensions;
        Data = data;
        QueryVectors = queries;
        QueryWords = queryWords;
    }

    public int Dimensions { get; }

    public float[] Data { get; }

    public float[] QueryVectors { get; }

    public string[] QueryWords { get; }

    public int Count => Data.Length / Dimensions;

    public int QueryCount => QueryVectors.Length / Dimensions;

    public ReadOnlySpan<float> Row(int i) => Data.AsSpan(i * Dimensions, Dimensions);

    public ReadOnlySpan<float> Query(int i) => QueryVectors.AsSpan(i * Dimensions, Dimensions);

    /// <summary>
    /// Takes the n + queries most frequent words and holds out a seeded random <paramref name="queries"/> of them as
    /// queries, so queries follow the data's distribution (the least frequent words would be atypical queries).
    /// </summary>
    public static AnnDataset FromModel(WordVectorModel model, int n, int queries, int seed = 1234)
    {
        var total = n + queries;
        if (total > model.Count)
        {
            throw new ArgumentException($"the model has {model.Count} words, fewer than {n} + {queries}");
        }
        var order = Enumerable.Range(0, total).ToArray();
        new Random(seed).Shuffle(order);
        var queryIds = order[..queries];
        var isQuery = new bool[total];
        foreach (var q in queryIds)
        {
            isQuery[q] = true;
        }
        var dims = model.Dimensions;
        var data = new float[n * dims];
        var query = new float[queries * dims];
        var words = new string[queries];
        int d = 0, qi = 0;
        for (var w = 0; w < total; w++)
        {
            var target = isQuery[w] ? query.AsSpan(qi * dims, dims) : data.AsSpan(d * dims, dims);
            model.CopyVector(w, target);
            var norm = TensorPrimitives.Norm(target);
            if (norm > 0)
            {
                TensorPrimitives.Divide(target, norm, target);
            }
            if (isQuery[w])
            {
                words[qi++] = model.Word(w);
            }
            else
            {
                d++;
            }
        }
        return new AnnDataset(dims, data, query, words);
    }

    /// <summary>
    /// Unit-length rows of <paramref name="vectors"/> (<paramref name="dims"/> each): a seeded random
    /// <paramref name="queries"/> of them held out as queries, the rest indexed.
    /// </summary>
    public static AnnDataset FromVectors(float[] vectors, int dims, int queries, int seed = 1234)
    {
        var total = vectors.Length / dims;
        var order = Enumerable.Range(0, total).ToArray();
        new Random(seed).Shuffle(order);
        var isQuery = new bool[total];
        foreach (var q in order[..queries])
        {
            isQuery[q] = true;
        }
        var data = new float[(total - queries) * dims];
        var query = new float[queries * dims];
        int d = 0, qi = 0;
        for (var i = 0; i < total; i++)
        {
            var target = isQuery[i] ? query.AsSpan(qi++ * dims, dims) : data.AsSpan(d++ * dims, dims);
            vectors.AsSpan(i * dims, dims).CopyTo(target);
            var norm = TensorPrimitives.Norm(target);
            if (norm > 0)
            {
                TensorPrimitives.Divide(target, norm, target);
            }
        }
        return new AnnDataset(dims, data, query, new string[queries]);
    }

    public void Write(string folder)
    {
        File.WriteAllBytes(Path.Combine(folder, "data.f32"), MemoryMarshal.AsBytes(Data.AsSpan()).ToArray());
        File.WriteAllBytes(Path.Combine(folder, "queries.f32"), MemoryMarshal.AsBytes(QueryVectors.AsSpan()).ToArray());
    }

    /// <summary>Exact top-k of every query by brute force, on all cores.</summary>
    public int[][] GroundTruth(int k)
    {
        var truth = new int[QueryCount][];
        Parallel.For(0, QueryCount, q =>
        {
            var buffer = new ScoredDoc[k];
            var top = new TopK(buffer);
            var query = Query(q);
            for (var i = 0; i < Count; i++)
            {
                top.Add(i, TensorPrimitives.Dot(query, Row(i)));
            }
            var found = top.Finish();
            truth[q] = [.. buffer.AsSpan(0, found).ToArray().Select(r => r.Doc)];
        });
        return truth;
    }

    public static double Recall(int[][] truth, Func<int, ReadOnlyMemory<int>> results)
    {
        long hits = 0, total = 0;
        for (var q = 0; q < truth.Length; q++)
        {
            var expected = truth[q];
            foreach (var doc in results(q).Span)
            {
                if (Array.IndexOf(expected, doc) >= 0)
                {
                    hits++;
                }
            }
            total += expected.Length;
        }
        return hits / (double)total;
    }
}
