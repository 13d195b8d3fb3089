using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Security;
using Engram.Core.Storage;
using FluentAssertions;
using Xunit;

namespace Engram.Tests.KeyValue;

/// <summary>
/// A transaction's listing pages (KEYS and SCAN inside MULTI): the store's keys merged with the working set's changes.
/// Walked page by page at small limits over random stores and changes, every live key comes exactly once, in the
/// stores' order, whatever the transaction set or deleted around the page boundaries.
/// </summary>
public sealed class KvTransactionListingTests
{
    private static readonly Caller Partition = new("t", "tester", Role.Admin);

    [Fact]
    public async Task Pages_hold_every_live_key_once_with_the_transactions_changes()
    {
        var random = new Random(11);
        string[] alphabet = ["a", "b", "c", "é", "😀", "\uE000"];
        for (var round = 0; round < 300; round++)
        {
            var store = new SortedSet<string>(Comparer<string>.Create(KvKeys.CompareStored));
            for (var i = random.Next(0, 40); i > 0; i--)
            {
                store.Add("k" + string.Concat(Enumerable.Range(0, random.Next(1, 4)).Select(_ => alphabet[random.Next(alphabet.Length)])));
            }
            // Declared keys: some stored, some not.
            var declared = store.Where(_ => random.Next(3) == 0)
                .Concat(Enumerable.Range(0, random.Next(0, 6)).Select(i => "k" + alphabet[random.Next(alphabet.Length)] + "new" + i))
                .Distinct().ToList();
            var entries = store.ToDictionary(k => k, k => new KvEntry(k, "1", null, 1, 0, 0, 1));
            var transaction = new KvTransaction(Partition, 1_000, declared.Select(k => (k, entries.GetValueOrDefault(k), entries.ContainsKey(k) ? (long?)1 : null)),
                (pattern, after, limit) => [.. store.Where(k => (after is null || KvKeys.CompareStored(k, after) > 0) && pattern.Matches(k)).Take(limit).Select(k => entries[k])]);
            var expected = new SortedSet<string>(store, Comparer<string>.Create(KvKeys.CompareStored));
            foreach (var key in declared)
            {
                if (random.Next(2) == 0)
                {
                    await transaction.DeleteKvAsync(Partition, key, WriteDurability.Relaxed);
                    expected.Remove(key);
                }
                else
                {
                    await transaction.SetKvAsync(Partition, new KvWrite(key, "2", null), WriteDurability.Relaxed);
                    expected.Add(key);
                }
            }

            var limit = random.Next(1, 6);
            var listed = new List<string>();
            string? cursor = null;
            do
            {
                var page = await transaction.ListKvAsync(Partition, KvGlob.All, limit, cursor);
                page.Items.Count.Should().BeLessThanOrEqualTo(limit);
                listed.AddRange(page.Items.Select(e => e.StoredKey));
                cursor = page.LastKey;
            }
            while (cursor is not null);
            listed.Should().Equal(expected, $"round {round}, limit {limit}");
        }
    }
}
