using Engram.Core.Indexing.Text;

namespace Engram.Core.Search;

/// <summary>
/// The entity names live memories name, per tenant, as token sequences keyed by their first token,
/// so finding the names a query mentions costs one dictionary probe per query token (plus a compare
/// per name sharing that first token) instead of a scan over every name. Names and queries go
/// through the same analyzer (lower case, stop words dropped, no stemming: "James" must not become
/// "jame"), so matching is case-insensitive and by whole words or phrases. Reference counted by the
/// live documents naming each name. Not synchronised: <see cref="DocTable"/> (under
/// <see cref="MemoryIndex"/>'s lock) owns it.
/// </summary>
internal sealed class EntityDictionary
{
    private static readonly TextAnalyzer Analyzer = new(removeStopWords: true, stem: false);

    private readonly Dictionary<(int Tenant, int Key), Entry> _entries = [];
    private readonly Dictionary<(int Tenant, string FirstToken), List<Entry>> _byFirstToken = [];

    public int Count => _entries.Count;

    /// <summary>A live document of <paramref name="tenant"/> names the entity whose key is <paramref name="key"/> (symbol <paramref name="keySymbol"/>).</summary>
    public void Add(int tenant, int keySymbol, string key)
    {
        if (_entries.TryGetValue((tenant, keySymbol), out var entry))
        {
            entry.References++;
            return;
        }
        var tokens = Analyzer.Terms(key).ToArray();
        entry = new Entry(keySymbol, tokens) { References = 1 };
        _entries[(tenant, keySymbol)] = entry;
        if (tokens.Length == 0)
        {
            return; // only stop words ("The Who"): kept for the count, never matched
        }
        if (!_byFirstToken.TryGetValue((tenant, tokens[0]), out var list))
        {
            _byFirstToken[(tenant, tokens[0])] = list = [];
        }
        list.Add(entry);
    }

    /// <summary>One document fewer names it; the name is forgotten with the last one.</summary>
    public void Remove(int tenant, int keySymbol)
    {
        if (!_entries.TryGetValue((tenant, keySymbol), out var entry) || --entry.References > 0)
        {
            return;
        }
        _entries.Remove((tenant, keySymbol));
        if (entry.Tokens.Length > 0 && _byFirstToken.TryGetValue((tenant, entry.Tokens[0]), out var list))
        {
            list.Remove(entry);
            if (list.Count == 0)
            {
                _byFirstToken.Remove((tenant, entry.Tokens[0]));
            }
        }
    }

    /// <summary>The key symbols of every name of <paramref name="tenant"/> that occurs in <paramref name="query"/> as whole words.</summary>
    public int[] Find(int tenant, string query)
    {
        if (_byFirstToken.Count == 0)
        {
            return [];
        }
        var tokens = Analyzer.Terms(query);
        List<int>? found = null;
        for (var i = 0; i < tokens.Count; i++)
        {
            if (!_byFirstToken.TryGetValue((tenant, tokens[i]), out var candidates))
            {
                continue;
            }
            foreach (var entry in candidates)
            {
                if (Matches(entry.Tokens, tokens, i) && !(found ??= []).Contains(entry.Key))
                {
                    found.Add(entry.Key);
                }
            }
        }
        return found?.ToArray() ?? [];
    }

    private static bool Matches(string[] name, List<string> query, int start)
    {
        if (query.Count - start < name.Length)
        {
            return false;
        }
        for (var j = 1; j < name.Length; j++)
        {
            if (!string.Equals(name[j], query[start + j], StringComparison.Ordinal))
            {
                return false;
            }
        }
        return true;
    }

    private sealed class Entry(int key, string[] tokens)
    {
        public int Key { get; } = key;

        public string[] Tokens { get; } = tokens;

        public int References { get; set; }
    }
}
