using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Security;
using Engram.Core.Storage;
using Microsoft.Extensions.AI;

namespace Engram.Core.Llm;

/// <summary>
/// Extraction (issue 16): a conversation is stored with its job in one transaction and the caller gets the job's id at
/// once; workers (<see cref="RunOneAsync"/>) ask the model for atomic facts, find the closest memories of the scope with
/// Engram's own search, ask the model per fact to ADD, UPDATE, SUPERSEDE or do NONE (naming memories by local numbers it
/// cannot invent), persist that plan, then apply it through <see cref="MemoryService"/> one decision at a time, saving
/// after each: a job killed midway resumes from its plan without asking the model again and without doing anything twice.
/// </summary>
public sealed class ConversationExtractor : IConversationExtractor
{
    public const string Feature = "extraction (POST /v1/memories with messages)";

    /// <summary>How long <c>wait=true</c> waits for a job before answering with it as it is.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

    /// <summary>Messages one conversation may hold (an extraction, or an add that stores them as they are).</summary>
    public const int MaxMessages = 500;
    private const int MaxConversationChars = 200_000;

    // The model's answers: unknown members are ignored (models add fields), the names are Engram's snake_case.
    private static readonly JsonSerializerOptions AnswerJson = new(EngramJson.Options) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip };

    private static readonly HashSet<string> Roles = ["user", "assistant", "system", "tool"];

    private readonly IExtractionJobStore _jobs;
    private readonly MemoryService _memories;
    private readonly SearchService _search;
    private readonly GraphService? _graph;
    private readonly LlmAccess _llm;
    private readonly TimeProvider _clock;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _finished = new(StringComparer.Ordinal);

    public ConversationExtractor(IExtractionJobStore jobs, MemoryService memories, SearchService search, GraphService? graph, LlmAccess llm, TimeProvider? clock = null)
    {
        _jobs = jobs;
        _memories = memories;
        _search = search;
        _graph = graph;
        _llm = llm;
        _clock = clock ?? TimeProvider.System;
    }

    public IExtractionJobStore Jobs => _jobs;

    private LlmOptions Options => _llm.Model?.Options ?? new LlmOptions();

    public async Task<string> EnqueueAsync(Caller caller, Conversation conversation, CancellationToken ct = default)
    {
        var guard = ScopeGuard.Enter(caller, Role.Write, "extract memories");
        // The caller's mistakes (a conversation that could never be extracted: 400; a scope outside the key's: 403) come
        // before the server's lack of a model (503), which the caller cannot fix.
        Check(conversation);
        var stamped = guard.Stamp(new NewMemory { UserId = conversation.UserId, AgentId = conversation.AgentId });
        _llm.Require(Feature);
        var now = _clock.GetUtcNow();
        var job = new ExtractionJob
        {
            Id = Ulid.NewUlid(now),
            Tenant = caller.Tenant,
            ConversationId = Ulid.NewUlid(now),
            Actor = caller.Actor,
            Status = ExtractionStatus.Queued,
            NextAttemptAt = now,
            Input = new StoredConversation(conversation with { UserId = stamped.UserId, AgentId = stamped.AgentId, Source = conversation.Source ?? "api" },
                caller.Scope?.UserId, caller.Scope?.AgentId),
            CreatedAt = now,
            UpdatedAt = now,
        };
        await _jobs.EnqueueExtractionAsync(job, ct).ConfigureAwait(false);
        _wake.Release();
        return job.Id;
    }

    /// <summary>The job, if it is the caller's (its tenant, and within a scoped key's scope); else 404.</summary>
    public async Task<ExtractionJob> GetJobAsync(Caller caller, string id, CancellationToken ct = default)
    {
        ScopeGuard.Enter(caller, Role.Read, "read jobs");
        var job = await _jobs.GetExtractionJobAsync(caller.Tenant, id, ct).ConfigureAwait(false);
        var input = job?.Input.Conversation;
        // A scoped key sees the jobs of its scope only, and the same 404 for another scope's as for none.
        if (job is null || (caller.Scope is { } scope
            && ((scope.UserId is not null && scope.UserId != input!.UserId) || (scope.AgentId is not null && scope.AgentId != input!.AgentId))))
        {
            throw new NotFoundException($"no job with id '{id}'");
        }
        return job;
    }

    /// <summary>The job once it has finished, or as it is after <paramref name="timeout"/>.</summary>
    public async Task<ExtractionJob> WaitAsync(Caller caller, string id, TimeSpan timeout, CancellationToken ct = default)
    {
        var deadline = _clock.GetUtcNow() + timeout;
        while (true)
        {
            var signal = _finished.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            var job = await GetJobAsync(caller, id, ct).ConfigureAwait(false);
            var left = deadline - _clock.GetUtcNow();
            if (job.IsFinished || left <= TimeSpan.Zero)
            {
                _finished.TryRemove(new KeyValuePair<string, TaskCompletionSource>(id, signal));
                return job;
            }
            // Another instance's worker finishes without this one hearing: look again every half second.
            try
            {
                await signal.Task.WaitAsync(left < TimeSpan.FromMilliseconds(500) ? left : TimeSpan.FromMilliseconds(500), ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // look again
            }
        }
    }

    /// <summary>Waits until a job may be due (one was queued here) or <paramref name="timeout"/> passes.</summary>
    public Task WaitForWorkAsync(TimeSpan timeout, CancellationToken ct) => _wake.WaitAsync(timeout, ct);

    /// <summary>Takes one due job for <paramref name="owner"/> and runs it; false when none was due.</summary>
    public async Task<bool> RunOneAsync(string owner, CancellationToken ct)
    {
        var lease = TimeSpan.FromSeconds(Options.ExtractionLeaseSeconds);
        var now = _clock.GetUtcNow();
        var job = await _jobs.ClaimExtractionJobAsync(owner, now, now + lease, ct).ConfigureAwait(false);
        if (job is null)
        {
            return false;
        }
        var run = new Run(this, job, owner, lease);
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(ct);
        await using (var renewal = new Timer(_ => _ = run.RenewAsync(lost), null, lease / 3, lease / 3).ConfigureAwait(false))
        {
            try
            {
                await RunAsync(run, lost.Token, ct).ConfigureAwait(false);
            }
            catch (LeaseLostException)
            {
                // Lost while recording the outcome: the worker that took it over records its own.
            }
        }
        if (run.State.IsFinished && _finished.TryRemove(job.Id, out var signal))
        {
            signal.TrySetResult();
        }
        return true;
    }

    private async Task RunAsync(Run run, CancellationToken ct, CancellationToken stopping)
    {
        try
        {
            var model = _llm.Require(Feature);
            var caller = new Caller(run.State.Tenant, "llm:" + model.Options.Model, Role.Write,
                run.State.Input.ScopeUserId is null && run.State.Input.ScopeAgentId is null ? null : new KeyScope(run.State.Input.ScopeUserId, run.State.Input.ScopeAgentId));
            if (run.State.Plan is null)
            {
                var plan = await PlanAsync(model, caller, run.State.Input.Conversation, ct).ConfigureAwait(false);
                // The plan is saved before anything is applied: a restart applies it without asking the model again.
                await run.SaveAsync(s => s with { Plan = plan, Model = model.Options.Model, Error = null }, ct).ConfigureAwait(false);
            }
            var decisions = run.State.Plan!.Decisions;
            for (var i = run.State.Applied.Count; i < decisions.Count; i++)
            {
                var applied = await ApplyAsync(caller, run.State, i, ct).ConfigureAwait(false);
                await run.SaveAsync(s => s with
                {
                    Applied = [.. s.Applied, applied],
                    MemoryIds = applied.MemoryId is { } id && !s.MemoryIds.Contains(id) ? [.. s.MemoryIds, id] : s.MemoryIds,
                }, ct).ConfigureAwait(false);
            }
            await LinkGraphAsync(caller, run.State.Plan!, ct).ConfigureAwait(false);
            await run.SaveAsync(s => s with { Status = ExtractionStatus.Succeeded, LeaseOwner = null, LeaseUntil = null, Error = null }, ct, final: true).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Shutting down: hand the job back at once rather than when the lease runs out.
            await run.SaveAsync(s => s with { Status = ExtractionStatus.Queued, LeaseOwner = null, LeaseUntil = null, NextAttemptAt = _clock.GetUtcNow() },
                CancellationToken.None, final: true).ConfigureAwait(false);
        }
        catch (LeaseLostException)
        {
            // The lease was lost (another worker took the job over): its state is the other worker's now.
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The lease was lost while a call was under way.
        }
        catch (LlmOutputException ex)
        {
            // The model answered, twice, with something unusable: the job fails with the reason; the conversation stays.
            await FailAsync(run, $"{ex.Message}; the model's last answer: {Truncate(ex.RawAnswer, 2000)}").ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is LlmUnavailableException or StoreException or TimeoutException or HttpRequestException)
        {
            await RetryLaterAsync(run, ex).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is EngramException or LlmNotConfiguredException or JsonException)
        {
            await FailAsync(run, ex.Message).ConfigureAwait(false);
        }
        catch (Exception ex) when (!stopping.IsCancellationRequested)
        {
            // Anything unforeseen counts as an attempt too: left to escape, the job stayed "running" and was taken again
            // each time its lease ran out, without end (attempts climbing past the limit, the model called every time).
            await RetryLaterAsync(run, ex).ConfigureAwait(false);
        }
    }

    /// <summary>Another worker holds the job now (this one's lease ran out).</summary>
    private sealed class LeaseLostException() : Exception("the job's lease was lost to another worker");

    private Task FailAsync(Run run, string error) =>
        run.SaveAsync(s => s with { Status = ExtractionStatus.Failed, Error = error, LeaseOwner = null, LeaseUntil = null }, CancellationToken.None, final: true);

    private Task RetryLaterAsync(Run run, Exception ex)
    {
        if (run.State.Attempts >= Options.ExtractionMaxAttempts)
        {
            return FailAsync(run, $"gave up after {run.State.Attempts} attempts: {ex.Message}");
        }
        // Exponential backoff (2 s, 4 s, 8 s, ... up to 5 min), or longer when the endpoint said so (429 Retry-After).
        var backoff = TimeSpan.FromSeconds(Math.Min(300, 2 * Math.Pow(2, Math.Max(0, run.State.Attempts - 1))));
        if (ex is LlmUnavailableException { RetryAfter: { } retryAfter } && retryAfter > backoff)
        {
            backoff = retryAfter;
        }
        var next = _clock.GetUtcNow() + backoff;
        return run.SaveAsync(s => s with { Status = ExtractionStatus.Queued, NextAttemptAt = next, Error = ex.Message, LeaseOwner = null, LeaseUntil = null },
            CancellationToken.None, final: true);
    }

    private async Task<ExtractionPlan> PlanAsync(LanguageModel model, Caller caller, Conversation conversation, CancellationToken ct)
    {
        var facts = await model.AskJsonAsync<FactsAnswer>(
        [
            new ChatMessage(ChatRole.System, FactsPrompt),
            new ChatMessage(ChatRole.User, Transcript(conversation)),
        ], "facts", AnswerJson, CheckFacts, ct).ConfigureAwait(false);
        var found = facts.Facts!.Select(f => f with { Text = f.Text!.Trim() }).ToList();
        if (found.Count == 0)
        {
            return new ExtractionPlan([], []);
        }

        // The closest current memories of the scope, numbered 1..n for the model (it never sees or writes an id).
        var candidates = new List<Memory>();
        foreach (var fact in found)
        {
            var hits = await _search.SearchAsync(caller, new SearchRequest
            {
                Query = fact.Text,
                K = Options.ExtractionCandidates,
                Filters = new SearchFilters { UserId = conversation.UserId, AgentId = conversation.AgentId, Namespace = conversation.Namespace },
            }, ct).ConfigureAwait(false);
            foreach (var hit in hits.Results)
            {
                if (!candidates.Any(c => c.Id == hit.Memory.Id))
                {
                    candidates.Add(hit.Memory);
                }
            }
        }
        if (candidates.Count == 0)
        {
            return new ExtractionPlan(found, [.. found.Select((f, i) => new PlannedDecision(i, "ADD", f.Text!, null, "nothing similar is stored"))]);
        }

        var prompt = new StringBuilder("Existing memories:\n");
        for (var i = 0; i < candidates.Count; i++)
        {
            prompt.Append(CultureInfo.InvariantCulture, $"{i + 1}. {candidates[i].Content}\n");
        }
        prompt.Append("\nNew facts:\n");
        for (var i = 0; i < found.Count; i++)
        {
            prompt.Append(CultureInfo.InvariantCulture, $"{i + 1}. {found[i].Text}\n");
        }
        var answer = await model.AskJsonAsync<DecisionsAnswer>(
        [
            new ChatMessage(ChatRole.System, DecisionsPrompt),
            new ChatMessage(ChatRole.User, prompt.ToString()),
        ], "decisions", AnswerJson, a => CheckDecisions(a, found.Count, candidates.Count), ct).ConfigureAwait(false);

        var decisions = new List<PlannedDecision>(found.Count);
        for (var i = 0; i < found.Count; i++)
        {
            var d = answer.Decisions!.FirstOrDefault(d => d.Fact == i + 1);
            var verb = d?.Event?.Trim().ToUpperInvariant() ?? "ADD";
            var target = d?.Memory is { } n && verb is "UPDATE" or "SUPERSEDE" ? candidates[n - 1] : null;
            var text = verb == "UPDATE" && !string.IsNullOrWhiteSpace(d?.Text) ? d!.Text!.Trim() : found[i].Text!;
            decisions.Add(new PlannedDecision(i, verb, text, target?.Id, d?.Reason, target?.Version));
        }
        return new ExtractionPlan(found, decisions);
    }

    /// <summary>
    /// Applies decision <paramref name="index"/>. Idempotent, so a decision applied just before a crash (not yet saved
    /// as applied) is applied again harmlessly: an ADD finds its memory as a duplicate, an UPDATE finds the text already
    /// there, a SUPERSEDE finds the old memory already pointing at the new one.
    /// </summary>
    private async Task<AppliedDecision> ApplyAsync(Caller caller, ExtractionJob job, int index, CancellationToken ct)
    {
        var decision = job.Plan!.Decisions[index];
        var fact = job.Plan.Facts[decision.Fact];
        try
        {
            switch (decision.Event)
            {
                case "ADD":
                    return new AppliedDecision(index, decision.Event, await AddAsync(caller, job, fact, decision, ct).ConfigureAwait(false), null);
                case "UPDATE":
                    return await UpdateAsync(caller, job, index, fact, decision, ct).ConfigureAwait(false);
                case "SUPERSEDE":
                    return await SupersedeAsync(caller, job, index, fact, decision, ct).ConfigureAwait(false);
                default:
                    return new AppliedDecision(index, "NONE", null, decision.TargetId, decision.Reason);
            }
        }
        catch (Exception ex) when (ex is NotFoundException or ValidationException or ConflictException)
        {
            // The target was deleted meanwhile, or the fact's text or type is refused: this decision is skipped, the job goes on.
            return new AppliedDecision(index, decision.Event, null, decision.TargetId, "skipped: " + ex.Message);
        }
    }

    private async Task<AppliedDecision> UpdateAsync(Caller caller, ExtractionJob job, int index, ExtractedFact fact, PlannedDecision decision, CancellationToken ct)
    {
        var current = await _memories.GetAsync(caller, decision.TargetId!, ct).ConfigureAwait(false);
        if (current.Content == decision.Text)
        {
            return new AppliedDecision(index, decision.Event, current.Id, current.Id); // applied before (a resumed job)
        }
        // The model merged the fact into the text it read. Another job running on the same scope, or a client, may have
        // changed the memory since: writing the merge over that change would lose it, so the fact becomes its own memory.
        var expected = decision.TargetVersion ?? current.Version;
        if (current.Version == expected)
        {
            try
            {
                var patch = new MemoryPatch { Content = decision.Text, Metadata = Stamp(current.Metadata, job, decision) };
                await _memories.UpdateAsync(caller, current.Id, patch, expected, ct).ConfigureAwait(false);
                return new AppliedDecision(index, decision.Event, current.Id, current.Id);
            }
            catch (PreconditionFailedException)
            {
                // changed between the read and the write: as below
            }
        }
        var added = await AddAsync(caller, job, fact, decision with { Event = "ADD", Text = fact.Text! }, ct).ConfigureAwait(false);
        return new AppliedDecision(index, decision.Event, added, current.Id,
            "the memory changed after the model read it: the fact was added as a memory of its own instead of rewriting it");
    }

    private async Task<AppliedDecision> SupersedeAsync(Caller caller, ExtractionJob job, int index, ExtractedFact fact, PlannedDecision decision, CancellationToken ct)
    {
        var old = await _memories.GetAsync(caller, decision.TargetId!, ct).ConfigureAwait(false);
        var replacement = await AddAsync(caller, job, fact, decision, ct).ConfigureAwait(false);
        // The fact replaces the memory the model read, or, when something replaced that one since (another extraction on
        // the same scope, a client), the newest memory of that chain: pointing the old memory at this replacement instead
        // left both replacements current ("lives in Berlin" and "lives in Rome" after two conversations at once). The
        // write is checked against the version read, so two jobs extending one chain at once queue one after the other.
        for (var attempt = 0; ; attempt++)
        {
            var head = await ChainHeadAsync(caller, old, replacement, ct).ConfigureAwait(false);
            if (head is null)
            {
                return new AppliedDecision(index, decision.Event, replacement, old.Id); // applied before (a resumed job)
            }
            var now = _clock.GetUtcNow();
            var end = fact.ValidFrom is { } from && from <= now ? from : now;
            var patch = new MemoryPatch
            {
                ValidTo = head.ValidFrom is { } start && start > end ? start : end,
                SupersededBy = replacement,
                Metadata = Stamp(head.Metadata, job, decision),
            };
            try
            {
                await _memories.UpdateAsync(caller, head.Id, patch, head.Version, ct).ConfigureAwait(false);
            }
            catch (PreconditionFailedException) when (attempt < MaxChainAttempts)
            {
                old = await _memories.GetAsync(caller, old.Id, ct).ConfigureAwait(false);
                continue; // changed between the read and the write: read the chain again
            }
            return head.Id == old.Id
                ? new AppliedDecision(index, decision.Event, replacement, old.Id)
                : new AppliedDecision(index, decision.Event, replacement, head.Id,
                    $"memory {old.Id} had been replaced by {head.Id} after the model read it: the fact replaces that one");
        }
    }

    /// <summary>Tries of <see cref="SupersedeAsync"/> when the chain's newest memory keeps changing under it.</summary>
    private const int MaxChainAttempts = 8;

    /// <summary>Replacements followed from the memory the model read (a longer chain, or a cycle a client made, ends there).</summary>
    private const int MaxChainLength = 32;

    /// <summary>
    /// The newest memory of the chain of replacements that starts at <paramref name="memory"/>: the first that nothing
    /// replaces, or whose replacement was deleted. Null when the chain already reaches <paramref name="replacement"/>.
    /// </summary>
    private async Task<Memory?> ChainHeadAsync(Caller caller, Memory memory, string replacement, CancellationToken ct)
    {
        for (var hop = 0; hop < MaxChainLength; hop++)
        {
            if (memory.Id == replacement || memory.SupersededBy == replacement)
            {
                return null;
            }
            if (memory.SupersededBy is not { } next)
            {
                return memory;
            }
            try
            {
                memory = await _memories.GetAsync(caller, next, ct).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                return memory; // its replacement was deleted: the chain ends here
            }
        }
        return memory;
    }

    private async Task<string> AddAsync(Caller caller, ExtractionJob job, ExtractedFact fact, PlannedDecision decision, CancellationToken ct)
    {
        var conversation = job.Input.Conversation;
        var metadata = Stamp(conversation.Metadata is { ValueKind: JsonValueKind.Object } given ? given : JsonSerializer.SerializeToElement(new { }), job, decision);
        var written = await _memories.CreateAsync(caller, new NewMemory
        {
            Content = decision.Event == "SUPERSEDE" ? fact.Text : decision.Text,
            Type = string.IsNullOrWhiteSpace(fact.Type) ? null : fact.Type.Trim().ToLowerInvariant(),
            Importance = fact.Importance,
            Valence = fact.Valence,
            Entities = fact.Entities,
            Metadata = metadata,
            UserId = conversation.UserId,
            AgentId = conversation.AgentId,
            SessionId = conversation.SessionId,
            Namespace = conversation.Namespace,
            Source = conversation.Source,
            ValidFrom = fact.ValidFrom,
        }, DuplicatePolicy.Return, ct).ConfigureAwait(false);
        return written.Memory.Id;
    }

    /// <summary>The memory's metadata with <c>extraction</c>: the job and the model's reason (history shows both).</summary>
    private static JsonElement Stamp(JsonElement metadata, ExtractionJob job, PlannedDecision decision)
    {
        var node = metadata.ValueKind == JsonValueKind.Object ? JsonNode.Parse(metadata.GetRawText())!.AsObject() : [];
        node["extraction"] = new JsonObject
        {
            ["job_id"] = job.Id,
            ["event"] = decision.Event.ToLowerInvariant(),
            ["reason"] = decision.Reason,
        };
        return JsonSerializer.SerializeToElement(node, EngramJson.Options);
    }

    /// <summary>Entities the facts name become graph entities (existing ones are reused), with the relations the model stated.</summary>
    private async Task LinkGraphAsync(Caller caller, ExtractionPlan plan, CancellationToken ct)
    {
        if (_graph is null)
        {
            return;
        }
        var names = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var relations = new List<NewRelation>();
        foreach (var fact in plan.Facts)
        {
            foreach (var name in fact.Entities ?? [])
            {
                if (!string.IsNullOrWhiteSpace(name))
                {
                    names.TryAdd(name.Trim(), name.Trim());
                }
            }
            foreach (var r in fact.Relations ?? [])
            {
                if (!string.IsNullOrWhiteSpace(r.From) && !string.IsNullOrWhiteSpace(r.To) && !string.IsNullOrWhiteSpace(r.RelationType))
                {
                    names.TryAdd(r.From.Trim(), r.From.Trim());
                    names.TryAdd(r.To.Trim(), r.To.Trim());
                    relations.Add(new NewRelation { From = names[r.From.Trim()], To = names[r.To.Trim()], RelationType = r.RelationType.Trim() });
                }
            }
        }
        if (names.Count == 0)
        {
            return;
        }
        try
        {
            foreach (var chunk in names.Values.Chunk(GraphValidator.MaxBatch))
            {
                await _graph.CreateEntitiesAsync(caller, [.. chunk.Select(n => new NewEntity { Name = n, EntityType = "entity", Observations = [] })], ct).ConfigureAwait(false);
            }
            foreach (var chunk in relations.Chunk(GraphValidator.MaxBatch))
            {
                await _graph.CreateRelationsAsync(caller, chunk, ct).ConfigureAwait(false);
            }
        }
        catch (ValidationException)
        {
            // A name the graph refuses (too long, say) leaves the graph as it is; the memories stand.
        }
    }

    /// <summary>The rules of a conversation to extract from (also of an imported one, <see cref="Storage.Transfer.ImportRecords"/>).</summary>
    internal static void Check(Conversation conversation)
    {
        if (conversation.Messages is not { Count: > 0 } messages)
        {
            throw new ValidationException("messages", "messages must hold at least one message");
        }
        if (messages.Count > MaxMessages)
        {
            throw new ValidationException("messages", $"at most {MaxMessages} messages per conversation");
        }
        long total = 0;
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i] ?? throw new ValidationException($"messages[{i}]", $"messages[{i}] must be an object");
            if (m.Role is null || !Roles.Contains(m.Role))
            {
                throw new ValidationException($"messages[{i}].role", $"messages[{i}].role must be user, assistant, system or tool");
            }
            if (string.IsNullOrWhiteSpace(m.Content))
            {
                throw new ValidationException($"messages[{i}].content", $"messages[{i}].content must not be empty");
            }
            total += m.Content.Length;
        }
        if (total > MaxConversationChars)
        {
            throw new ValidationException("messages", $"the conversation is {total} characters; at most {MaxConversationChars}");
        }
        if (conversation.Metadata is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null or JsonValueKind.Undefined) })
        {
            throw new ValidationException("metadata", "metadata must be a JSON object");
        }
        if (!messages.Any(m => m.Role == "user"))
        {
            throw new ValidationException("messages", "messages must hold at least one user message");
        }
    }

    private string? CheckFacts(FactsAnswer answer)
    {
        if (answer.Facts is null)
        {
            return "facts is missing: answer {\"facts\": [...]}";
        }
        for (var i = 0; i < answer.Facts.Count; i++)
        {
            var f = answer.Facts[i];
            if (f is null || string.IsNullOrWhiteSpace(f.Text))
            {
                return $"facts[{i}].text is missing";
            }
            if (f.Text.Length > _memories.Limits.MaxContentChars && UnicodeText.CountCharacters(f.Text) > _memories.Limits.MaxContentChars)
            {
                return $"facts[{i}].text is longer than {_memories.Limits.MaxContentChars} characters";
            }
            if (f.Importance is < 0 or > 1 || f.Importance is double.NaN)
            {
                return $"facts[{i}].importance must be between 0 and 1";
            }
            if (f.Valence is < -1 or > 1 || f.Valence is double.NaN)
            {
                return $"facts[{i}].valence must be between -1 and 1";
            }
        }
        return null;
    }

    private static string? CheckDecisions(DecisionsAnswer answer, int facts, int memories)
    {
        if (answer.Decisions is null)
        {
            return "decisions is missing: answer {\"decisions\": [...]}";
        }
        for (var i = 0; i < answer.Decisions.Count; i++)
        {
            var d = answer.Decisions[i];
            if (d is null || d.Fact is not { } fact || fact < 1 || fact > facts)
            {
                return $"decisions[{i}].fact must be the number of a new fact, 1 to {facts}";
            }
            var verb = d.Event?.Trim().ToUpperInvariant();
            if (verb is not ("ADD" or "UPDATE" or "SUPERSEDE" or "NONE"))
            {
                return $"decisions[{i}].event must be ADD, UPDATE, SUPERSEDE or NONE";
            }
            if (verb is "UPDATE" or "SUPERSEDE" && (d.Memory is not { } n || n < 1 || n > memories))
            {
                return $"decisions[{i}].memory must be the number of an existing memory, 1 to {memories}, for {verb} (got {d.Memory?.ToString(CultureInfo.InvariantCulture) ?? "none"})";
            }
        }
        return null;
    }

    private static string Transcript(Conversation conversation)
    {
        var text = new StringBuilder();
        foreach (var m in conversation.Messages)
        {
            text.Append(m.Role).Append(": ").Append(m.Content.Trim()).Append('\n');
        }
        return text.ToString();
    }

    private static string Truncate(string text, int max) => text.Length <= max ? text : text[..max] + "…";

    private const string FactsPrompt =
        "You extract durable memories about the user from a conversation. Answer with JSON only: " +
        "{\"facts\": [{\"text\": \"...\", \"type\": \"fact|preference|event|goal|skill\", \"entities\": [\"names of people, places, things\"], " +
        "\"importance\": 0..1, \"valence\": -1..1 (emotional tone), \"valid_from\": \"ISO 8601 time the fact became true, or null\", " +
        "\"relations\": [{\"from\": \"entity\", \"to\": \"entity\", \"relation_type\": \"lives_in\"}]}]}. " +
        "Each fact is atomic, short and self-contained (\"Lives in Berlin\", \"Prefers tea over coffee\"). " +
        "Take facts from what the user says; skip greetings, questions and the assistant's own suggestions. No facts: {\"facts\": []}.";

    private const string DecisionsPrompt =
        "You keep a memory store current. For each new fact decide one event: ADD (new information), UPDATE (an existing memory " +
        "says the same thing less completely: give the merged text), SUPERSEDE (the new fact contradicts or replaces an existing " +
        "memory, which stops being current), NONE (already known). Refer to existing memories only by their number. Answer with " +
        "JSON only: {\"decisions\": [{\"fact\": 1, \"event\": \"ADD|UPDATE|SUPERSEDE|NONE\", \"memory\": number or null, " +
        "\"text\": \"merged text for UPDATE, else null\", \"reason\": \"short reason\"}]}.";

    /// <summary>The model's first answer: the facts.</summary>
    internal sealed record FactsAnswer
    {
        public List<ExtractedFact>? Facts { get; init; }
    }

    /// <summary>The model's second answer: one decision per fact, memories by their local numbers.</summary>
    internal sealed record DecisionsAnswer
    {
        public List<DecisionAnswer>? Decisions { get; init; }
    }

    internal sealed record DecisionAnswer
    {
        public int? Fact { get; init; }

        public string? Event { get; init; }

        public int? Memory { get; init; }

        public string? Text { get; init; }

        public string? Reason { get; init; }
    }

    /// <summary>One claimed job: its current state, saved (with a renewed lease) under one lock so renewals never write an older state.</summary>
    private sealed class Run(ConversationExtractor owner, ExtractionJob job, string worker, TimeSpan lease)
    {
        private readonly SemaphoreSlim _gate = new(1, 1);

        public ExtractionJob State { get; private set; } = job;

        public async Task SaveAsync(Func<ExtractionJob, ExtractionJob> change, CancellationToken ct, bool final = false)
        {
            if (!final)
            {
                ct.ThrowIfCancellationRequested(); // progress is not saved for a job that was lost or is being stopped
            }
            await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                var now = owner._clock.GetUtcNow();
                var next = change(State) with { UpdatedAt = now };
                if (!final)
                {
                    next = next with { LeaseOwner = worker, LeaseUntil = now + lease };
                }
                if (!await owner._jobs.SaveExtractionJobAsync(next, worker, CancellationToken.None).ConfigureAwait(false))
                {
                    throw new LeaseLostException();
                }
                State = next;
            }
            finally
            {
                _gate.Release();
            }
        }

        public async Task RenewAsync(CancellationTokenSource lost)
        {
            try
            {
                if (!State.IsFinished && State.LeaseOwner is not null)
                {
                    await SaveAsync(s => s, CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (LeaseLostException)
            {
                await lost.CancelAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is StoreException)
            {
                // The store is away: the next renewal tries again (the lease may run out meanwhile; a take-over is safe).
            }
        }
    }
}
