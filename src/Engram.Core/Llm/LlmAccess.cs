namespace Engram.Core.Llm;

/// <summary>
/// The configured language model, or none: what every feature that needs one asks, so that without one each
/// answers the same clear <see cref="LlmNotConfiguredException"/> and everything else works.
/// </summary>
public sealed class LlmAccess(LanguageModel? model) : IDisposable
{
    public static LlmAccess None { get; } = new(null);

    public LanguageModel? Model { get; } = model;

    public bool IsConfigured => Model is not null;

    /// <summary>The model, or <see cref="LlmNotConfiguredException"/> naming <paramref name="feature"/> and the settings.</summary>
    public LanguageModel Require(string feature) => Model ?? throw new LlmNotConfiguredException(feature);

    public void Dispose() => Model?.Dispose();
}
