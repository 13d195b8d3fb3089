using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Engram.Server.Telegram;
using Engram.Tests.Support;
using FluentAssertions;
using Xunit;

namespace Engram.Tests.Telegram;

/// <summary>
/// One Engram server with the bot on (long polling against <see cref="FakeTelegram"/>) and a scripted model
/// (<see cref="FakeChatModel"/>), shared by the conversation tests: users 111, 222 and 444 are allowed, 999 is an admin.
/// </summary>
public sealed class TelegramBotFixture : IAsyncLifetime
{
    public const long Alice = 111;
    public const long Bob = 222;
    public const long Admin = 999;
    public const long Stranger = 333;
    public const long Carol = 444;

    public FakeTelegram Telegram { get; private set; } = null!;

    public FakeChatModel Model { get; private set; } = null!;

    public EngramServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Telegram = await FakeTelegram.StartAsync();
        Model = await FakeChatModel.StartAsync();
        Server = await EngramServer.StartAsync(configure: o =>
        {
            o.Telegram.BotToken = FakeTelegram.Token;
            o.Telegram.ApiBaseUrl = Telegram.BaseUrl;
            o.Telegram.AllowedUsers = $"{Alice}, {Bob},{Carol}";
            o.Telegram.Admins = Admin.ToString(System.Globalization.CultureInfo.InvariantCulture);
            o.Telegram.RateLimitPerMinute = 1000;
            o.Telegram.PollTimeoutSeconds = 5;
            o.Llm.BaseUrl = Model.BaseUrl;
            o.Llm.Model = "fake";
        });
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Model.DisposeAsync();
        await Telegram.DisposeAsync();
    }
}

public sealed class TelegramBotTests(TelegramBotFixture fixture) : IClassFixture<TelegramBotFixture>
{
    private FakeTelegram Telegram => fixture.Telegram;

    /// <summary>Sends <paramref name="text"/> as <paramref name="user"/> and returns the bot's next <paramref name="replies"/> messages to that chat.</summary>
    private static async Task<IReadOnlyList<FakeSentMessage>> TalkAsync(FakeTelegram telegram, long user, string text, int replies = 1)
    {
        var before = telegram.Sent.Count(m => m.ChatId == user);
        telegram.SendText(user, text);
        var sent = await telegram.WaitForSentAsync(before + replies, user);
        return sent.Skip(before).ToList();
    }

    private Task<string> AskAsync(long user, string text) => AskAsync(Telegram, user, text);

    private static async Task<string> AskAsync(FakeTelegram telegram, long user, string text) => (await TalkAsync(telegram, user, text))[0].Text;

