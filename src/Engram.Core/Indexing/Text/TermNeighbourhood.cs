using System.Runtime.InteropServices;

namespace Engram.Core.Indexing.Text;

/// <summary>
/// A symmetric-deletion map over the index's vocabulary (the SymSpell idea) that finds the terms within
/// edit distance 1 or 2 of a query word without scanning the vocabulary: every term is filed under each
/// string obtained by deleting up to two characters from its first <see cref="PrefixLength"/>
/// characters, and a query word looks up its own deletions the same way. Two words within distance d
/// share such a key, so the candidates are the terms under the query's keys; each is then checked
/// with the true distance. Keys are 32-bit hashes (a collision only adds a candidate that the check
/// drops). The table is open-addressed with flat arrays: adding a term is a few probes, and a
/// snapshot writes and reads it as blocks instead of rebuilding it.
/// Only words of letters outside <see cref="SegmentedScripts"/> are filed: numbers, codes with digits
/// and CJK bigrams are not typo-corrected, and neither are stop words. Terms are never removed (term
/// ids are never reused); the caller skips candidates with no live document.
/// Not thread-safe: the index writes under its write lock and reads under its read lock.
/// </summary>
internal sealed class TermNeighbourhood
{
    /// <summary>Longest prefix whose deletions are filed: 1 + 6 + 15 = 22 keys at most per term.</summary>
    public const int PrefixLength = 6;

    public const int MaxDistance = 2;

    private const int MaxKeys = 1 + PrefixLength + (PrefixLength * (PrefixLength - 1) / 2);

    private uint[] _keys = new uint[1024]; // 0 = empty slot
    private int[] _heads = new int[1024];
    private int _used;
    private int[] _entryTerm = new int[1024];
    private int[] _entryNext = new int[1024];
    private int _entries;

    public int Entries => _entries;

    /// <summary>Bytes held by the table's arrays.</summary>
    public long Bytes => ((long)_keys.Length * 8) + ((long)_entryTerm.Length * 8);

