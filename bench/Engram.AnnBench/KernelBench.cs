using System.Diagnostics;
using System.Numerics.Tensors;
using Engram.Core.Indexing.Vector;

namespace Engram.AnnBench;

/// <summary>Times one 100-dimension dot product: TensorPrimitives.Dot against the padded Vector256 FMA kernel.</summary>
internal static class KernelBench
{
    public static void Run()
    {
        const int Dimensions = 100;
        const int Rows = 4096; // 1.6 MB: in L2/L3, so this times the arithmetic rather than memory
        var stride = VectorKernels.FloatStride(Dimensions);
        var random = new Random(1);
        var data = new float[Rows * stride];
        for (var r = 0; r < Rows; r++)
        {
            for (var d = 0; d < Dimensions; d++)
            {
                data[(r * stride) + d] = (float)random.NextDouble();
            }
        }
        var query = data.AsSpan(0, stride).ToArray();
        for (var round = 0; round < 6; round++)
        {
            Time("TensorPrimitives.Dot (100)", () =>
            {
                var sum = 0f;
                for (var r = 0; r < Rows; r++)
                {
                    sum += TensorPrimitives.Dot(query.AsSpan(0, Dimensions), data.AsSpan(r * stride, Dimensions));
                }
                return sum;
            });
            Time($"Vector256 FMA (padded {stride})", () =>
            {
                var sum = 0f;
                for (var r = 0; r < Rows; r++)
                {
                    sum += VectorKernels.Dot(query, data.AsSpan(r * stride, stride));
                }
                return sum;
            });
        }
    }

    private static void Time(string name, Func<float> pass)
    {
        const int Passes = 500;
        var sink = pass();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Passes; i++)
        {
            sink += pass();
        }
        var ns = clock.Elapsed.TotalNanoseconds / (Passes * 4096.0);
        Console.WriteLine($"{name,-32} {ns,6:F2} ns per dot product (checksum {sink:E2})");
    }
}
