using Engram.Core.Storage;
using Engram.Core.Storage.Postgres;

namespace Engram.Tests.Postgres;

/// <summary>postgres:// URLs into connection strings: an option the client knows with a bad value is said as such (session 47's probe).</summary>
public sealed class PostgresUrlTests
{
    [Fact]
    public void A_known_option_with_a_bad_value_is_not_called_unknown()
    {
        var bad = () => PostgresUrl.ToConnectionString("postgres://u:secret@db.example:5432/engram?sslmode=bogus");
        bad.Should().Throw<StoreException>().WithMessage("the store URL's option sslmode has a value PostgreSQL's client does not take ('bogus')");
        var port = () => PostgresUrl.ToConnectionString("postgres://u@db.example/engram?Timeout=soon");
        port.Should().Throw<StoreException>().WithMessage("the store URL's option Timeout has a value PostgreSQL's client does not take ('soon')");
        var unknown = () => PostgresUrl.ToConnectionString("postgres://u@db.example/engram?colour=blue");
        unknown.Should().Throw<StoreException>().WithMessage("the store URL has an option PostgreSQL's client does not know: colour");
        PostgresUrl.ToConnectionString("postgres://u@db.example/engram?sslmode=require").Should().Contain("SSL Mode=Require");
    }
}
