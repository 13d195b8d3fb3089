// Drives the official mem0 npm client against Engram's mem0-compatible API and checks every result.
//   node mem0-client.mjs --url http://127.0.0.1:7070 --key egm_… [--client current|v1]
// current: mem0ai 3.x (/v3/memories/…); v1: the last 2.x release (mem0ai-v1, the /v1 and /v2 paths).
// Prints {"ok", "client", "version", "methods": {name: "pass" | "fail: reason"}} on stdout; exit 0 when every method passed.
import { readFileSync } from "node:fs";

process.env.MEM0_TELEMETRY = "false";
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf("--" + name);
  return i >= 0 ? args[i + 1] : fallback;
};
const url = arg("url");
const key = arg("key", process.env.ENGRAM_API_KEY);
const flavour = arg("client", "current");
const pkg = flavour === "v1" ? "mem0ai-v1" : "mem0ai";
const { default: MemoryClient } = await import(pkg);
const version = JSON.parse(readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url), "utf8")).version;

const methods = Object.create(null);
const run = Date.now().toString(36);
const alice = `alice-${run}`;
const bob = `bob-${run}`;
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function step(name, fn) {
  try {
    await fn();
    methods[name] = methods[name]?.startsWith("fail") ? methods[name] : "pass";
  } catch (error) {
    methods[name] = "fail: " + (error?.stack || String(error)).slice(0, 600);
  }
}

async function rejects(promise, status, what) {
  try {
    await promise;
  } catch (error) {
    const text = `${error?.message ?? ""} ${error?.errorCode ?? ""} ${error?.code ?? ""} ${error?.response?.status ?? ""}`;
    check(text.includes(String(status)) || text.includes("detail"), `${what}: expected HTTP ${status}, got ${text}`);
    return error;
  }
  throw new Error(`${what}: expected HTTP ${status}, but the call succeeded`);
}

const current = flavour !== "v1";
// 3.x converts option keys to snake_case and answers in camelCase; 2.x sends and answers as written.
const f = (snake, camel) => (current ? camel : snake);
const field = (obj, snake) => obj[snake] ?? obj[snake.replace(/_([a-z])/g, (_, c) => c.toUpperCase())];
const resultsOf = (r) => (Array.isArray(r) ? r : r.results);

let client;
const ids = {};

await step("constructor", async () => {
  client = new MemoryClient({ apiKey: key, host: url });
  check(client.host === url, "host kept");
});

await step("ping", async () => {
  await client.ping();
  check(client.organizationId === "default" || client.organizationId === undefined || client.organizationId === null || typeof client.organizationId === "string", "org id");
  const bad = new MemoryClient({ apiKey: "egm_not_a_key", host: url });
  await rejects(bad.ping(), 401, "ping with a bad key");
});

await step("add", async () => {
  const scope = current
    ? { userId: alice, agentId: "coach", appId: "fitness", runId: "run-1" }
    : { user_id: alice, agent_id: "coach", app_id: "fitness", run_id: "run-1" };
  const r = await client.add(
    [
      { role: "user", content: `I love hiking in the Alps ${run}` },
      { role: "assistant", content: `Hiking is a great hobby ${run}` },
    ],
    { ...scope, metadata: { topic: "sport", level: 3 }, infer: false, org_id: "ignored", enable_graph: false },
  );
  const results = resultsOf(r);
  check(results.length === 2, `infer=false stores both messages: ${JSON.stringify(r)}`);
  check(results.every((m) => uuid.test(m.id) && m.event === "ADD"), `ids are UUIDs, event ADD: ${JSON.stringify(results)}`);
  check(field(results[0], "user_id") === alice && field(results[0], "run_id") === "run-1" && field(results[0], "app_id") === "fitness", `mapping kept: ${JSON.stringify(results[0])}`);
  ids.alps = results[0].id;
  ids.assistant = results[1].id;
  const tea = resultsOf(await client.add([{ role: "user", content: `I prefer green tea over coffee ${run}` }],
    { [f("user_id", "userId")]: alice, metadata: { topic: "food", level: 1 }, infer: false }));
  ids.tea = tea[0].id;
  const chess = resultsOf(await client.add(`Bob likes chess and hiking ${run}`, { [f("user_id", "userId")]: bob, metadata: { topic: "games", level: 2 }, infer: false }));
  ids.chess = chess[0].id;
  // infer defaults to true: with no model configured each user message is stored verbatim and the answer says so.
  const inferred = await client.add(
    [{ role: "user", content: `My dog is called Rex ${run}` }, { role: "assistant", content: `Rex is a fine name ${run}` }],
    { [f("user_id", "userId")]: alice },
  );
  check(resultsOf(inferred).length === 1 && resultsOf(inferred)[0].memory === `My dog is called Rex ${run}`, `verbatim fallback: ${JSON.stringify(inferred)}`);
  check(/no inference ran/.test(inferred.message ?? ""), `the answer says no inference ran: ${JSON.stringify(inferred)}`);
  ids.rex = resultsOf(inferred)[0].id;
  await rejects(client.add([{ role: "user" }], { [f("user_id", "userId")]: alice, infer: false }), 400, "add without content");
});