    [Fact]
    public async Task Every_command_plays_through_the_bot_and_lands_in_the_users_scope()
    {
        const long user = TelegramBotFixture.Carol;
        (await AskAsync(user, "/start")).Should().Contain("Hello User444").And.Contain("/remember").And.Contain("/recall");
        (await AskAsync(user, "/help")).Should().Contain("/forget <n>");
        (await AskAsync(user, "/remember")).Should().Contain("What should I remember");
        (await AskAsync(user, "/remember My passport expires in May 2031")).Should().Be("Remembered.");
        (await AskAsync(user, "/remember@engram_test_bot The spare key is under the blue flowerpot")).Should().Be("Remembered.");
        (await AskAsync(user, "/remember My passport expires in May 2031")).Should().Be("I already remember that.");

        // The memory is the REST one: user_id telegram:<id>, source telegram, in the default tenant.
        var listed = await (await fixture.Server.Client.GetAsync("/v1/memories?user_id=telegram:444&limit=10")).JsonAsync();
        var items = listed.GetProperty("items").EnumerateArray().ToList();
        items.Select(m => m.GetProperty("content").GetString()).Should().BeEquivalentTo("My passport expires in May 2031", "The spare key is under the blue flowerpot");
        items.Should().OnlyContain(m => m.GetProperty("source").GetString() == "telegram");

        var recall = await AskAsync(user, "/recall passport");
        var today = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        recall.Should().StartWith("What I remember about \"passport\"").And.Contain("1. My passport expires in May 2031 (" + today + ")");
        (await AskAsync(user, "/recall")).Should().Contain("What should I look for");

        // /forget asks with a button; the press deletes through the user's scope and answers the callback.
        (await AskAsync(user, "/forget 9")).Should().Contain("number from 1 to");
        var ask = (await TalkAsync(Telegram, user, "/forget 1"))[0];
        ask.Text.Should().Contain("Forget this memory?").And.Contain("passport");
        var markup = JsonNode.Parse(ask.ReplyMarkup!)!;
        var data = markup["inline_keyboard"]![0]![0]!["callback_data"]!.GetValue<string>();
        data.Should().StartWith("forget:");
        var before = Telegram.Sent.Count(m => m.ChatId == user);
        var press = Telegram.Press(user, data);
        await Telegram.WaitForCallAsync("answerCallbackQuery", c => c.Body["callback_query_id"]!.GetValue<string>() == "cb" + press
            && c.Body["text"]!.GetValue<string>() == "Forgotten.");
        (await Telegram.WaitForSentAsync(before + 1, user))[^1].Text.Should().StartWith("Forgotten: My passport");
        (await AskAsync(user, "/recall passport")).Should().NotContain("passport expires");

        // Keep: nothing deleted.
        var keep = Telegram.Press(user, "keep");
        await Telegram.WaitForCallAsync("answerCallbackQuery", c => c.Body["callback_query_id"]!.GetValue<string>() == "cb" + keep && c.Body["text"]!.GetValue<string>() == "Kept.");

        var list = await AskAsync(user, "/list");
        list.Should().StartWith("Your memories:").And.Contain("1. The spare key is under the blue flowerpot").And.NotContain("passport");

        (await AskAsync(user, "/stats")).Should().Contain("for the bot's admins");
        (await AskAsync(TelegramBotFixture.Admin, "/stats")).Should().Contain("Memories in the default tenant:").And.Contain("language model: fake");
        (await AskAsync(user, "/frobnicate")).Should().StartWith("I do not know /frobnicate");
    }

