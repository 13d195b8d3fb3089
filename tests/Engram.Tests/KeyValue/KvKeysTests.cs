using Engram.Core.Common;
using Engram.Core.KeyValue;
using FluentAssertions;
using Xunit;

namespace Engram.Tests.KeyValue;

/// <summary><see cref="KvKeys.IsValid"/>, the fast paths' check, never accepts a key <see cref="KvKeys.Validate"/> refuses.</summary>
public sealed class KvKeysTests
{
    // A [Fact] over the cases rather than a theory: xunit's serialization of theory data turns a lone surrogate into U+FFFD.
    private static readonly (string Key, bool Fast)[] Keys =
    [
        ("app:session:42", true),
        ("plain", true),
        ("ünïcödé:ключ:値", true),
        (new string('a', 512), true),
        (new string('é', 256), true), // 512 UTF-8 bytes
        (new string('€', 170), true), // 510 bytes
        (new string('a', 513), false),
        (new string('é', 257), false),
        (new string('€', 171), false), // 171 chars but 513 bytes: counted, not taken from the length
        ("", false),
        ("tab\there", false),
        ("nul\0", false),
        ("del\u007f", false),
        ("c1\u0085", false),
        ("emoji😀", false), // valid, but left to Validate (surrogates)
        ("lone\ud800", false),
        ("after\u00a0nbsp", true),
    ];

    [Fact]
    public void IsValid_AcceptsOnlyKeysThatValidateAccepts()
    {
        foreach (var (key, fast) in Keys)
        {
            Check(key, fast);
        }
    }

    private static void Check(string key, bool fast)
    {
        KvKeys.IsValid(key).Should().Be(fast, key);
        var validates = true;
        try
        {
            KvKeys.Validate(key);
        }
        catch (ValidationException)
        {
            validates = false;
        }
        if (fast)
        {
            validates.Should().BeTrue("a key the fast path takes must be one the checked path takes");
        }
        else if (key != "emoji😀")
        {
            validates.Should().BeFalse();
        }
        else
        {
            validates.Should().BeTrue("astral characters are valid keys; only the fast path leaves them out");
        }
    }

    [Fact]
    public void CompareStored_OrdersAsUtf8Bytes_TheStoresOrder()
    {
        var random = new Random(3);
        string[] parts = ["a", "z", "é", "\uD7FF", "\uE000", "\uFFFD", "😀", "𝄞", ""];
        for (var i = 0; i < 5000; i++)
        {
            var a = string.Concat(Enumerable.Range(0, random.Next(0, 4)).Select(_ => parts[random.Next(parts.Length)]));
            var b = string.Concat(Enumerable.Range(0, random.Next(0, 4)).Select(_ => parts[random.Next(parts.Length)]));
            var bytes = System.Text.Encoding.UTF8.GetBytes(a).AsSpan().SequenceCompareTo(System.Text.Encoding.UTF8.GetBytes(b));
            Math.Sign(KvKeys.CompareStored(a, b)).Should().Be(Math.Sign(bytes), $"'{a}' against '{b}'");
        }
    }
}
