using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// <c>postgres://user:password@host:port/database?sslmode=require</c> (what DATABASE_URL holds for
/// the systems Engram replaces) as an Npgsql connection string; a connection string passes through.
/// </summary>
public static class PostgresUrl
{
    /// <summary>Whether <paramref name="value"/> names a PostgreSQL database (a postgres:// or postgresql:// URL).</summary>
    public static bool IsPostgres(string? value) =>
        value is not null && (value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase));

    public static string ToConnectionString(string urlOrConnectionString)
    {
        if (!IsPostgres(urlOrConnectionString))
        {
            return urlOrConnectionString;
        }
        if (!Uri.TryCreate(urlOrConnectionString, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new StoreException("the store URL is not a valid postgres://user:password@host:port/database URL");
        }
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.Port > 0 ? uri.Port : 5432,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')) is { Length: > 0 } database ? database : "postgres",
        };
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            builder.Username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            if (colon >= 0)
            {
                builder.Password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }
        }
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]);
            var value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
            var keyword = key.Equals("sslmode", StringComparison.OrdinalIgnoreCase) ? "SSL Mode" : key;
            try
            {
                builder[keyword] = value;
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidCastException or OverflowException)
            {
                // An option the client knows with a value it does not take is not an unknown option.
                throw new StoreException(new NpgsqlConnectionStringBuilder().TryGetValue(keyword, out _)
                    ? $"the store URL's option {key} has a value PostgreSQL's client does not take"
                      + (keyword.Contains("password", StringComparison.OrdinalIgnoreCase) ? "" : $" ('{(value.Length > 40 ? value[..40] + "…" : value)}')")
                    : $"the store URL has an option PostgreSQL's client does not know: {key}", ex);
            }
        }
        return builder.ConnectionString;
    }

    /// <summary>The URL without its password, for logs.</summary>
    public static string Redact(string urlOrConnectionString)
    {
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(ToConnectionString(urlOrConnectionString));
            return $"postgres://{builder.Username}@{builder.Host}:{builder.Port}/{builder.Database}";
        }
        catch (Exception ex) when (ex is ArgumentException or StoreException)
        {
            return "postgres://(unreadable)";
        }
    }
}
