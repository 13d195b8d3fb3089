using System.Net;

namespace Engram.Core.Net;

/// <summary>
/// The one way Engram makes outbound HTTP clients (today the OpenAI-compatible embedder; later LLM endpoints
/// and webhooks). Every request is checked against an <see cref="OutboundPolicy"/> before it is sent, and
/// redirects are never followed: a 3xx answer becomes an <see cref="OutboundRefusedException"/> naming where it
/// pointed, so a compromised or misconfigured endpoint cannot send Engram (and its API key) elsewhere.
/// URLs always come from configuration: no code path fetches a URL taken from a request (a test scans the
/// sources for clients made anywhere else).
/// </summary>
public static class OutboundHttp
{
    /// <param name="policy">The hosts requests may go to.</param>
    /// <param name="connectTimeout">Time allowed to open a connection.</param>
    /// <param name="maxResponseBytes">
    /// When set, an answer body longer than this fails with <see cref="ResponseTooLargeException"/> as soon as it is
    /// known (its Content-Length) or read that far, so a broken or hostile endpoint cannot fill the server's memory.
    /// </param>
    public static HttpClient CreateClient(OutboundPolicy policy, TimeSpan connectTimeout, long? maxResponseBytes = null)
    {
        HttpMessageHandler handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            // Bounded connection lifetime so a long-running server follows DNS changes of the endpoint.
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectTimeout = connectTimeout,
            // No ambient proxy credentials or cookies travel with Engram's requests.
            UseCookies = false,
        };
        if (maxResponseBytes is { } max)
        {
            handler = new ResponseSizeLimit(max) { InnerHandler = handler };
        }
        return new(new AllowListHandler(policy) { InnerHandler = handler })
        {
            // Callers bound each attempt themselves (a linked token); a client-wide time-out would count the whole call.
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    private sealed class AllowListHandler(OutboundPolicy policy) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var uri = request.RequestUri ?? throw new OutboundRefusedException("an outbound request without a URL was refused");
            if (!policy.IsAllowed(uri))
            {
                throw new OutboundRefusedException(
                    $"an outbound request to {Origin(uri)} was refused: that host is not configured (Engram:Outbound:AllowedHosts)");
            }
            var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (IsRedirect(response.StatusCode))
            {
                var target = response.Headers.Location is { } location ? Origin(location.IsAbsoluteUri ? location : new Uri(uri, location)) : "nowhere";
                var status = (int)response.StatusCode;
                response.Dispose();
                throw new OutboundRefusedException(
                    $"{Origin(uri)} answered {status} redirecting to {target}; Engram does not follow redirects (configure the final address)");
            }
            return response;
        }

        private static bool IsRedirect(HttpStatusCode status) => (int)status is 301 or 302 or 303 or 307 or 308;

        /// <summary>Scheme, host and port only: a path or query could carry a token.</summary>
        private static string Origin(Uri uri) => uri.IsAbsoluteUri ? uri.GetLeftPart(UriPartial.Authority) : "(relative)";
    }
}

/// <summary>An outbound answer longer than the client's bound (<see cref="OutboundHttp.CreateClient"/>): read no further.</summary>
public sealed class ResponseTooLargeException(string message) : IOException(message);

/// <summary>An outbound request Engram refused to send or to follow: a host not configured, or a redirect. Not transient.</summary>
public sealed class OutboundRefusedException(string message) : HttpRequestException(message);
