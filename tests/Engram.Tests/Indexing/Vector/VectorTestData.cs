namespace Engram.Tests.Indexing.Vector;

/// <summary>Seeded synthetic data: unit vectors scattered around random cluster centres (like embeddings are).</summary>
internal static class VectorTestData
{
    public static float[][] Clustered(int count, int dimensions, int clusters, int seed, float spread = 0.6f)
    {
        var random = new Random(seed);
        var centres = new float[clusters][];
        for (var c = 0; c < clusters; c++)
        {
            centres[c] = Normalize(Gaussian(random, dimensions, 1f));
        }
        var vectors = new float[count][];
        for (var i = 0; i < count; i++)
        {
            var centre = centres[random.Next(clusters)];
            var noise = Gaussian(random, dimensions, spread / MathF.Sqrt(dimensions));
            for (var d = 0; d < dimensions; d++)
            {
                noise[d] += centre[d];
            }
            vectors[i] = Normalize(noise);
        }
        return vectors;
    }

    private static float[] Gaussian(Random random, int dimensions, float sigma)
    {
        var v = new float[dimensions];
        for (var d = 0; d < dimensions; d++)
        {
            // Box-Muller
            var u1 = 1.0 - random.NextDouble();
            var u2 = random.NextDouble();
            v[d] = (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2)) * sigma;
        }
        return v;
    }

    private static float[] Normalize(float[] v)
    {
        var norm = MathF.Sqrt(v.Sum(x => x * x));
        for (var d = 0; d < v.Length; d++)
        {
            v[d] /= norm;
        }
        return v;
    }
}
