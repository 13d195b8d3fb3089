#!/usr/bin/env node
// Drives a real Engram through the official MCP TypeScript SDK client (@modelcontextprotocol/sdk) and runs
// the scenario files in tests/node/scenarios (format: tests/node/README.md). Prints one JSON summary on
// stdout; failures (and the server's stderr, over stdio) go to stderr too. Exit 0 when every step passed and
// every listed tool has an "ok" and an "error" step, 1 when a check failed, 2 when the run itself could not
// happen (bad arguments, unreadable scenario file, no connection).
//
//   node run-scenarios.mjs --engram path/to/engram.dll [--data-root DIR]         stdio: dotnet engram.dll mcp --data <fresh dir>
//   node run-scenarios.mjs --stdio -- CMD ARG... ({data} and {tenant} are replaced per file)
//   node run-scenarios.mjs --url http://127.0.0.1:7070/mcp [--key KEY (default $ENGRAM_API_KEY)] [--fresh tenant|none]
//
// Each scenario file runs on its own connection against an empty store: over stdio a new process (with a new
// data folder where the command line says {data}); over HTTP a new tenant per file (X-Engram-Tenant, which an
// open server or an admin key accepts), unless --fresh none.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const here = dirname(fileURLToPath(import.meta.url));
const STDERR_TAIL = 16_000;

class UsageError extends Error {}

function parseArgs(argv) {
  const options = { scenarios: join(here, "scenarios"), timeoutMs: 30_000, env: {}, files: [], fresh: "tenant" };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "--engram": options.engram = value(); break;
      case "--data-root": options.dataRoot = value(); break;
      case "--url": options.url = value(); break;
      case "--key": options.key = value(); break;
      case "--fresh": options.fresh = value(); break;
      case "--scenarios": options.scenarios = value(); break;
      case "--file": options.files.push(value()); break;
      case "--timeout-ms": options.timeoutMs = Number(value()); break;
      case "--env": {
        const pair = value();
        const at = pair.indexOf("=");
        if (at <= 0) throw new UsageError(`--env needs NAME=VALUE (got '${pair}')`);
        options.env[pair.slice(0, at)] = pair.slice(at + 1);
        break;
      }
      case "--stdio": {
        const rest = argv.slice(i + 1);
        options.command = rest[0] === "--" ? rest.slice(1) : rest;
        i = argv.length;
        break;
      }
      default: throw new UsageError(`unknown argument '${arg}'`);
    }
  }
  const modes = [options.engram, options.url, options.command].filter((m) => m !== undefined).length;
  if (modes !== 1) throw new UsageError("give exactly one of --engram DLL, --url URL or --stdio -- CMD ARG...");
  if (options.command && options.command.length === 0) throw new UsageError("--stdio needs a command line after it");
  if (!(options.timeoutMs > 0)) throw new UsageError("--timeout-ms must be a positive number");
  if (!["tenant", "none"].includes(options.fresh)) throw new UsageError("--fresh must be tenant or none");
  // Over HTTP the key may come from the environment, as for the engram CLI (a flag shows in the process list).
  if (options.url && options.key === undefined && process.env.ENGRAM_API_KEY) options.key = process.env.ENGRAM_API_KEY;
  if (options.engram) options.command = ["dotnet", resolve(options.engram), "mcp", "--data", "{data}"];
  return options;
}

