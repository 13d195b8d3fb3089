using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;

namespace Engram.Server.Ui;

/// <summary>Markup written as is (never user text): wrap only literals and output of <see cref="HtmlBuilder"/>.</summary>
internal readonly record struct Raw(string Value);

/// <summary>
/// The page being written. Every interpolated value is HTML-encoded unless it is <see cref="Raw"/>, so user
/// text (a memory's content, a key name) can only ever appear as text: escaping is the default, not a habit.
/// </summary>
internal sealed class HtmlBuilder
{
    private readonly StringBuilder _text = new(8192);

    public void Add([InterpolatedStringHandlerArgument("")] ref HtmlHandler html) { }

    public void AddRaw(string markup) => _text.Append(markup);

    public void Text(string? value) => _text.Append(HtmlEncoder.Default.Encode(value ?? ""));

    internal StringBuilder Buffer => _text;

    public override string ToString() => _text.ToString();

    public static string Encode(string? value) => HtmlEncoder.Default.Encode(value ?? "");
}

[InterpolatedStringHandler]
internal ref struct HtmlHandler
{
    private readonly HtmlBuilder _builder;

    public HtmlHandler(int literalLength, int formattedCount, HtmlBuilder builder)
    {
        _ = literalLength;
        _ = formattedCount;
        _builder = builder;
    }

    public readonly void AppendLiteral(string value) => _builder.Buffer.Append(value);

    public readonly void AppendFormatted(Raw value) => _builder.Buffer.Append(value.Value);

    public readonly void AppendFormatted(string? value) => _builder.Text(value);

    public readonly void AppendFormatted(long value) => _builder.Buffer.Append(value.ToString(CultureInfo.InvariantCulture));

    public readonly void AppendFormatted(int value) => _builder.Buffer.Append(value.ToString(CultureInfo.InvariantCulture));

    public readonly void AppendFormatted(double value, string? format = null) =>
        _builder.Buffer.Append(value.ToString(format ?? "0.###", CultureInfo.InvariantCulture));

    public readonly void AppendFormatted(DateTimeOffset value) =>
        _builder.Text(value.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture));

    public readonly void AppendFormatted(DateTimeOffset? value) =>
        _builder.Text(value is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "");
}
