// The swarm scenario of issue 20 with ioredis against Engram's RESP endpoint: 16 agents at once
// SET their state with EX, GET it back, INCR a shared counter (the sum must be exact), claim in a
// MULTI/EXEC and add themselves to a shared board with WATCH (no update lost), then the
// cleanup SCANs by pattern and DELs; a lease (SET NX PX, released by a Lua script through
// ioredis's defineCommand: EVALSHA, then EVAL on NOSCRIPT) guards a read-modify-write. Usage: node resp-swarm.mjs <port> [password]
// Prints one JSON summary on stdout; exits 1 when anything did not hold.
import Redis from "ioredis";

const port = Number(process.argv[2]);
const password = process.argv[3];
const agents = 16;
const keysPerAgent = 25;
const incrsPerAgent = 50;
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };

const connect = () => new Redis({ host: "127.0.0.1", port, password, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
const clients = Array.from({ length: agents }, connect);
// Compare-and-delete: only the holder's token releases the lease (the usual Redis lock release).
const releaseLua = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
for (const c of clients) c.defineCommand("releaseLease", { numberOfKeys: 1, lua: releaseLua });
await Promise.all(clients.map(c => c.connect()));

const started = Date.now();
await Promise.all(clients.map(async (redis, a) => {
  await redis.set(`swarm:agent:a${a}`, JSON.stringify({ agent: a, status: "running" }), "EX", 120);
  for (let k = 0; k < keysPerAgent; k++) {
    check((await redis.set(`swarm:state:a${a}-k${k}`, `state ${a}/${k} ✓`, "EX", 60)) === "OK", `set a${a}-k${k}`);
  }
  for (let k = 0; k < keysPerAgent; k++) {
    const value = await redis.get(`swarm:state:a${a}-k${k}`);
    check(value === `state ${a}/${k} ✓`, `get a${a}-k${k}: ${value}`);
  }
  const pipeline = redis.pipeline();
  for (let i = 0; i < incrsPerAgent; i++) pipeline.incr("swarm:counter:total");
  const results = await pipeline.exec();
  check(results.every(([error]) => error === null), `incr errors for a${a}`);

  // MULTI/EXEC: the agent's claim and the claims counter in one transaction.
  const claim = await redis.multi().set(`swarm:claim:a${a}`, "taken", "EX", 60).incr("swarm:claims").get(`swarm:claim:a${a}`).exec();
  check(Array.isArray(claim) && claim.every(([error]) => error === null) && claim[0][1] === "OK" && claim[2][1] === "taken",
    `multi a${a}: ${JSON.stringify(claim)}`);
  // WATCH/MULTI/EXEC: an optimistic update of a shared task board, retried when another agent wrote it first.
  for (let attempt = 0; attempt < 1000; attempt++) {
    await redis.watch("swarm:board");
    const board = JSON.parse((await redis.get("swarm:board")) ?? "[]");
    board.push(a);
    if ((await redis.multi().set("swarm:board", JSON.stringify(board)).exec()) !== null) break;
    check(attempt < 999, `board: a${a} never committed`);
  }

  // A lease around a GET-then-SET that is only safe under it; a wrong token does not release it.
  const token = `agent-${a}-${Math.random()}`;
  for (let attempt = 0; ; attempt++) {
    if ((await redis.set("swarm:lease", token, "PX", 10000, "NX")) === "OK") break;
    check(attempt < 5000, `lease: a${a} never got it`);
    if (attempt >= 5000) return;
    await new Promise(r => setTimeout(r, 2));
  }
  check((await redis.releaseLease("swarm:lease", "not-the-token")) === 0, `a${a}: a wrong token released the lease`);
  const count = Number((await redis.get("swarm:leased")) ?? "0");
  await redis.set("swarm:leased", String(count + 1));
  check((await redis.releaseLease("swarm:lease", token)) === 1, `a${a}: its own token did not release the lease`);
}));

const total = Number(await clients[0].get("swarm:counter:total"));
const board = JSON.parse(await clients[0].get("swarm:board"));
check(board.length === agents && new Set(board).size === agents, `board ${JSON.stringify(board)}: an update was lost`);
check(Number(await clients[0].get("swarm:claims")) === agents, "claims counter");
check(total === agents * incrsPerAgent, `counter ${total}, expected ${agents * incrsPerAgent}`);
const leased = Number(await clients[0].get("swarm:leased"));
check(leased === agents, `leased ${leased}: the lease let two agents in at once`);
// Set with EX 60 at most `elapsed` seconds ago (a slow store or a busy machine makes the run longer, not the TTL wrong).
const elapsed = Math.ceil((Date.now() - started) / 1000);
const ttl = await clients[1].ttl("swarm:state:a3-k4");
check(ttl >= 59 - elapsed && ttl <= 60, `ttl ${ttl} after ${elapsed} s`);
const agent = JSON.parse(await clients[2].get("swarm:agent:a7"));
check(agent.agent === 7 && agent.status === "running", `agent a7 ${JSON.stringify(agent)}`);

// Cleanup: SCAN by pattern (several pages), DEL what it found.
const found = [];
await new Promise((resolve, reject) => {
  const stream = clients[0].scanStream({ match: "swarm:state:*", count: 100 });
  stream.on("data", keys => found.push(...keys));
  stream.on("end", resolve);
  stream.on("error", reject);
});
check(new Set(found).size === agents * keysPerAgent, `scan found ${new Set(found).size} keys`);
let deleted = 0;
for (let i = 0; i < found.length; i += 100) deleted += await clients[0].del(...found.slice(i, i + 100));
check(deleted === agents * keysPerAgent, `deleted ${deleted}`);
const [, rest] = await clients[0].scan("0", "MATCH", "swarm:state:*", "COUNT", 1000);
check(rest.length === 0, `${rest.length} keys left after cleanup`);
check((await clients[0].exists("swarm:agent:a0")) === 1, "agent key deleted by the state cleanup");

await Promise.all(clients.map(c => c.quit()));
console.log(JSON.stringify({ ok: failures.length === 0, total, board: board.length, leased, scanned: found.length, deleted, failures: failures.slice(0, 20) }));
process.exit(failures.length === 0 ? 0 : 1);