    [Fact]
    public async Task A_plain_message_is_answered_by_chat_with_memory_and_remembered()
    {
        const long user = TelegramBotFixture.Bob;
        (await AskAsync(user, "/remember My cat is called Pixel")).Should().Be("Remembered.");
        var answer = await AskAsync(user, "What is my cat called?");
        answer.Should().Be("echo: What is my cat called?");
        // The model got bob's memory in its system message (the /v1/chat code path), and no one else's.
        var request = fixture.Model.Requests.Last(r => r.LastUserText == "What is my cat called?");
        request.Body.ToString().Should().Contain("My cat is called Pixel").And.NotContain("flowerpot");
        var listed = await (await fixture.Server.Client.GetAsync("/v1/memories?user_id=telegram:222&limit=10")).JsonAsync();
        listed.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).Should().Contain("What is my cat called?");
    }

    [Fact]
    public async Task A_stranger_is_refused_and_users_never_see_each_others_memories()
    {
        var refusal = await AskAsync(TelegramBotFixture.Stranger, "/recall anything");
        refusal.Should().StartWith("Sorry, this is a private Engram memory bot").And.Contain("333");
        (await AskAsync(TelegramBotFixture.Stranger, "/remember sneak in")).Should().StartWith("Sorry");
        var everything = await (await fixture.Server.Client.GetAsync("/v1/memories?limit=100")).JsonAsync();
        everything.GetProperty("items").EnumerateArray().Should().NotContain(m => m.GetProperty("content").GetString() == "sneak in");

        // Two users: a word only alice used finds nothing for bob, and bob cannot forget alice's memory with a forged button.
        const long alice = TelegramBotFixture.Alice, bob = TelegramBotFixture.Bob;
        (await AskAsync(alice, "/remember The vault combination is zzsecret-4711")).Should().Be("Remembered.");
        (await AskAsync(bob, "/recall vault combination zzsecret")).Should().NotContain("zzsecret-4711");
        (await AskAsync(bob, "/list")).Should().NotContain("zzsecret");
        var aliceMemory = (await (await fixture.Server.Client.GetAsync("/v1/memories?user_id=telegram:111&limit=100")).JsonAsync())
            .GetProperty("items").EnumerateArray().Single(m => m.GetProperty("content").GetString()!.Contains("zzsecret", StringComparison.Ordinal)).GetProperty("id").GetString();
        var press = Telegram.Press(bob, "forget:" + aliceMemory);
        await Telegram.WaitForCallAsync("answerCallbackQuery", c => c.Body["callback_query_id"]!.GetValue<string>() == "cb" + press
            && c.Body["text"]!.GetValue<string>() == "That memory is already gone.");
        (await fixture.Server.Client.GetAsync($"/v1/memories/{aliceMemory}")).StatusCode.Should().Be(HttpStatusCode.OK, "bob's press deleted nothing");
        // A stranger's press is refused before anything is looked up.
        var strangerPress = Telegram.Press(TelegramBotFixture.Stranger, "forget:" + aliceMemory);
        await Telegram.WaitForCallAsync("answerCallbackQuery", c => c.Body["callback_query_id"]!.GetValue<string>() == "cb" + strangerPress
            && c.Body["text"]!.GetValue<string>().StartsWith("Sorry", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_429_is_waited_out_and_a_long_reply_is_split()
    {
        const long user = TelegramBotFixture.Alice;
        Telegram.FailNext("sendMessage", 429, retryAfterSeconds: 1);
        (await AskAsync(user, "/remember Rate limits pass")).Should().Be("Remembered.");
        var sends = Telegram.Calls.Where(c => c.Method == "sendMessage" && c.Body["chat_id"]!.GetValue<long>() == user).TakeLast(2).ToList();
        sends.Select(c => c.Status).Should().Equal(429, 200);
        (sends[1].At - sends[0].At).Should().BePositive();

        // A 5xx and a 429 on getUpdates: polling carries on.
        Telegram.FailNext("getUpdates", 502);
        Telegram.FailNext("getUpdates", 429, retryAfterSeconds: 1);
        (await AskAsync(user, "/help")).Should().Contain("/remember");

        var paragraph = string.Concat(Enumerable.Repeat("A long answer line that goes on. ", 30)) + "\n";
        var longAnswer = string.Concat(Enumerable.Repeat(paragraph, 10)); // about 9,900 characters
        fixture.Model.Enqueue(FakeReply.Text(longAnswer));
        var parts = await TalkAsync(Telegram, user, "Tell me everything", replies: 3);
        parts.Should().OnlyContain(p => p.Text.Length <= 4096);
        string.Concat(parts.Select(p => p.Text)).Replace("\n", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal)
            .Should().Be(longAnswer.Replace("\n", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal));
    }

    /// <summary>
    /// Found by the probe: a blank answer was sent as is and refused by Telegram, a broken one escaped as an unexplained
    /// error, so in both cases the user heard nothing; a huge one became a message per 4,096 characters.
    /// </summary>
    [Fact]
    public async Task A_blank_broken_or_huge_model_answer_still_gets_the_user_a_short_reply()
    {
        const long user = TelegramBotFixture.Alice;
        fixture.Model.Enqueue(FakeReply.Text("\n\n   \n"));
        (await AskAsync(user, "Say nothing")).Should().Be("(the model gave an empty answer)");

        fixture.Model.Enqueue(new FakeReply { RawBody = """{"choices":[]}""" });
        (await AskAsync(user, "Are you there?")).Should().Contain("not answering right now");

        var before = Telegram.Sent.Count(m => m.ChatId == user);
        fixture.Model.Enqueue(FakeReply.Text(string.Concat(Enumerable.Repeat("word ", 10_000))));
        var parts = await TalkAsync(Telegram, user, "Tell me more than everything", replies: TelegramText.MaxReplyParts);
        parts.Should().OnlyContain(p => p.Text.Length <= TelegramText.MaxMessageLength);
        parts[^1].Text.Should().Contain("(cut: the reply is 50,000 characters");
        (await AskAsync(user, "/help")).Should().Contain("/remember");
        Telegram.Sent.Count(m => m.ChatId == user).Should().Be(before + TelegramText.MaxReplyParts + 1, "the cut reply, then the help");
    }

    /// <summary>
    /// Left alone by the session-48 probe: updates were handled one at a time, so one slow model answer held every other
    /// user's message. The slow answer here waits on a gate the test opens only after the other user was answered.
    /// </summary>
    [Fact]
    public async Task A_slow_answer_holds_only_its_own_chat_whose_messages_keep_their_order()
    {
        const long slow = TelegramBotFixture.Carol;
        const long other = TelegramBotFixture.Bob;
        using var gate = new ManualResetEventSlim();
        var echo = fixture.Model.Responder;
        fixture.Model.Responder = r =>
        {
            if (r.LastUserText == "a slow question")
            {
                gate.Wait(TimeSpan.FromSeconds(60)).Should().BeTrue("the test opens the gate");
            }
            return echo(r);
        };
        try
        {
            var before = Telegram.Sent.Count(m => m.ChatId == slow);
            Telegram.SendText(slow, "a slow question");
            await fixture.Model.WaitForRequestAsync(r => r.LastUserText == "a slow question");
            Telegram.SendText(slow, "/help");

            (await AskAsync(other, "a quick question")).Should().Be("echo: a quick question", "another chat is answered while the slow answer waits");
            Telegram.Sent.Count(m => m.ChatId == slow).Should().Be(before, "the slow chat's next message waits behind its first");

            gate.Set();
            var replies = (await Telegram.WaitForSentAsync(before + 2, slow)).Skip(before).Select(m => m.Text).ToList();
            replies[0].Should().Be("echo: a slow question");
            replies[1].Should().Contain("/remember", "then the chat's second message, in order");
        }
        finally
        {
            gate.Set();
            fixture.Model.Responder = echo;
        }
    }

    /// <summary>Found by the probe: when remembering the message failed after the model answered (read-only mode), the user got only the error.</summary>
    [Fact]
    public async Task A_plain_message_that_cannot_be_remembered_still_gets_the_models_answer()
    {
        const long user = TelegramBotFixture.Bob;
        (await fixture.Server.Client.PostAsJsonAsync("/v1/admin/readonly", new { enabled = true })).EnsureSuccessStatusCode();
        try
        {
            var reply = await AskAsync(user, "Is the server writable?");
            reply.Should().StartWith("echo: Is the server writable?").And.Contain("I did not remember this message.");
        }
        finally
        {
            (await fixture.Server.Client.PostAsJsonAsync("/v1/admin/readonly", new { enabled = false })).EnsureSuccessStatusCode();
        }
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task A_restart_does_not_handle_an_update_twice(Backend backend)
    {
        await using var telegram = await FakeTelegram.StartAsync();
        using var location = await StoreLocation.CreateAsync(backend);
        void Configure(Server.EngramServerOptions o)
        {
            o.Telegram.BotToken = FakeTelegram.Token;
            o.Telegram.ApiBaseUrl = telegram.BaseUrl;
            o.Telegram.AllowedUsers = "111";
            o.Telegram.PollTimeoutSeconds = 2;
        }

        var first = telegram.TextUpdate(111, "/remember Handled once");
        await using (var server = await EngramServer.StartAsync(location.Value, Configure))
        {
            telegram.Redeliver(first);
            (await telegram.WaitForSentAsync(1, 111))[0].Text.Should().Be("Remembered.");
            // Without a model a plain message gets a hint.
            (await AskAsync(telegram, 111, "hello there")).Should().Contain("/remember <text> keeps one");
        }
        // Telegram did not hear the confirmation and delivers the first update again, then a new one.
        telegram.Redeliver(first);
        telegram.SendText(111, "/remember Handled after the restart");
        await using (var server = await EngramServer.StartAsync(location.Value, Configure))
        {
            var sent = await telegram.WaitForSentAsync(3, 111);
            sent[2].Text.Should().Be("Remembered.");
            var items = (await (await server.Client.GetAsync("/v1/memories?user_id=telegram:111&limit=10")).JsonAsync()).GetProperty("items");
            items.EnumerateArray().Select(m => m.GetProperty("content").GetString()).Should().BeEquivalentTo("Handled once", "Handled after the restart");
        }
        telegram.Sent.Should().HaveCount(3, "the redelivered update was not answered again");
        telegram.Calls.Where(c => c.Method == "getUpdates").Should().Contain(c => c.Body["offset"] != null && c.Body["offset"]!.GetValue<int>() > first["update_id"]!.GetValue<int>());
    }

    [Fact]
    public async Task Webhook_mode_registers_the_secret_and_takes_only_updates_that_carry_it()
    {
        await using var telegram = await FakeTelegram.StartAsync();
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Telegram.BotToken = FakeTelegram.Token;
            o.Telegram.ApiBaseUrl = telegram.BaseUrl;
            o.Telegram.AllowedUsers = "111";
            o.Telegram.WebhookUrl = "https://engram.example.com/v1/telegram/webhook";
            o.Telegram.WebhookSecret = "test_Secret-1";
            o.Telegram.RateLimitPerMinute = 4;
        });
        var set = await telegram.WaitForCallAsync("setWebhook");
        set.Body["url"]!.GetValue<string>().Should().Be("https://engram.example.com/v1/telegram/webhook");
        set.Body["secret_token"]!.GetValue<string>().Should().Be("test_Secret-1");

        async Task<HttpResponseMessage> DeliverAsync(JsonObject update, string? secret)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/telegram/webhook") { Content = new StringContent(update.ToJsonString(), Encoding.UTF8, "application/json") };
            if (secret is not null)
            {
                request.Headers.Add("X-Telegram-Bot-Api-Secret-Token", secret);
            }
            return await server.Client.SendAsync(request);
        }

        var update = telegram.TextUpdate(111, "/remember Arrived by webhook");
        await (await DeliverAsync(update, null)).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
        await (await DeliverAsync(update, "wrong-secret")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized);
        telegram.Sent.Should().BeEmpty();
        (await DeliverAsync(update, "test_Secret-1")).StatusCode.Should().Be(HttpStatusCode.OK);
        telegram.Sent.Should().ContainSingle().Which.Text.Should().Be("Remembered.");
        (await DeliverAsync(update, "test_Secret-1")).StatusCode.Should().Be(HttpStatusCode.OK, "Telegram may deliver an update twice");
        telegram.Sent.Should().ContainSingle("the second delivery was skipped");
        using (var bad = new HttpRequestMessage(HttpMethod.Post, "/v1/telegram/webhook") { Content = new StringContent("{not json", Encoding.UTF8, "application/json") })
        {
            bad.Headers.Add("X-Telegram-Bot-Api-Secret-Token", "test_Secret-1");
            await (await server.Client.SendAsync(bad)).ShouldBeProblemAsync(HttpStatusCode.BadRequest);
        }

        // The per-user budget (4 a minute here): the fifth message is told to slow down, the sixth dropped silently.
        for (var i = 0; i < 3; i++)
        {
            (await DeliverAsync(telegram.TextUpdate(111, "/help"), "test_Secret-1")).StatusCode.Should().Be(HttpStatusCode.OK);
        }
        (await DeliverAsync(telegram.TextUpdate(111, "/help"), "test_Secret-1")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await DeliverAsync(telegram.TextUpdate(111, "/help"), "test_Secret-1")).StatusCode.Should().Be(HttpStatusCode.OK);
        telegram.Sent.Should().HaveCount(5);
        telegram.Sent[^1].Text.Should().Contain("faster than 4 a minute");
        telegram.Calls.Should().NotContain(c => c.Method == "getUpdates", "webhook mode does not poll");
    }

    [Fact]
    public void Replies_are_split_under_telegrams_limit_at_line_breaks()
    {
        TelegramText.Split("short").Should().Equal("short");
        var lines = string.Join('\n', Enumerable.Range(0, 500).Select(i => $"line {i:000} of the answer"));
        var parts = TelegramText.Split(lines);
        parts.Should().HaveCountGreaterThan(1).And.OnlyContain(p => p.Length <= TelegramText.MaxMessageLength);
        string.Join('\n', parts).Should().Be(lines);
        var unbroken = new string('x', 9000);
        TelegramText.Split(unbroken).Select(p => p.Length).Should().Equal(4096, 4096, 808);
    }
}

public sealed class TelegramOptionsTests
{
    [Fact]
    public void Bad_webhook_settings_and_limits_are_refused_at_start()
    {
        var options = new TelegramOptions { WebhookUrl = "not a url", WebhookSecret = "has spaces", RateLimitPerMinute = -1, PollTimeoutSeconds = 0 };
        options.Validate().Should().HaveCount(4).And.Contain(e => e.Contains("TELEGRAM_WEBHOOK_SECRET", StringComparison.Ordinal));
        new TelegramOptions { WebhookUrl = "https://bot.example.com/v1/telegram/webhook", WebhookSecret = "ok_Secret-1" }.Validate().Should().BeEmpty();
        TelegramConversation.Parse("/Recall@engram_bot  dark mode ").Should().Be(("/recall", "dark mode"));
        TelegramConversation.Parse("just text").Should().Be(((string?)null, "just text"));
    }
}
