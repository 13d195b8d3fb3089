using System.Runtime.CompilerServices;

// The ANN benchmark (bench/Engram.AnnBench) times the internal SIMD kernels against TensorPrimitives directly.
[assembly: InternalsVisibleTo("Engram.AnnBench")]