/** The scenario files, in name order, each parsed and checked for shape before anything runs. */
function loadScenarios(options) {
  const paths = options.files.length > 0
    ? options.files.map((f) => resolve(f))
    : readdirSync(options.scenarios).filter((f) => f.endsWith(".json")).sort().map((f) => join(options.scenarios, f));
  if (paths.length === 0) throw new UsageError(`no scenario files in ${options.scenarios}`);
  return paths.map((path) => {
    let steps;
    try {
      steps = JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      throw new UsageError(`${path}: ${error.message}`);
    }
    if (!Array.isArray(steps)) throw new UsageError(`${path}: a scenario file is a JSON array of steps`);
    steps.forEach((step, index) => {
      const where = `${basename(path)} step ${index + 1}`;
      if (typeof step !== "object" || step === null || Array.isArray(step)) throw new UsageError(`${where}: a step is an object`);
      if (typeof step.tool !== "string" || step.tool.length === 0) throw new UsageError(`${where}: "tool" must name a tool`);
      if (step.expect !== "ok" && step.expect !== "error") throw new UsageError(`${where}: "expect" must be "ok" or "error"`);
      if (step.args !== undefined && (typeof step.args !== "object" || step.args === null || Array.isArray(step.args))) {
        throw new UsageError(`${where}: "args" must be an object`);
      }
      if (step.contains !== undefined && !(Array.isArray(step.contains) && step.contains.every((c) => typeof c === "string"))) {
        throw new UsageError(`${where}: "contains" must be an array of strings`);
      }
      if (step.save !== undefined && (typeof step.save !== "object" || step.save === null
        || !Object.values(step.save).every((p) => typeof p === "string"))) {
        throw new UsageError(`${where}: "save" maps names to paths in structuredContent, e.g. {"memId": "id"}`);
      }
    });
    return { path, name: basename(path), steps };
  });
}

/** Replaces "${name}" in every string of value, at any depth; a string that is exactly "${name}" takes the saved value as it is. */
function substitute(value, saved) {
  if (typeof value === "string") {
    const whole = /^\$\{([A-Za-z0-9_.-]+)\}$/.exec(value);
    if (whole) return lookup(whole[1], saved);
    return value.replace(/\$\{([A-Za-z0-9_.-]+)\}/g, (_, name) => {
      const found = lookup(name, saved);
      return typeof found === "string" ? found : JSON.stringify(found);
    });
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, saved));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, saved)]));
  }
  return value;
}

function lookup(name, saved) {
  if (!Object.hasOwn(saved, name)) throw new StepFailure(`\${${name}} was not saved by an earlier step`);
  return saved[name];
}

/** Follows a dotted path ("id", "results.0.id") into structuredContent. */
function pick(object, path) {
  let current = object;
  for (const part of path.split(".")) {
    if (current === null || typeof current !== "object" || !Object.hasOwn(current, part)) return undefined;
    current = current[part];
  }
  return current;
}

class StepFailure extends Error {}

