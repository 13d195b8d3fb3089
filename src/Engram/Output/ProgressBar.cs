using Engram.Core.Operations;

namespace Engram.Cli.Output;

/// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool and draw out of order).</summary>
internal sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

/// <summary>
/// A one-line bar on stderr, redrawn in place on a terminal; on a pipe or a file, a plain line every
/// 10 % (so a log shows progress without a wall of carriage returns).
/// </summary>
internal sealed class ProgressBar(TextWriter output)
{
    private const int Width = 30;
    private readonly bool _interactive = !Console.IsErrorRedirected;
    private int _lastDecile = -1;
    private string _phase = "";

    /// <summary>A bar on stderr, or null when <paramref name="quiet"/> (JSON output).</summary>
    public static ProgressBar? ForStderr(bool quiet) => quiet ? null : new ProgressBar(TerminalSafeWriter.RawError); // its own \r redraw the line

    public IProgress<OperationProgress> Reporter => new InlineProgress<OperationProgress>(p => Draw((p.Phase, p.Done, p.Total)));

    public void Draw((string Phase, long Done, long Total) progress)
    {
        if (progress.Phase != _phase)
        {
            if (_phase.Length > 0 && _interactive)
            {
                output.WriteLine();
            }
            _phase = progress.Phase;
            _lastDecile = -1;
        }
        var fraction = progress.Total == 0 ? 1.0 : Math.Clamp((double)progress.Done / progress.Total, 0, 1);
        var filled = (int)(fraction * Width);
        var line = $"[{new string('#', filled)}{new string('-', Width - filled)}] {fraction,4:P0}  {progress.Done:N0}/{progress.Total:N0} {progress.Phase}";
        if (_interactive)
        {
            output.Write("\r" + line);
        }
        else if ((int)(fraction * 10) > _lastDecile)
        {
            _lastDecile = (int)(fraction * 10);
            output.WriteLine(line);
        }
    }

    public void Done()
    {
        if (_interactive && _phase.Length > 0)
        {
            output.WriteLine();
        }
    }
}
