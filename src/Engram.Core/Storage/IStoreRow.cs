using System.Text.Json;

namespace Engram.Core.Storage;

/// <summary>
/// One row of a query result, whichever store read it (a stepped <see cref="Sqlite.SqliteStatement"/> or a
/// PostgreSQL data reader), so the mapping from columns to records (<see cref="StoreRows"/>) is written once.
/// The two stores keep their columns in the same order and encodings: times as Unix milliseconds, tags and
/// entities as JSON arrays, metadata and changes as JSON text.
/// </summary>
internal interface IStoreRow
{
    long GetInt64(int column);

    long? GetInt64OrNull(int column);

    double GetDouble(int column);

    double? GetDoubleOrNull(int column);

    string GetText(int column);

    string? GetTextOrNull(int column);

    /// <summary>A column holding a JSON array of strings.</summary>
    string[] GetStringArray(int column);

    /// <summary>A column holding a JSON document, parsed (the element owns its memory).</summary>
    JsonElement GetJson(int column);
}
