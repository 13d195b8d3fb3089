using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engram.Core.Indexing.Vector;

/// <summary>
/// Dot products over rows padded with zeros to a whole number of SIMD registers, so the kernels need no tail
/// handling: for 100 dimensions that is 13 Vector256 FMAs into four accumulators, 15-30% faster than
/// TensorPrimitives.Dot on the same rows (whose length checks and masked tail weigh at this size; measured by
/// bench/Engram.AnnBench --kernels), and inlined into the search loop.
/// </summary>
internal static unsafe class VectorKernels
{
    /// <summary>Row length in floats: a multiple of 8 (one Vector256).</summary>
    public static int FloatStride(int dimensions) => (dimensions + 7) & ~7;

    /// <summary>Row length in bytes for int8 rows: a multiple of 16 (one Vector256 of int16 after widening).</summary>
    public static int Int8Stride(int dimensions) => (dimensions + 15) & ~15;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int stride)
    {
        if (Vector256.IsHardwareAccelerated)
        {
            var acc0 = Vector256<float>.Zero;
            var acc1 = Vector256<float>.Zero;
            var acc2 = Vector256<float>.Zero;
            var acc3 = Vector256<float>.Zero;
            var i = 0;
            // Four independent accumulators hide the FMA latency (4 cycles) behind its throughput (2 per cycle).
            for (; i + 32 <= stride; i += 32)
            {
                acc0 = Vector256.MultiplyAddEstimate(Vector256.Load(a + i), Vector256.Load(b + i), acc0);
                acc1 = Vector256.MultiplyAddEstimate(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), acc1);
                acc2 = Vector256.MultiplyAddEstimate(Vector256.Load(a + i + 16), Vector256.Load(b + i + 16), acc2);
                acc3 = Vector256.MultiplyAddEstimate(Vector256.Load(a + i + 24), Vector256.Load(b + i + 24), acc3);
            }
            for (; i < stride; i += 8)
            {
                acc0 = Vector256.MultiplyAddEstimate(Vector256.Load(a + i), Vector256.Load(b + i), acc0);
            }
            return Vector256.Sum((acc0 + acc1) + (acc2 + acc3));
        }
        var sum = 0f;
        for (var i = 0; i < stride; i++)
        {
            sum += a[i] * b[i];
        }
        return sum;
    }

    /// <summary>Dot of a query widened to int16 and a stored int8 row (both padded to <see cref="Int8Stride"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Dot(short* query, sbyte* row, int stride)
    {
        if (Avx2.IsSupported)
        {
            // vpmovsxbw widens 16 codes straight from memory; vpmaddwd multiplies and sums pairs into int32 lanes,
            // which cannot overflow (|q|,|v| <= 127, so a lane gets at most 2*16129 per step).
            var acc0 = Vector256<int>.Zero;
            var acc1 = Vector256<int>.Zero;
            var i = 0;
            for (; i + 32 <= stride; i += 32)
            {
                acc0 = Avx2.Add(acc0, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(row + i), Avx.LoadVector256(query + i)));
                acc1 = Avx2.Add(acc1, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(row + i + 16), Avx.LoadVector256(query + i + 16)));
            }
            if (i < stride)
            {
                acc0 = Avx2.Add(acc0, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(row + i), Avx.LoadVector256(query + i)));
            }
            return Vector256.Sum(acc0 + acc1);
        }
        var sum = 0;
        for (var i = 0; i < stride; i++)
        {
            sum += query[i] * row[i];
        }
        return sum;
    }

    /// <summary>Dot of two stored int8 rows (graph construction compares stored vectors with each other).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Dot(sbyte* a, sbyte* b, int stride)
    {
        if (Avx2.IsSupported)
        {
            var acc = Vector256<int>.Zero;
            for (var i = 0; i < stride; i += 16)
            {
                acc = Avx2.Add(acc, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(a + i), Avx2.ConvertToVector256Int16(b + i)));
            }
            return Vector256.Sum(acc);
        }
        var sum = 0;
        for (var i = 0; i < stride; i++)
        {
            sum += a[i] * b[i];
        }
        return sum;
    }

    /// <summary>Safe entry point for rows of equal, padded length (tests and benchmarks).</summary>
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        CheckPadded(a.Length, b.Length, 8);
        fixed (float* pa = a, pb = b)
        {
            return Dot(pa, pb, a.Length);
        }
    }

    /// <summary>Safe entry point for an int16-widened query and an int8 row of equal, padded length.</summary>
    public static int Dot(ReadOnlySpan<short> query, ReadOnlySpan<sbyte> row)
    {
        CheckPadded(query.Length, row.Length, 16);
        fixed (short* pq = query)
        fixed (sbyte* pr = row)
        {
            return Dot(pq, pr, row.Length);
        }
    }

    /// <summary>Safe entry point for two int8 rows of equal, padded length.</summary>
    public static int Dot(ReadOnlySpan<sbyte> a, ReadOnlySpan<sbyte> b)
    {
        CheckPadded(a.Length, b.Length, 16);
        fixed (sbyte* pa = a, pb = b)
        {
            return Dot(pa, pb, a.Length);
        }
    }

    private static void CheckPadded(int a, int b, int multiple)
    {
        if (a != b || a % multiple != 0)
        {
            throw new ArgumentException($"rows must have equal lengths that are multiples of {multiple} (got {a} and {b})");
        }
    }

    /// <summary>
    /// Symmetric int8 quantisation with one scale per vector: code = round(x / scale), scale = max|x| / 127.
    /// Returns the scale (0 for an all-zero vector, whose codes are then all zero).
    /// </summary>
    public static float Quantize(ReadOnlySpan<float> vector, Span<sbyte> codes)
    {
        var maxAbs = 0f;
        foreach (var x in vector)
        {
            maxAbs = MathF.Max(maxAbs, MathF.Abs(x));
        }
        codes.Clear();
        if (maxAbs == 0f || !float.IsFinite(maxAbs))
        {
            return 0f;
        }
        var scale = maxAbs / 127f;
        var inverse = 1f / scale;
        for (var i = 0; i < vector.Length; i++)
        {
            codes[i] = (sbyte)Math.Clamp(MathF.Round(vector[i] * inverse), -127f, 127f);
        }
        return scale;
    }

    /// <summary>True when every component is zero (such vectors score 0 against everything and are kept out of the graph).</summary>
    public static bool IsZero(ReadOnlySpan<float> vector)
    {
        foreach (var x in vector)
        {
            if (x != 0f)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// Asks for every cache line of a row that is about to be scored, so its misses overlap each other and the
    /// current dot product (a 100-dimension float row spans 7 lines; prefetching only the first, as hnswlib does,
    /// leaves the rest to be fetched one by one when the kernel reaches them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Prefetch(byte* row, int bytes)
    {
        if (Sse.IsSupported)
        {
            var end = row + bytes;
            for (var line = (byte*)((nint)row & ~(nint)63); line < end; line += 64)
            {
                Sse.Prefetch0(line);
            }
        }
    }
}