const search = (query, options) => (current ? client.search(query, options) : client.search(query, { api_version: "v2", ...options }));

await step("search", async () => {
  const topK = f("top_k", "topK");
  let r = resultsOf(await search(`hiking Alps ${run}`, { filters: { AND: [{ user_id: alice }, { metadata: { topic: "sport" } }] }, [topK]: 5 }));
  check(r.length >= 1 && r[0].id === ids.alps, `AND filter finds the Alps: ${JSON.stringify(r)}`);
  check(typeof r[0].score === "number" && r[0].score > 0, "score");
  const breakdown = field(r[0], "score_breakdown");
  check(breakdown && typeof breakdown.semantic === "number" && typeof breakdown.keyword === "number", `score_breakdown: ${JSON.stringify(r[0])}`);
  check(r.every((m) => field(m, "user_id") === alice), "only alice");

  r = resultsOf(await search(`hiking ${run}`, { filters: { OR: [{ userId: alice }, { user_id: bob }] }, [topK]: 20 }));
  check(r.some((m) => m.id === ids.chess) && r.some((m) => m.id === ids.alps), `OR finds both users: ${JSON.stringify(r.map((m) => m.memory))}`);

  r = resultsOf(await search(`hiking ${run}`, { filters: { AND: [{ user_id: "*" }, { NOT: { user_id: bob } }, { OR: [{ user_id: alice }, { user_id: bob }] }] }, [topK]: 20 }));
  check(r.length > 0 && r.every((m) => field(m, "user_id") === alice), `NOT leaves bob out: ${JSON.stringify(r.map((m) => m.memory))}`);

  r = resultsOf(await search(`hiking tea chess ${run}`, { filters: { user_id: { in: [alice, bob] }, metadata: { level: { gte: 2 } } }, [topK]: 20 }));
  check(r.some((m) => m.id === ids.alps) && r.some((m) => m.id === ids.chess) && r.every((m) => m.metadata.level >= 2), `gte on metadata: ${JSON.stringify(r.map((m) => m.memory))}`);

  r = resultsOf(await search(`tea ${run}`, { filters: { user_id: alice, created_at: { gte: "2000-01-01T00:00:00Z", lt: "2999-01-01" } }, [topK]: 20 }));
  check(r.some((m) => m.id === ids.tea), "created_at range");

  if (!current) {
    // The 1.x/2.x default: /v1/memories/search/ with the ids beside the query.
    r = resultsOf(await client.search(`chess ${run}`, { user_id: bob }));
    check(r.length === 1 && r[0].id === ids.chess, `v1 search: ${JSON.stringify(r)}`);
  }
  await rejects(search(`x`, { filters: { user_id: { between: [1, 2] } } }), 400, "an unknown operator");
});

await step("getAll", async () => {
  const all = current
    ? await client.getAll({ filters: { user_id: alice }, page: 1, pageSize: 2 })
    : await client.getAll({ api_version: "v2", filters: { user_id: alice }, page: 1, page_size: 2 });
  check(all.count === 4 && all.results.length === 2 && all.next && all.previous === null, `page 1: ${JSON.stringify(all)}`);
  const second = current
    ? await client.getAll({ filters: { user_id: alice }, page: 2, pageSize: 2 })
    : await client.getAll({ api_version: "v2", filters: { user_id: alice }, page: 2, page_size: 2 });
  check(second.results.length === 2 && second.next === null && second.previous, `page 2: ${JSON.stringify(second)}`);
  const seen = new Set([...all.results, ...second.results].map((m) => m.id));
  check(seen.size === 4 && [ids.alps, ids.assistant, ids.tea, ids.rex].every((id) => seen.has(id)), "pages cover alice's memories once");
  if (!current) {
    const plain = await client.getAll({ user_id: bob });
    check(resultsOf(plain).length === 1 && resultsOf(plain)[0].id === ids.chess, `v1 GET list: ${JSON.stringify(plain)}`);
    const paged = await client.getAll({ user_id: alice, page: 1, page_size: 3 });
    check(paged.count === 4 && paged.results.length === 3, `v1 GET list paged: ${JSON.stringify(paged)}`);
  }
  const runs = current ? await client.getAll({ filters: { AND: [{ run_id: "run-1" }, { app_id: "fitness" }] } }) : await client.getAll({ api_version: "v2", filters: { AND: [{ run_id: "run-1" }, { app_id: "fitness" }] } });
  check(resultsOf(runs).length === 2, `run_id/app_id filters: ${JSON.stringify(runs)}`);
});