function textOf(result) {
  return (result.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
}

/** Checks one tool result against its step; throws StepFailure with the reason. */
function check(step, result, saved) {
  const text = textOf(result);
  if (step.expect === "ok") {
    if (result.isError === true) throw new StepFailure(`expected ok, got a tool error: ${text}`);
    if (result.structuredContent === undefined || result.structuredContent === null) {
      throw new StepFailure(`no structuredContent in the result (text: ${text.slice(0, 300)})`);
    }
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new StepFailure(`the text content is not JSON: ${text.slice(0, 300)}`);
    }
    if (!isDeepStrictEqual(parsed, result.structuredContent)) {
      throw new StepFailure(`structuredContent differs from JSON.parse(text): ${JSON.stringify(result.structuredContent).slice(0, 300)} vs ${text.slice(0, 300)}`);
    }
  } else {
    if (result.isError !== true) throw new StepFailure(`expected a tool error, got ok: ${text.slice(0, 300)}`);
    if (text.trim().length === 0) throw new StepFailure("the tool error has no message");
  }
  for (const wanted of step.contains ?? []) {
    const expanded = substitute(wanted, saved);
    if (!text.includes(expanded)) throw new StepFailure(`the result text does not contain '${expanded}': ${text.slice(0, 500)}`);
  }
  for (const [name, path] of Object.entries(step.save ?? {})) {
    const value = pick(result.structuredContent, path);
    if (value === undefined) throw new StepFailure(`cannot save ${name}: structuredContent has no '${path}'`);
    saved[name] = value;
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A transport to a fresh store for one scenario file, and what to clean up after. */
function openTransport(options, fileName) {
  const tenant = `scn-${fileName.replace(/\.json$/, "").replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 30)}-${process.pid}-${Date.now().toString(36)}`;
  if (options.url) {
    const headers = {};
    if (options.key) headers.Authorization = `Bearer ${options.key}`;
    if (options.fresh === "tenant") headers["X-Engram-Tenant"] = tenant;
    const transport = new StreamableHTTPClientTransport(new URL(options.url), { requestInit: { headers } });
    return { transport, describe: `${options.url} (tenant ${options.fresh === "tenant" ? tenant : "of the key"})`, stderr: () => "", cleanup: () => {} };
  }
  let dataDir;
  const args = options.command.slice(1).map((arg) => {
    if (arg.includes("{data}")) {
      dataDir ??= mkdtempSync(join(options.dataRoot ?? tmpdir(), "engram-scenario-"));
      return arg.replaceAll("{data}", dataDir);
    }
    return arg.replaceAll("{tenant}", tenant);
  });
  const env = { ...process.env, ...options.env };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  const transport = new StdioClientTransport({ command: options.command[0], args, env, stderr: "pipe" });
  let stderr = "";
  transport.stderr?.on("data", (chunk) => {
    stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL);
  });
  return {
    transport,
    describe: [options.command[0], ...args].join(" "),
    stderr: () => stderr,
    cleanup: () => {
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Lists everything the server offers; a capability it does not declare is an empty list, not an error. */
async function listAll(client, timeoutMs) {
  const capabilities = client.getServerCapabilities() ?? {};
  const all = async (method, key) => {
    const items = [];
    let cursor;
    do {
      const page = await withTimeout(method({ cursor }), timeoutMs, key);
      items.push(...page[key]);
      cursor = page.nextCursor;
    } while (cursor);
    return items;
  };
  const call = (name) => (params) => client[name](params.cursor ? params : undefined, { timeout: timeoutMs });
  return {
    tools: capabilities.tools ? await all(call("listTools"), "tools") : [],
    resources: capabilities.resources ? await all(call("listResources"), "resources") : [],
    resourceTemplates: capabilities.resources ? await all(call("listResourceTemplates"), "resourceTemplates") : [],
    prompts: capabilities.prompts ? await all(call("listPrompts"), "prompts") : [],
  };
}

function message(error) {
  return error instanceof Error ? error.message : String(error);
}

async function runFile(options, scenario, report) {
  const opened = openTransport(options, scenario.name);
  const fileReport = { file: scenario.name, target: opened.describe, steps: scenario.steps.length, passed: 0 };
  report.files.push(fileReport);
  const client = new Client({ name: "engram-scenarios", version: "1.0.0" });
  const failedBefore = report.failed.length;
  const fail = (failure) => report.failed.push({ file: scenario.name, ...failure });
  try {
    try {
      await withTimeout(client.connect(opened.transport, { timeout: options.timeoutMs }), options.timeoutMs, "connect and initialize");
    } catch (error) {
      fail({ step: 0, tool: null, reason: `cannot connect to ${opened.describe}: ${message(error)}` });
      return;
    }
    let listed;
    try {
      listed = await listAll(client, options.timeoutMs);
    } catch (error) {
      fail({ step: 0, tool: null, reason: `listing the tools, resources and prompts failed: ${message(error)}` });
      return;
    }
    report.server ??= { ...client.getServerVersion(), instructions: client.getInstructions() ?? null };
    report.tools ??= listed.tools.map((t) => t.name);
    report.resources ??= listed.resources.map((r) => r.uri);
    report.resourceTemplates ??= listed.resourceTemplates.map((r) => r.uriTemplate);
    report.prompts ??= listed.prompts.map((p) => p.name);
    if (report.resourceReads === undefined) {
      // Every fixed resource the server lists must be readable (on the empty store of this first file).
      report.resourceReads = [];
      for (const resource of listed.resources) {
        try {
          const read = await client.readResource({ uri: resource.uri }, { timeout: options.timeoutMs });
          if (!Array.isArray(read.contents) || read.contents.length === 0) throw new Error("no contents");
          report.resourceReads.push({ uri: resource.uri, ok: true });
        } catch (error) {
          report.resourceReads.push({ uri: resource.uri, ok: false });
          fail({ step: 0, tool: null, resource: resource.uri, reason: `reading the resource failed: ${message(error)}` });
        }
      }
    }
    const toolNames = new Set(listed.tools.map((t) => t.name));
    const saved = {};
    for (const [index, step] of scenario.steps.entries()) {
      const where = { step: index + 1, tool: step.tool, expect: step.expect };
      report.stepsRun++;
      if (!toolNames.has(step.tool)) {
        fail({ ...where, reason: `the server does not list the tool ${step.tool}` });
        continue;
      }
      let args;
      try {
        args = substitute(step.args ?? {}, saved);
      } catch (error) {
        fail({ ...where, reason: message(error) });
        continue;
      }
      let result;
      try {
        // The SDK also checks structuredContent against the tool's output schema here.
        result = await withTimeout(client.callTool({ name: step.tool, arguments: args }, undefined, { timeout: options.timeoutMs }),
          options.timeoutMs + 1000, `${step.tool}`);
      } catch (error) {
        fail({ ...where, args, reason: `protocol-level failure: ${message(error)}` });
        continue;
      }
      try {
        check(step, result, saved);
      } catch (error) {
        if (!(error instanceof StepFailure)) throw error;
        fail({ ...where, args, reason: error.message });
        continue;
      }
      const outcomes = report.coverage[step.tool] ??= { ok: 0, error: 0 };
      outcomes[step.expect]++;
      fileReport.passed++;
    }
  } finally {
    await client.close().catch(() => {});
    opened.cleanup();
    // The server's own account of a failure (over stdio) belongs next to it.
    if (report.failed.length > failedBefore && opened.stderr()) fileReport.serverStderr = opened.stderr();
  }
}

function printFailures(report) {
  for (const f of report.failed) {
    const where = f.step > 0 ? `${f.file} step ${f.step} (${f.tool}, expect ${f.expect})` : f.file;
    process.stderr.write(`FAILED ${where}: ${f.reason}\n`);
    if (f.args !== undefined) process.stderr.write(`  args: ${JSON.stringify(f.args)}\n`);
  }
  for (const file of report.files) {
    if (file.serverStderr) process.stderr.write(`--- server stderr (${file.file}) ---\n${file.serverStderr}\n`);
  }
  for (const c of report.coverageGaps) process.stderr.write(`COVERAGE ${c}\n`);
}

async function main() {
  let options;
  let scenarios;
  try {
    options = parseArgs(process.argv.slice(2));
    scenarios = loadScenarios(options);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`run-scenarios: ${error.message}\n`);
    return 2;
  }
  const report = {
    ok: false,
    transport: options.url ? "streamable-http" : "stdio",
    files: [],
    stepsRun: 0,
    failed: [],
    coverage: {},
    coverageGaps: [],
  };
  for (const scenario of scenarios) {
    await runFile(options, scenario, report);
  }
  const connected = report.tools !== undefined;
  for (const tool of report.tools ?? []) {
    const outcomes = report.coverage[tool] ?? { ok: 0, error: 0 };
    if (outcomes.ok === 0) report.coverageGaps.push(`${tool} has no passing "ok" step`);
    if (outcomes.error === 0) report.coverageGaps.push(`${tool} has no passing "error" step`);
  }
  report.ok = connected && report.failed.length === 0 && report.coverageGaps.length === 0;
  printFailures(report);
  process.stderr.write(`${report.ok ? "PASSED" : "FAILED"}: ${report.stepsRun} steps in ${report.files.length} files, ` +
    `${report.failed.length} failed, ${report.coverageGaps.length} coverage gaps (${report.transport})\n`);
  await new Promise((done) => process.stdout.write(JSON.stringify(report, null, 2) + "\n", done));
  return !connected ? 2 : report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`run-scenarios: ${error?.stack ?? error}\n`);
    process.exit(2);
  },
);
