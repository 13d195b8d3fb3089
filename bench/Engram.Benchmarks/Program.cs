using BenchmarkDotNet.Running;
using Engram.Benchmarks.Store;

// `store` is the throughput harness (concurrency, fsync, HTTP: not micro-benchmark material);
// anything else goes to BenchmarkDotNet's switcher for the micro-benchmarks.
if (args.Length > 0 && args[0] == "store")
{
    return await StoreBenchmark.RunAsync(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(StoreBenchmark).Assembly).Run(args);
return 0;
