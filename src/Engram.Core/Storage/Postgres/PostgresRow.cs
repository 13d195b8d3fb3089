using System.Text.Json;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>The current row of a PostgreSQL reader as an <see cref="IStoreRow"/>, for the shared mappings in <see cref="StoreRows"/>.</summary>
internal readonly struct PostgresRow(NpgsqlDataReader reader) : IStoreRow
{
    public long GetInt64(int column) => reader.GetInt64(column);

    public long? GetInt64OrNull(int column) => reader.IsDBNull(column) ? null : reader.GetInt64(column);

    public double GetDouble(int column) => reader.GetDouble(column);

    public double? GetDoubleOrNull(int column) => reader.IsDBNull(column) ? null : reader.GetDouble(column);

    public string GetText(int column) => reader.GetString(column);

    public string? GetTextOrNull(int column) => reader.IsDBNull(column) ? null : reader.GetString(column);

    public string[] GetStringArray(int column) => JsonSerializer.Deserialize<string[]>(reader.GetString(column)) ?? [];

    public JsonElement GetJson(int column)
    {
        using var document = JsonDocument.Parse(reader.GetString(column));
        return document.RootElement.Clone();
    }
}
