using System.Text;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// Hostile request targets and heads: route parameters (traversal, encoded NUL, very long ids, unicode,
/// glob/SQL/FTS meta-characters, reserved names), methods a route does not map, query strings (unknown,
/// repeated, empty, huge, many, badly encoded, hostile values per kind), content types, lying
/// Content-Length and transfer codings, odd and huge headers, malformed request lines.
/// </summary>
internal static class TargetPayloads
{
    /// <summary>Routes that read If-Match: a memory's PATCH and DELETE.</summary>
    private static bool ReadsIfMatch(RouteSample sample) =>
        sample.Method == "PATCH" || (sample.Method == "DELETE" && sample.Pattern == "/v1/memories/{id}");

    /// <summary>Route parameter values, written into the target exactly as given (already percent-encoded where shown).</summary>
    public static readonly (string Name, string Raw)[] ParamValues =
    [
        ("dot dot", ".."),
        ("dot", "."),
        ("traversal", "../../etc/passwd"),
        ("encoded traversal", "%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
        ("encoded dots only", "%2e%2e"),
        ("backslash traversal", "..%5c..%5cwindows"),
        ("double-encoded traversal", "%252e%252e%252f"),
        ("encoded NUL", "%00"),
        ("NUL inside", "a%00b"),
        ("double-encoded NUL", "%2500"),
        ("encoded line feed", "a%0ab"),
        ("5,000 characters", new string('A', 5_000)),
        ("a ULID with a suffix", "01ARZ3NDEKTSV4RRFFQ69G5FAVX"),
        ("a ULID in lower case", "01arz3ndektsv4rrffq69g5fav"),
        ("unicode", "caf%C3%A9"),
        ("emoji", "%F0%9F%98%80"),
        ("right-to-left override", "a%E2%80%AEb"),
        ("zero-width space", "%E2%80%8B"),
        ("encoded surrogate (CESU-8)", "%ED%A0%80"),
        ("invalid UTF-8", "%FF%FE"),
        ("star", "*"),
        ("encoded star", "%2A"),
        ("encoded question mark", "%3F"),
        ("encoded hash", "%23x"),
        ("SQL", "'%20OR%20'1'='1"),
        ("SQL drop", "x';DROP%20TABLE%20memories;--"),
        ("FTS", "%22NEAR(a%20b)%22"),
        ("glob class", "[a-z]"),
        ("LIKE percent", "%25"),
        ("LIKE underscore", "_"),
        ("backslash", "%5C"),
        ("reserved name CON", "CON"),
        ("reserved name NUL", "NUL"),
        ("reserved name COM1", "COM1.txt"),
        ("null", "null"),
        ("negative number", "-1"),
        ("encoded space", "%20"),
        ("encoded slash", "a%2Fb"),
        ("bad percent", "%zz"),
        ("lone percent", "%"),
    ];

    public static IEnumerable<Probe> RouteParameters(RouteSample sample, Func<RouteSample, IReadOnlyDictionary<string, string>?, string, string> target)
    {
        foreach (var parameter in sample.Params.Keys)
        {
            foreach (var (name, raw) in ParamValues)
            {
                var request = new HostileRequest(sample.Method, target(sample, new Dictionary<string, string> { [parameter] = raw }, ""),
                    sample.Body is null ? null : Encoding.UTF8.GetBytes(sample.Body));
                yield return new Probe(sample.Label, "route parameters", $"{parameter} = {name}", request, ParameterExpectation(sample));
            }
        }
    }

    /// <summary>
    /// Reads may find nothing (404), refuse (4xx) or, where the value routes elsewhere after the path is
    /// normalised ("/v1/kv/../../health"), read that. Writes never succeed, except key-value writes: a
    /// key is any text without control characters, so a hostile-looking key is a key (accounted for).
    /// </summary>
    private static Expectation ParameterExpectation(RouteSample sample) =>
        sample.Method is "GET" or "HEAD"
            ? Expectation.RefusedOr("a read of an odd name finds nothing or reads what the normalised path names", 200)
            : sample.Pattern == "/v1/kv/{key}"
                ? Expectation.RefusedOr("a key-value key is any text without control characters (so a delete or expire finds the keys this barrage wrote)", 200, 201, 204) with { MayWrite = true }
                : Expectation.Refused;

    /// <summary>Every method a route does not map, without a body: 404/405 and the like, never a 2xx (HEAD runs as a GET).</summary>
    public static IEnumerable<Probe> Methods(ServedRoute route, RouteSample? getSample, string target)
    {
        foreach (var method in RouteCatalog.AllMethods.Where(m => !route.Methods.ContainsKey(m)))
        {
            var expect = method == "HEAD" && getSample is not null
                ? Expectation.AsSample(getSample, "HEAD is answered like GET")
                : Expectation.Refused;
            yield return new Probe($"{method} {route.Template}", "methods", method, new HostileRequest(method, target, null, null), expect);
        }
    }

    /// <summary>Hostile values per kind of query parameter; every one is refused.</summary>
    private static readonly Dictionary<QueryKind, string[]> QueryValues = new()
    {
        [QueryKind.Int] = ["-1", "0", "-0", "1e3", "1.5", "NaN", "Infinity", "99999999999999999999", "2147483648", "0x10", "%00", "1%00", "1;DROP%20TABLE%20x", "%EF%BC%91"],
        [QueryKind.Bool] = ["TRUE", "1", "yes", "true,false", "%00", "true%00", "null"],
        [QueryKind.Timestamp] = ["tomorrow", "2026-13-45T00:00:00Z", "1e309", "-1", "0000-00-00T00:00:00Z", "2026-01-01T00:00:00Z%00", "99999-01-01T00:00:00Z"],
        [QueryKind.Choice] = ["ALL", "*", "any,all", "%00", "x'--", "Working"],
        [QueryKind.Cursor] = ["%00", new string('z', 2_000) + "%FF"],
        [QueryKind.Text] = ["%FF", "%C3", "%ED%A0%80", "a%00b"],
        [QueryKind.Glob] = ["[", "a[", "[]", "%00", "%FF"],
    };

    public static IEnumerable<Probe> Queries(RouteSample sample, Func<RouteSample, IReadOnlyDictionary<string, string>?, string, string> target)
    {
        var body = sample.Body is null ? null : Encoding.UTF8.GetBytes(sample.Body);
        Probe Make(string name, string query, Expectation? expect = null) =>
            new(sample.Label, "query strings", name, new HostileRequest(sample.Method, target(sample, null, query), body), expect ?? Expectation.Refused);

        yield return Make("unknown parameter", "zz_unknown=1");
        yield return Make("unknown parameter without value", "zz_unknown");
        yield return Make("150 unknown parameters", string.Join("&", Enumerable.Range(0, 150).Select(i => $"p{i}=1")));
        yield return Make("a 7,000-character unknown parameter", "zz=" + new string('q', 7_000));
        yield return Make("a 9,000-character query (past Engram's 8 KB)", "zz=" + new string('q', 9_000));
        yield return Make("a 70,000-character query (past Kestrel's 64 KB)", "zz=" + new string('q', 70_000));
        yield return Make("parameter name %FF", "%FF=1");
        yield return Make("empty query", "", Expectation.AsSample(sample, "an empty query is no query"));
        foreach (var (parameter, kind) in sample.QueryParams)
        {
            var valid = ValidValue(kind);
            yield return Make($"{parameter} repeated", $"{parameter}={valid}&{parameter}={valid}",
                parameter == "names" ? Expectation.Only("names may be repeated (names that contain commas)", 200) : null);
            yield return Make($"{parameter} empty", $"{parameter}=");
            yield return Make($"{parameter} without value", parameter);
            if (kind is QueryKind.Text or QueryKind.Glob)
            {
                yield return Make($"{parameter} 7,000 characters", $"{parameter}=" + new string('q', 7_000),
                    Expectation.RefusedOr("a long text filter is a filter that matches nothing", 200));
            }
            foreach (var value in QueryValues[kind])
            {
                yield return Make($"{parameter} = {(value.Length > 30 ? value[..30] + "…" : value)}", $"{parameter}={value}",
                    Exceptions.Query(sample, parameter, value));
            }
        }
    }

    private static string ValidValue(QueryKind kind) => kind switch
    {
        QueryKind.Int => "1",
        QueryKind.Bool => "true",
        QueryKind.Timestamp => "2020-01-01T00:00:00Z",
        QueryKind.Choice => "any",
        _ => "x",
    };

    private static readonly (string Name, string? Value)[] ContentTypes =
    [
        ("text/plain", "text/plain"),
        ("form", "application/x-www-form-urlencoded"),
        ("multipart", "multipart/form-data; boundary=b"),
        ("none", null),
        ("charset=latin1", "application/json; charset=latin1"),
        ("charset=utf-16", "application/json; charset=utf-16"),
        ("*/*", "*/*"),
        ("empty", ""),
        ("application/xml", "application/xml"),
        ("json with a NUL", "application/json\u0000"),
        ("two types", "application/json, text/plain"),
    ];

    /// <summary>Content types, lying lengths, transfer codings and odd headers, each on the route's valid sample.</summary>
    public static IEnumerable<Probe> Heads(RouteSample sample, string target)
    {
        var body = sample.Body is null ? null : Encoding.UTF8.GetBytes(sample.Body);
        var reads = sample.Body is not null;
        var asSample = Expectation.AsSample(sample, "a header the route does not read is ignored");
        Probe Make(string cls, string name, HostileRequest request, Expectation expect) => new(sample.Label, cls, name, request, expect);
        HostileRequest Request(byte[]? content = null, string? contentType = "application/json") => new(sample.Method, target, content ?? body, contentType);

        foreach (var (name, value) in ContentTypes)
        {
            var expect = !reads ? asSample : name is "none" or "empty"
                ? Expectation.AsSample(sample, "a body without a Content-Type is taken as JSON (JsonMediaType, documented)")
                : Expectation.Refused;
            // Kestrel refuses a NUL in any header before a route is chosen.
            yield return Make("content types", name, Request(contentType: value), value?.Contains('\0') == true ? Expectation.Refused : expect);
        }
        if (sample.Method is not ("GET" or "HEAD"))
        {
            var form = Encoding.UTF8.GetBytes("content=x&value=1");
            yield return Make("content types", "a form body", Request(form, "application/x-www-form-urlencoded"), reads ? Expectation.Refused : asSample);
            var multipart = Encoding.UTF8.GetBytes("--b\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nx\r\n--b--\r\n");
            yield return Make("content types", "a multipart body", Request(multipart, "multipart/form-data; boundary=b"), reads ? Expectation.Refused : asSample);
        }

        var lengthClass = "content length";
        var full = body ?? "{\"a\":1}"u8.ToArray();
        yield return Make(lengthClass, "announces 20 MB, sends nothing", Request(Array.Empty<byte>()) with { AnnouncedLength = "20971520" },
            reads ? Expectation.Only("over the route's bound: 413 before reading", 413) : asSample);
        yield return Make(lengthClass, "announces more than it sends, then closes", Request(full[..(full.Length / 2)]) with { AnnouncedLength = full.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), HalfClose = true },
            reads ? Expectation.Refused with { MayClose = true } : asSample with { MayClose = true });
        yield return Make(lengthClass, "announces 0, sends a body", Request(full) with { AnnouncedLength = "0" },
            reads ? Exceptions.EmptyBody(sample) : asSample);
        yield return Make(lengthClass, "negative length", Request(full) with { AnnouncedLength = "-1" }, Expectation.Refused);
        yield return Make(lengthClass, "length not a number", Request(full) with { AnnouncedLength = "abc" }, Expectation.Refused);
        yield return Make(lengthClass, "length 2^64", Request(full) with { AnnouncedLength = "18446744073709551616" }, Expectation.Refused);
        yield return Make(lengthClass, "two different lengths", Request(full) with { Headers = [("Content-Length", "1")] }, Expectation.Refused);
        yield return Make(lengthClass, "length and chunked", Request(Chunked(full)) with { Headers = [("Transfer-Encoding", "chunked")] },
            Expectation.AsSample(sample, "Transfer-Encoding overrides Content-Length (RFC 9112 6.3); the chunked body is valid"));
        yield return Make(lengthClass, "gzip transfer coding", Request(full) with { OmitLength = true, Headers = [("Transfer-Encoding", "gzip")] }, Expectation.Refused);
        yield return Make(lengthClass, "bad chunk size", Request("zz\r\n{}\r\n0\r\n\r\n"u8.ToArray()) with { OmitLength = true, Headers = [("Transfer-Encoding", "chunked")] },
            reads ? Expectation.Refused : asSample);
        yield return Make(lengthClass, "chunked, never finished, then closes", Request(Encoding.ASCII.GetBytes("5\r\n{\"a\":")) with { OmitLength = true, HalfClose = true, Headers = [("Transfer-Encoding", "chunked")] },
            reads ? Expectation.Refused with { MayClose = true } : asSample with { MayClose = true });

        foreach (var ifMatch in new[] { "\"x", "W/", "*, \"1\"", "\"9223372036854775808\"", "\"-1\"", "garbage", "\"1\"\"2\"", "" })
        {
            yield return Make("odd headers", $"If-Match: {ifMatch}", Request() with { Headers = [("If-Match", ifMatch)] },
                ReadsIfMatch(sample) ? Exceptions.IfMatch(sample, ifMatch) : asSample);
        }
        yield return Make("odd headers", "a 40 KB header", Request() with { Headers = [("X-Junk", new string('j', 40_000))] }, Expectation.Only("headers over Engram's 32 KB", 431));
        yield return Make("odd headers", "a 70 KB header", Request() with { Headers = [("X-Junk", new string('j', 70_000))] }, Expectation.Only("headers over Kestrel's 64 KB", 431));
        yield return Make("odd headers", "150 header fields", Request() with { Headers = [.. Enumerable.Range(0, 150).Select(i => ($"X-H{i}", "v"))] }, Expectation.Only("over Engram's 100 fields", 431));
        yield return Make("odd headers", "250 header fields", Request() with { Headers = [.. Enumerable.Range(0, 250).Select(i => ($"X-H{i}", "v"))] }, Expectation.Only("over Kestrel's 200 fields", 431));
        yield return Make("odd headers", "a raw non-ASCII header value", Request() with { Headers = [("X-Name", "caf\u00e9")] }, Expectation.Refused);
        yield return Make("odd headers", "a NUL in a header value", Request() with { Headers = [("X-Name", "a\u0000b")] }, Expectation.Refused);
        yield return Make("odd headers", "a header line without a colon", Request() with { Headers = [("NoColonHere", null)] }, Expectation.Refused);
        yield return Make("odd headers", "a folded header line", Request() with { Headers = [("X-Folded", "a"), (" continued", null)] }, Expectation.Refused);
        yield return Make("odd headers", "Accept: application/xml", Request() with { Headers = [("Accept", "application/xml")] }, asSample);
        yield return Make("odd headers", "Expect: 100-continue", Request() with { Headers = [("Expect", "100-continue")] }, asSample);
        yield return Make("odd headers", "Expect: something else", Request() with { Headers = [("Expect", "teapot")] }, asSample);
        yield return Make("odd headers", "Host: ../../", Request() with { OmitHost = true, Headers = [("Host", "../../")] }, Expectation.Refused);
        yield return Make("odd headers", "no Host", Request() with { OmitHost = true }, Expectation.Refused);
        yield return Make("odd headers", "two Hosts", Request() with { Headers = [("Host", "evil.example")] }, Expectation.Refused);
    }

