using Engram.Tests.Support;

namespace Engram.Tests.Postgres;

// The conformance suite on PostgreSQL: each class runs every test of its SQLite original against a fresh
// database of the test run's PostgreSQL 15 server (PostgresServer). A class is added here once its
// tests pass on both backends.

public sealed class PostgresGraphServiceTests : Graph.GraphServiceTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresGraphNameMigrationTests : Graph.GraphNameMigrationTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresKvServiceTests : KeyValue.KvServiceTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresKvHttpTests : KeyValue.KvHttpTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresGraphHttpTests : Graph.GraphHttpTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresKvCleanupTests : KeyValue.KvCleanupTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresExpiryTests : Http.ExpiryTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresMemoriesBatchTests : Http.MemoriesBatchTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresMemoriesCreateTests : Http.MemoriesCreateTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresMemoriesEntitiesTests : Http.MemoriesEntitiesTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresMemoriesReadTests : Http.MemoriesReadTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresMemoriesUpdateDeleteTests : Http.MemoriesUpdateDeleteTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresRestContractTests : Http.RestContractTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresSystemTests : Http.SystemTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresMemoryStoreConformanceTests : Storage.MemoryStoreConformanceTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresKvHistoryTests : KeyValue.KvHistoryTests
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class PostgresExtractionTests : Llm.ExtractionTests
{
    protected override Backend Backend => Backend.Postgres;
}
