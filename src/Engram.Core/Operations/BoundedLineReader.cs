using System.Text;

namespace Engram.Core.Operations;

/// <summary>
/// Reads the lines of a JSON Lines file without ever holding more than a bound of one line: a line past
/// <c>maxChars</c> is read to its end without being kept and comes back as <see cref="Line.TooLong"/>, so a file with
/// one enormous line (edited, or not an export at all) costs a bounded amount of memory. A line ends at '\n'; a '\r'
/// before it is dropped (a file saved with Windows line ends).
/// </summary>
internal sealed class BoundedLineReader(TextReader reader, int maxChars)
{
    private readonly char[] _buffer = new char[64 * 1024];
    private readonly StringBuilder _line = new();
    private int _position;
    private int _length;

    /// <summary>One line: its text, or <see cref="TooLong"/> with its length in characters; null at the end of the file.</summary>
    public readonly record struct Line(string? Text, long TooLong);

    public int MaxChars => maxChars;

    public async Task<Line?> ReadLineAsync(CancellationToken ct)
    {
        _line.Clear();
        long length = 0;
        var any = false;
        while (true)
        {
            if (_position == _length)
            {
                _length = await reader.ReadAsync(_buffer.AsMemory(), ct).ConfigureAwait(false);
                _position = 0;
                if (_length == 0)
                {
                    return any ? Finish(length) : null;
                }
            }
            any = true;
            var span = _buffer.AsSpan(_position, _length - _position);
            var end = span.IndexOf('\n');
            var part = end < 0 ? span : span[..end];
            if (length + part.Length <= maxChars + 1) // + 1: the '\r' of a Windows line end, dropped in Finish
            {
                _line.Append(part);
            }
            length += part.Length;
            _position += end < 0 ? span.Length : end + 1;
            if (end >= 0)
            {
                return Finish(length);
            }
        }
    }

    private Line Finish(long length)
    {
        if (_line.Length > 0 && _line[^1] == '\r' && length == _line.Length)
        {
            _line.Length--;
            length--;
        }
        return length > maxChars ? new Line(null, length) : new Line(_line.ToString(), 0);
    }
}
