using System.Diagnostics;
using System.Globalization;
using Engram.Benchmarks.Retrieval;
using Engram.Benchmarks.Store;
using Engram.Tests.Support;
using static Engram.Benchmarks.BenchArgs;

namespace Engram.Benchmarks.Telegram;

/// <summary>
/// <c>telegram</c>: a bot command's round trip through a fake Telegram Bot API (the tests' <see cref="FakeTelegram"/>),
/// from the update being queued at the fake to the bot's reply arriving there: the long poll's wake-up, Telegram.Bot's
/// parsing, the command through Engram's services, and sendMessage. Sequential, after <c>--warmup</c> commands, over a
/// fresh store holding <c>--memories</c> memories of the user (so /recall searches something).
/// </summary>
public static class TelegramBenchmark
{
    private const long User = 7001;

    public static async Task<int> RunAsync(string[] args)
    {
        var commands = Flag(args, "--commands", 300);
        var warmup = Flag(args, "--warmup", 30);
        var memories = Flag(args, "--memories", 1000);
        var dataRoot = Option(args, "--data-root") ?? BenchDataFolder.DefaultRoot;
        Directory.CreateDirectory(dataRoot);
        Console.WriteLine("Engram Telegram bot benchmark (telegram)");
        foreach (var line in MachineInfo.Describe(dataRoot))
        {
            Console.WriteLine(line);
        }
        var folder = Path.Combine(dataRoot, "telegram-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var telegram = await FakeTelegram.StartAsync();
            await using var server = await E2eServer.StartAsync(folder, configure: o =>
            {
                o.Telegram.BotToken = FakeTelegram.Token;
                o.Telegram.ApiBaseUrl = telegram.BaseUrl;
                o.Telegram.AllowedUsers = User.ToString(CultureInfo.InvariantCulture);
                o.Telegram.RateLimitPerMinute = 0;
            });
            var words = new[] { "passport", "garden", "invoice", "birthday", "recipe", "flight", "dentist", "library", "bicycle", "concert" };
            for (var i = 0; i < memories; i++)
            {
                await RoundTripAsync(telegram, $"/remember note {i} about the {words[i % words.Length]} and the {words[(i * 7 + 3) % words.Length]} number {i * 31 % 997}");
            }
            Console.WriteLine(Invariant($"store   : {memories:N0} memories of one Telegram user (sent through /remember); {commands} sequential commands per row after {warmup} warm-up ones"));
            Console.WriteLine("| command | p50 ms | p95 ms | p99 ms | max ms |");
            Console.WriteLine("|---|---:|---:|---:|---:|");
            foreach (var (name, text) in new (string, Func<int, string>)[]
            {
                ("/help", _ => "/help"),
                ("/remember <text>", i => $"/remember bench memory {i} {Guid.NewGuid():N}"),
                ("/recall <query> (top 5)", i => $"/recall {words[i % words.Length]} number {i % 997}"),
                ("/list", _ => "/list"),
            })
            {
                for (var i = 0; i < warmup; i++)
                {
                    await RoundTripAsync(telegram, text(i));
                }
                var times = new List<double>();
                for (var i = 0; i < commands; i++)
                {
                    times.Add(await RoundTripAsync(telegram, text(i + warmup)));
                }
                times.Sort();
                Console.WriteLine(Invariant($"| {name} | {P(times, 0.50):0.00} | {P(times, 0.95):0.00} | {P(times, 0.99):0.00} | {times[^1]:0.00} |"));
            }
        }
        finally
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
        return 0;
    }

    /// <summary>Queues one command and waits for the bot's reply at the fake: the round trip in milliseconds.</summary>
    private static async Task<double> RoundTripAsync(FakeTelegram telegram, string text)
    {
        var before = telegram.Sent.Count;
        var started = Stopwatch.GetTimestamp();
        telegram.SendText(User, text);
        await telegram.WaitForSentAsync(before + 1);
        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
