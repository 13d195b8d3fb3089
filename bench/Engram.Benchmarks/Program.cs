using BenchmarkDotNet.Running;
using Engram.Benchmarks.KeyValue;
using Engram.Benchmarks.Metadata;
using Engram.Benchmarks.Retrieval;
using Engram.Benchmarks.Store;

// `store` is the throughput harness (concurrency, fsync, HTTP: not micro-benchmark material);
// `lexical` and `e2e` measure retrieval (BM25 vs FTS5; ingest, search latency, RAM, cold start);
// `metadata` times listings filtered by a metadata key (the storage form of metadata);
// `kv` compares key-value SET/GET with redis-server (in process, over HTTP, 1/8/32 clients);
// `auth` times a GET with and without an API key (the gate's cost per request);
// `mcp` times `engram mcp` start-up to a completed initialize (stdio, 100k memories) and tool calls over stdio and HTTP;
// `soak` runs steady traffic against an in-process server and prints the working set over time (issue 14);
// `backup` times backup, verify and restore of a 100k-memory store (and the restored store's index rebuild);
// `embed` measures the transformer embedder (sentences/s, RSS, query latency under a document batch);
// `export` times export and import of 100k memories (issue 14);
// `instances` measures write-to-searchable latency from one instance to another on one PostgreSQL database (issue 15);
// `llm-chat` measures what chat with memory adds to a fake model's fixed 300 ms at 100k memories (issue 16);
// `backends` puts SQLite and PostgreSQL side by side: ingest, search at 100k, write-to-searchable across instances (issue 15);
// `llm-extract` times an add with infer (queued) and extraction jobs per second against a fake model at 300 ms a call (issue 16);
// `mem0` times search through the mem0-compatible API next to /v1/search on the same corpus (issue 17);
// `telegram` times bot commands through a fake Telegram Bot API: update queued to reply received (issue 19);
// `resp` runs redis-benchmark against Engram's RESP endpoint and redis-server side by side, -P 1 and -P 16 (issue 20);
// `resp-keyspace` times DBSIZE, INFO keyspace, SCAN to the end and KEYS * at 100,000 keys, and MSET/MGET/EXISTS/DEL of
// 100,000 keys in one command, on both (issue 20);
// `kv-filter` times a build of the key-value key filter at 1,000,000 keys (its scan of the tables and the filter made);
// `alerts` measures the alert detection delay after a fault and the memory-event webhook delay (issue 19);
// anything else goes to BenchmarkDotNet's switcher for the micro-benchmarks.
switch (args.Length > 0 ? args[0] : null)
{
    case "store":
        return await StoreBenchmark.RunAsync(args[1..]);
    case "lexical":
        return LexicalBenchmark.Run(args[1..]);
    case "lexical-tail":
        return LexicalTail.Run(args[1..]);
    case "e2e":
        return await E2eBenchmark.RunAsync(args[1..]);
    case "e2e-vectors":
        return await E2eVectorBenchmark.RunAsync(args[1..]);
    case "kv":
        return await KvBenchmark.RunAsync(args[1..]);
    case "auth":
        return await Engram.Benchmarks.Security.AuthCostBenchmark.RunAsync(args[1..]);
    case "mcp":
        return await Engram.Benchmarks.Mcp.McpBenchmark.RunAsync(args[1..]);
    case "embed":
        return await Engram.Benchmarks.Embeddings.EmbedBenchmark.RunAsync(args[1..]);
    case "backup":
        return await Engram.Benchmarks.Operations.BackupBenchmark.RunAsync(args[1..]);
    case "export":
        return await Engram.Benchmarks.Operations.ExportBenchmark.RunAsync(args[1..]);
    case "metadata":
        return await MetadataFilterBenchmark.RunAsync(args[1..]);
    case "instances":
        return await Engram.Benchmarks.Instances.InstancesBench.RunAsync(args[1..]);
    case "soak":
        return await Engram.Benchmarks.Operations.SoakBenchmark.RunAsync(args[1..]);
    case "backends":
        return await Engram.Benchmarks.Backends.BackendsBenchmark.RunAsync(args[1..]);
    case "llm-extract":
        return await Engram.Benchmarks.Llm.ExtractionBenchmark.RunAsync(args[1..]);
    case "llm-chat":
        return await Engram.Benchmarks.Llm.ChatBenchmark.RunAsync(args[1..]);
    case "resp":
        return await RespBenchmark.RunAsync(args[1..]);
    case "resp-keyspace":
        return await RespKeyspaceBenchmark.RunAsync(args[1..]);
    case "kv-filter":
        return await KvKeyFilterBenchmark.RunAsync(args[1..]);
    case "alerts":
        return await Engram.Benchmarks.Operations.AlertsBenchmark.RunAsync(args[1..]);
    case "mem0":
        return await Engram.Benchmarks.Mem0.Mem0Benchmark.RunAsync(args[1..]);
    case "telegram":
        return await Engram.Benchmarks.Telegram.TelegramBenchmark.RunAsync(args[1..]);
    case "ui":
        return await Engram.Benchmarks.Ui.UiBenchmark.RunAsync(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(StoreBenchmark).Assembly).Run(args);
return 0;