    private static byte[] Chunked(byte[] body) =>
        [.. Encoding.ASCII.GetBytes($"{body.Length:X}\r\n"), .. body, .. "\r\n0\r\n\r\n"u8.ToArray()];

    /// <summary>Malformed request lines and targets, sent to a route that exists.</summary>
    public static IEnumerable<Probe> RequestLines(Uri server)
    {
        var authority = server.Authority;
        (string Name, string Line, Expectation Expect)[] lines =
        [
            ("asterisk form on GET", "GET * HTTP/1.1", Expectation.Refused),
            ("asterisk form on OPTIONS", "OPTIONS * HTTP/1.1", Expectation.Refused),
            ("absolute form, another host", "GET http://evil.example/v1/stats HTTP/1.1", Expectation.Refused),
            ("absolute form, this host", $"GET http://{authority}/v1/stats HTTP/1.1", Expectation.Only("an absolute-form target naming this server is a valid request", 200)),
            ("authority form on GET", $"GET {authority} HTTP/1.1", Expectation.Refused),
            ("CONNECT", $"CONNECT {authority} HTTP/1.1", Expectation.Refused),
            ("no leading slash", "GET v1/stats HTTP/1.1", Expectation.Refused),
            ("HTTP/1.0", "GET /v1/stats HTTP/1.0", Expectation.Only("HTTP/1.0 is still HTTP", 200)),
            ("HTTP/1.2", "GET /v1/stats HTTP/1.2", Expectation.Refused),
            ("HTTP/2.0 on a cleartext HTTP/1 connection", "GET /v1/stats HTTP/2.0", Expectation.Refused),
            ("HTTP/9", "GET /v1/stats HTTP/9.9", Expectation.Refused),
            ("no version", "GET /v1/stats", Expectation.Refused with { MayClose = true }),
            ("lower-case method", "get /v1/stats HTTP/1.1", Expectation.Only("routing matches methods case-insensitively (ASP.NET Core); a read", 200)),
            ("method with a slash", "G/ET /v1/stats HTTP/1.1", Expectation.Refused),
            ("two spaces", "GET  /v1/stats HTTP/1.1", Expectation.Refused),
            ("a raw space in the target", "GET /v1/kv/a b HTTP/1.1", Expectation.Refused),
            ("a raw non-ASCII byte in the target", "GET /v1/kv/caf\u00e9 HTTP/1.1", Expectation.Refused),
            ("a raw NUL in the target", "GET /v1/kv/a\u0000b HTTP/1.1", Expectation.Refused),
            ("a fragment", "GET /v1/stats#x HTTP/1.1", Expectation.Refused),
            ("double slashes", "GET //v1//stats HTTP/1.1", Expectation.Refused),
            ("upper-case path", "GET /V1/STATS HTTP/1.1", Expectation.Only("routes match case-insensitively", 200)),
            ("trailing slash", "GET /v1/stats/ HTTP/1.1", Expectation.Only("a trailing slash names the same route", 200)),
            ("dot segments to another route", "GET /v1/memories/../stats HTTP/1.1", Expectation.Only("dot segments are removed before routing", 200)),
            ("dot segments in a key", "GET /v1/kv/../stats HTTP/1.1", Expectation.Only("a key-value path keeps its dot segments (RawPaths): the missing key '../stats'", 404)),
            ("encoded dot segments", "GET /v1/memories/%2e%2e/stats HTTP/1.1", Expectation.Only("encoded dot segments are decoded and removed before routing", 200)),
            ("dot segments above the root", "GET /../../../../etc/passwd HTTP/1.1", Expectation.Refused),
            ("encoded slash traversal", "GET /v1/graph/entities/..%2F..%2Fstats/history HTTP/1.1", Expectation.Refused),
            ("an 8,193-byte target", "GET /v1/memories/" + new string('a', 8_193) + " HTTP/1.1", Expectation.Only("past Engram's 8 KB target", 414)),
            ("a 70,000-byte target", "GET /v1/memories/" + new string('a', 70_000) + " HTTP/1.1", Expectation.Only("past Kestrel's 64 KB line", 414)),
            ("garbage line", "\u0001\u0002\u0003", Expectation.Refused with { MayClose = true }),
            ("TLS hello on a cleartext port", "\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003", Expectation.Refused with { MayClose = true }),
            ("HTTP/2 preface on an HTTP/1 port", "PRI * HTTP/2.0\r\n\r\nSM", Expectation.Refused with { MayClose = true }),
        ];
        foreach (var (name, line, expect) in lines)
        {
            yield return new Probe("(request line)", "request lines", name, new HostileRequest("GET", "", null, null) { RequestLine = line }, expect);
        }
    }
}