await step("get", async () => {
  const m = await client.get(ids.tea);
  check(m.id === ids.tea && m.memory === `I prefer green tea over coffee ${run}` && field(m, "user_id") === alice, `get: ${JSON.stringify(m)}`);
  check(m.metadata?.topic === "food", "metadata kept");
  await rejects(client.get("00000000-0000-0000-0000-000000000000"), 404, "get of a missing id");
});

await step("update", async () => {
  const m = await client.update(ids.alps, { text: `I love hiking in the Dolomites ${run}`, metadata: { topic: "sport", level: 4 } });
  check(m.memory === `I love hiking in the Dolomites ${run}`, `update answer: ${JSON.stringify(m)}`);
  const again = await client.get(ids.alps);
  check(again.memory === m.memory && again.metadata.level === 4, "update stored");
});

await step("history", async () => {
  const h = await client.history(ids.alps);
  check(Array.isArray(h) && h.length === 2, `history: ${JSON.stringify(h)}`);
  check(h[0].event === "ADD" && h[1].event === "UPDATE", "events");
  check(field(h[1], "old_memory") === `I love hiking in the Alps ${run}` && field(h[1], "new_memory") === `I love hiking in the Dolomites ${run}`, `old/new: ${JSON.stringify(h[1])}`);
  check(field(h[0], "memory_id") === ids.alps, "memory_id");
});

await step("users", async () => {
  const u = await client.users();
  const names = u.results.map((e) => `${e.type}:${e.name}`);
  check(names.includes(`user:${alice}`) && names.includes(`user:${bob}`) && names.includes("agent:coach") && names.includes("run:run-1") && names.includes("app:fitness"), `users: ${JSON.stringify(names)}`);
  const a = u.results.find((e) => e.type === "user" && e.name === alice);
  check(field(a, "total_memories") === 4, `alice has 4 memories: ${JSON.stringify(a)}`);
});

await step("batchUpdate", async () => {
  const r = await client.batchUpdate([{ memoryId: ids.tea, text: `I prefer black tea ${run}` }, { memoryId: ids.rex, text: `My dog Rex is five ${run}` }]);
  check(/2/.test(r.message), `batchUpdate: ${JSON.stringify(r)}`);
  check((await client.get(ids.tea)).memory === `I prefer black tea ${run}` && (await client.get(ids.rex)).memory === `My dog Rex is five ${run}`, "batch stored");
  await rejects(client.batchUpdate([{ memoryId: ids.tea, text: "no" }, { memoryId: "00000000-0000-0000-0000-000000000000", text: "no" }]), 404, "batch with a missing id");
  check((await client.get(ids.tea)).memory === `I prefer black tea ${run}`, "a refused batch changes nothing");
});

await step("batchDelete", async () => {
  const r = await client.batchDelete([ids.rex]);
  check(/1/.test(r.message), `batchDelete: ${JSON.stringify(r)}`);
  await rejects(client.get(ids.rex), 404, "batch-deleted memory");
});

await step("delete", async () => {
  const r = await client.delete(ids.assistant);
  check(/deleted/i.test(r.message), `delete: ${JSON.stringify(r)}`);
  await rejects(client.get(ids.assistant), 404, "deleted memory");
  await rejects(client.delete(ids.assistant), 404, "deleting twice");
});

await step("deleteAll", async () => {
  await rejects(client.deleteAll({}), 400, "deleteAll without a filter");
  const r = await client.deleteAll({ [f("user_id", "userId")]: bob });
  check(/deleted/i.test(r.message), `deleteAll: ${JSON.stringify(r)}`);
  await rejects(client.get(ids.chess), 404, "bob's memory");
  check((await client.get(ids.tea)).id === ids.tea, "alice's memories stay");
});

await step("deleteUsers", async () => {
  const r = await client.deleteUsers({ [f("user_id", "userId")]: alice });
  check(/deleted/i.test(r.message), `deleteUsers: ${JSON.stringify(r)}`);
  await rejects(client.get(ids.tea), 404, "alice's memory");
  const left = await client.users();
  check(!left.results.some((e) => e.name === alice || e.name === bob), `no users left: ${JSON.stringify(left)}`);
});

const ok = Object.values(methods).every((v) => v === "pass");
console.log(JSON.stringify({ ok, client: pkg, version, methods }, null, 1));
if (!ok) {
  for (const [name, result] of Object.entries(methods)) if (result !== "pass") console.error(`${name}: ${result}`);
}
process.exit(ok ? 0 : 1);
