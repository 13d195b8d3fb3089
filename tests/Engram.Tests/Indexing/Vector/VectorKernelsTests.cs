using System.Numerics.Tensors;
using Engram.Core.Indexing.Vector;

namespace Engram.Tests.Indexing.Vector;

public sealed class VectorKernelsTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(31)]
    [InlineData(64)]
    [InlineData(100)]
    [InlineData(385)]
    public void FloatDot_MatchesTensorPrimitives(int dimensions)
    {
        var random = new Random(dimensions);
        var stride = VectorKernels.FloatStride(dimensions);
        var a = new float[stride];
        var b = new float[stride];
        for (var i = 0; i < dimensions; i++)
        {
            a[i] = (float)(random.NextDouble() - 0.5);
            b[i] = (float)(random.NextDouble() - 0.5);
        }
        VectorKernels.Dot(a, b).Should().BeApproximately(TensorPrimitives.Dot(a, b), 1e-4f);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(100)]
    [InlineData(300)]
    public void Int8Dot_MatchesScalar_AndQuantisationIsClose(int dimensions)
    {
        var random = new Random(dimensions);
        var stride = VectorKernels.Int8Stride(dimensions);
        var x = new float[dimensions];
        var y = new float[dimensions];
        for (var i = 0; i < dimensions; i++)
        {
            x[i] = (float)(random.NextDouble() - 0.5);
            y[i] = (float)(random.NextDouble() - 0.5);
        }
        var qx = new sbyte[stride];
        var qy = new sbyte[stride];
        var sx = VectorKernels.Quantize(x, qx.AsSpan(0, dimensions));
        var sy = VectorKernels.Quantize(y, qy.AsSpan(0, dimensions));
        var wide = qx.Select(v => (short)v).ToArray();
        var scalar = 0;
        for (var i = 0; i < stride; i++)
        {
            scalar += qx[i] * qy[i];
        }
        VectorKernels.Dot(qx, qy).Should().Be(scalar);
        VectorKernels.Dot(wide, qy).Should().Be(scalar);
        (scalar * sx * sy).Should().BeApproximately(TensorPrimitives.Dot(x, y), 0.02f * TensorPrimitives.Norm(x) * TensorPrimitives.Norm(y));
        VectorKernels.Quantize(new float[dimensions], qx.AsSpan(0, dimensions)).Should().Be(0f);
    }
}
