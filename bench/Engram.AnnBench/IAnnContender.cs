namespace Engram.AnnBench;

/// <summary>One built index the benchmark times: a pass is every query once, single-threaded, at one ef.</summary>
internal interface IAnnContender : IDisposable
{
    string Name { get; }

    double BuildInsertsPerSecond { get; }

    /// <summary>Runs one pass at <paramref name="ef"/>; returns its seconds and the top-k labels of every query (row-major).</summary>
    (double Seconds, int[] Labels) Pass(int ef);
}
