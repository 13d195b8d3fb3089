using System.Globalization;
using Engram.Core.Common;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Http;

/// <summary>
/// The authenticated caller of a request, set once by the authentication gate before any endpoint runs.
/// Endpoints and services take the tenant, role and scope only from here.
/// </summary>
public interface ICallerFeature
{
    Caller Caller { get; }
}

internal sealed record CallerFeature(Caller Caller) : ICallerFeature;

/// <summary>
/// The one place an endpoint gets its <see cref="Caller"/>. With no gate (open mode, nothing set) a request
/// acts in tenant <c>default</c> as admin; the actor recorded in history is "http" or the X-Engram-Actor header.
/// </summary>
internal static class CallerResolver
{
    /// <summary>The header naming who acts in open mode (with keys, the key names the actor and the header is not read).</summary>
    public const string ActorHeader = "X-Engram-Actor";

    /// <summary>Longest actor name the header may give.</summary>
    public const int MaxActorLength = 128;

    public static Caller GetCaller(this HttpContext context) =>
        context.Features.Get<ICallerFeature>() is { } feature ? feature.Caller : Caller.Default("http");

    /// <summary>
    /// The open-mode caller: actor "http", or "http:" + the <see cref="ActorHeader"/>. A header that cannot be an actor's
    /// name (empty, given twice, too long, or holding control, format or separator characters such as U+202E, which
    /// would reorder how history reads) is a 400, not a name quietly dropped or stored as given.
    /// </summary>
    public static Caller OpenCaller(HttpRequest request)
    {
        if (!request.Headers.TryGetValue(ActorHeader, out var given))
        {
            return Caller.Default("http");
        }
        var actor = given.Count == 1 ? given[0] ?? "" : "";
        if (given.Count != 1 || !IsActorName(actor))
        {
            throw new ValidationException(ActorHeader,
                $"{ActorHeader} must be given once, as 1-{MaxActorLength} characters without control, format or separator characters other than the space");
        }
        return Caller.Default("http:" + actor);
    }

    private static bool IsActorName(string actor)
    {
        if (actor.Length is 0 or > MaxActorLength)
        {
            return false;
        }
        for (var i = 0; i < actor.Length; i++)
        {
            var c = actor[i];
            if (char.IsHighSurrogate(c) && i + 1 < actor.Length && char.IsLowSurrogate(actor[i + 1]))
            {
                i++;
                continue;
            }
            if (c != ' ' && char.GetUnicodeCategory(c) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
                    or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator or UnicodeCategory.OtherNotAssigned)
            {
                return false;
            }
        }
        return true;
    }
}