    /// <summary>Whether a term of the vocabulary can be a typo correction (and a query word can be corrected).</summary>
    public static bool IsEligible(ReadOnlySpan<char> term)
    {
        if (term.Length < 2 || StopWords.Contains(term))
        {
            return false;
        }
        foreach (var c in term)
        {
            if (!char.IsLetter(c) || SegmentedScripts.Contains(c))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The distance a query word of this length may be corrected by: Elasticsearch's "AUTO" rule (0 up to 2 characters, 1 up to 5, then 2).</summary>
    public static int AllowedDistance(int length) => length <= 2 ? 0 : length <= 5 ? 1 : 2;

    public void Add(int termId, ReadOnlySpan<char> term)
    {
        // A term of three characters or fewer is only ever within reach of words of at most five,
        // which are corrected by one edit: one deletion on each side suffices.
        var depth = term.Length <= 3 ? 1 : MaxDistance;
        Span<uint> keys = stackalloc uint[MaxKeys];
        var count = Deletions(term[..Math.Min(term.Length, PrefixLength)], depth, keys);
        foreach (var key in keys[..count])
        {
            AddEntry(key, termId);
        }
    }

    /// <summary>Calls <paramref name="onCandidate"/> for every term filed under a deletion of <paramref name="word"/> within <paramref name="distance"/>; a term may come more than once.</summary>
    public void Candidates<TState>(ReadOnlySpan<char> word, int distance, ref TState state, CandidateCallback<TState> onCandidate)
    {
        Span<uint> keys = stackalloc uint[MaxKeys];
        var count = Deletions(word[..Math.Min(word.Length, PrefixLength)], distance, keys);
        foreach (var key in keys[..count])
        {
            var slot = Find(key);
            if (_keys[slot] == 0)
            {
                continue;
            }
            for (var entry = _heads[slot]; entry >= 0; entry = _entryNext[entry])
            {
                onCandidate(_entryTerm[entry], ref state);
            }
        }
    }

    /// <summary>An independent copy (a renumbered index gets its own, so the two never share a mutable table).</summary>
    public TermNeighbourhood Clone() => new()
    {
        _keys = (uint[])_keys.Clone(),
        _heads = (int[])_heads.Clone(),
        _used = _used,
        _entryTerm = (int[])_entryTerm.Clone(),
        _entryNext = (int[])_entryNext.Clone(),
        _entries = _entries,
    };

    public void Write(BinaryWriter writer)
    {
        writer.Write(_keys.Length);
        writer.Write(_used);
        writer.Write(_entries);
        writer.Write(MemoryMarshal.AsBytes(_keys.AsSpan()));
        writer.Write(MemoryMarshal.AsBytes(_heads.AsSpan()));
        writer.Write(MemoryMarshal.AsBytes(_entryTerm.AsSpan(0, _entries)));
        writer.Write(MemoryMarshal.AsBytes(_entryNext.AsSpan(0, _entries)));
    }

    public static TermNeighbourhood Read(BinaryReader reader)
    {
        var capacity = reader.ReadInt32();
        var used = reader.ReadInt32();
        var entries = reader.ReadInt32();
        if (capacity < 16 || (capacity & (capacity - 1)) != 0 || used < 0 || used > capacity || entries < 0)
        {
            throw new InvalidDataException("damaged typo table in the lexical index");
        }
        var map = new TermNeighbourhood
        {
            _keys = new uint[capacity],
            _heads = new int[capacity],
            _used = used,
            _entryTerm = new int[Math.Max(16, entries)],
            _entryNext = new int[Math.Max(16, entries)],
            _entries = entries,
        };
        ReadExactly(reader, MemoryMarshal.AsBytes(map._keys.AsSpan()));
        ReadExactly(reader, MemoryMarshal.AsBytes(map._heads.AsSpan()));
        ReadExactly(reader, MemoryMarshal.AsBytes(map._entryTerm.AsSpan(0, entries)));
        ReadExactly(reader, MemoryMarshal.AsBytes(map._entryNext.AsSpan(0, entries)));
        return map;
    }

    private static void ReadExactly(BinaryReader reader, Span<byte> target)
    {
        while (!target.IsEmpty)
        {
            var read = reader.Read(target);
            if (read == 0)
            {
                throw new EndOfStreamException();
            }
            target = target[read..];
        }
    }

    /// <summary>Hashes of <paramref name="word"/> and of every string made by deleting up to <paramref name="depth"/> of its characters, without repeats.</summary>
    private static int Deletions(ReadOnlySpan<char> word, int depth, Span<uint> keys)
    {
        var count = 0;
        Span<char> buffer = stackalloc char[PrefixLength];
        Span<char> buffer2 = stackalloc char[PrefixLength];
        Append(Hash(word), keys, ref count);
        for (var i = 0; i < word.Length && depth >= 1; i++)
        {
            var once = buffer[..(word.Length - 1)];
            word[..i].CopyTo(once);
            word[(i + 1)..].CopyTo(once[i..]);
            Append(Hash(once), keys, ref count);
            for (var j = i; j < once.Length && depth >= 2; j++)
            {
                var twice = buffer2[..(once.Length - 1)];
                once[..j].CopyTo(twice);
                once[(j + 1)..].CopyTo(twice[j..]);
                Append(Hash(twice), keys, ref count);
            }
        }
        return count;
    }

    private static void Append(uint key, Span<uint> keys, ref int count)
    {
        if (keys[..count].IndexOf(key) < 0)
        {
            keys[count++] = key;
        }
    }

    /// <summary>FNV-1a over the UTF-16 code units, then a final mix; never 0 (the empty-slot marker). Stable across processes (snapshots).</summary>
    private static uint Hash(ReadOnlySpan<char> text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }
        hash ^= hash >> 15;
        hash *= 0x2C1B3C6Du;
        hash ^= hash >> 12;
        return hash == 0 ? 1u : hash;
    }

    private int Find(uint key)
    {
        var mask = _keys.Length - 1;
        var slot = (int)(key * 0x9E3779B1u) & mask;
        while (_keys[slot] != 0 && _keys[slot] != key)
        {
            slot = (slot + 1) & mask;
        }
        return slot;
    }

    private void AddEntry(uint key, int termId)
    {
        var slot = Find(key);
        if (_keys[slot] == 0)
        {
            if ((_used + 1) * 4 > _keys.Length * 3)
            {
                Grow();
                slot = Find(key);
            }
            _keys[slot] = key;
            _heads[slot] = -1;
            _used++;
        }
        if (_entries == _entryTerm.Length)
        {
            Array.Resize(ref _entryTerm, _entries * 2);
            Array.Resize(ref _entryNext, _entries * 2);
        }
        _entryTerm[_entries] = termId;
        _entryNext[_entries] = _heads[slot];
        _heads[slot] = _entries++;
    }

    private void Grow()
    {
        var (oldKeys, oldHeads) = (_keys, _heads);
        _keys = new uint[oldKeys.Length * 2];
        _heads = new int[oldKeys.Length * 2];
        for (var i = 0; i < oldKeys.Length; i++)
        {
            if (oldKeys[i] != 0)
            {
                var slot = Find(oldKeys[i]);
                _keys[slot] = oldKeys[i];
                _heads[slot] = oldHeads[i];
            }
        }
    }
}

internal delegate void CandidateCallback<TState>(int termId, ref TState state);
