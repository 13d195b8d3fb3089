// The swarm scenario of issue 20 with ioredis against Engram's RESP endpoint: 16 agents at once
// SET their state with EX, GET it back, INCR a shared counter (the sum must be exact), then the
// cleanup SCANs by pattern and DELs. Usage: node resp-swarm.mjs <port> [password]
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
}));

const total = Number(await clients[0].get("swarm:counter:total"));
check(total === agents * incrsPerAgent, `counter ${total}, expected ${agents * incrsPerAgent}`);
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
console.log(JSON.stringify({ ok: failures.length === 0, total, scanned: found.length, deleted, failures: failures.slice(0, 20) }));
process.exit(failures.length === 0 ? 0 : 1);
