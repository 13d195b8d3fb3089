using System.Globalization;
using System.Text;

namespace Engram.Cli.Output;

/// <summary>
/// Wraps stdout and stderr so stored text never reaches the terminal as control characters: memory content, metadata,
/// key-value values, entity names, actors in the audit log are anyone's text, and an ESC or a BEL in them would otherwise
/// be obeyed by the terminal (clear the screen, retitle the window, hide lines: escape injection). Every C0 and C1 control
/// character and DEL (and a bidirectional override, <see cref="IsControl"/>) is written as a visible escape (<c>\x1b</c>; <c>\u009b</c>,
/// JSON's own escape), except a line break and a tab, which the
/// views lay out themselves (<c>get</c> indents each line of a memory; listings put content on one line). A carriage
/// return counts as a line break only before a line feed (a Windows line end); alone it could overwrite a line in place.
/// <para>
/// One writer for every human-readable printer: installed once by <see cref="Install"/> for every command but the ones that
/// speak a protocol or log on the console (serve, mcp). JSON output means the same text through it: JSON escapes C0
/// itself, and C1 is written in JSON's escape; <c>export --out -</c> writes to the raw stdout stream, byte for byte.
/// </para>
/// </summary>
internal sealed class TerminalSafeWriter(TextWriter inner) : TextWriter(CultureInfo.InvariantCulture)
{
    private static bool _installed;
    private bool _pendingReturn;

    /// <summary>Stderr as it was before <see cref="Install"/>: the progress bar redraws itself with carriage returns.</summary>
    public static TextWriter RawError { get; private set; } = Console.Error;

    public override Encoding Encoding => inner.Encoding;

    /// <summary>Wraps <see cref="Console.Out"/> and <see cref="Console.Error"/>; once per process.</summary>
    public static void Install()
    {
        if (_installed)
        {
            return;
        }
        _installed = true;
        RawError = Console.Error;
        Console.SetOut(Synchronized(new TerminalSafeWriter(Console.Out) { NewLine = Console.Out.NewLine }));
        Console.SetError(Synchronized(new TerminalSafeWriter(Console.Error) { NewLine = Console.Error.NewLine }));
    }

    public override void Write(char value)
    {
        if (_pendingReturn)
        {
            _pendingReturn = false;
            if (value == '\n')
            {
                inner.Write("\r\n");
                return;
            }
            inner.Write("\\r");
        }
        if (value == '\r')
        {
            _pendingReturn = true;
        }
        else if (value is '\n' or '\t' || !IsControl(value))
        {
            inner.Write(value);
        }
        else
        {
            // C0 as \x1b; DEL and C1 as \u009b, which is also JSON's escape of the same character: the JSON encoder lets C1
            // through unescaped, and a --json document read through this writer stays valid and means the same text.
            inner.Write(value < ' ' ? $"\\x{(int)value:x2}" : $"\\u{(int)value:x4}");
        }
    }

    public override void Write(string? value)
    {
        if (value is null)
        {
            return;
        }
        // The common case, text without a control character, goes through in one piece.
        if (!_pendingReturn && !value.AsSpan().ContainsAnyInRange('\0', '\x1f') && !value.AsSpan().ContainsAnyInRange('\x7f', '\x9f')
            && !value.AsSpan().ContainsAnyInRange('\u202a', '\u202e') && !value.AsSpan().ContainsAnyInRange('\u2066', '\u2069'))
        {
            inner.Write(value);
            return;
        }
        foreach (var c in value)
        {
            Write(c);
        }
    }

    public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

    public override void WriteLine(string? value)
    {
        Write(value);
        Write(NewLine);
    }

    public override void Flush()
    {
        if (_pendingReturn)
        {
            // A carriage return at the end of a write is not followed by a line feed: shown, not obeyed.
            _pendingReturn = false;
            inner.Write("\\r");
        }
        inner.Flush();
    }

    /// <summary>
    /// C0, DEL and C1, and the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): those
    /// reorder what the terminal shows, so "invoice\u202Egpj.exe" would read as "invoiceexe.jpg" (the "Trojan Source"
    /// trick). The marks U+200E/U+200F reorder nothing on their own and stay.
    /// </summary>
    private static bool IsControl(char c) => c < ' ' || c is >= '\x7f' and <= '\x9f' or >= '\u202a' and <= '\u202e' or >= '\u2066' and <= '\u2069';

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Flush();
        }
        base.Dispose(disposing);
    }
}
