// The swarm scenario of issue 20 with node-redis (the npm `redis` package) against Engram's RESP endpoint, in RESP2 or
// RESP3: 16 agents, each on its own client, SET their state with EX, GET it back (text and raw bytes), INCR a shared
// counter concurrently (node-redis pipelines concurrent commands on a connection; the sum must be exact), update a
// shared board with WATCH/MULTI/EXEC (retried on WatchError: no update lost), run a Lua script through defineScript
// (EVALSHA, EVAL on NOSCRIPT), then the cleanup walks scanIterator by pattern and DELs what it found.
// Usage: node resp-node-redis.mjs <port> <2|3> [password]. Prints one JSON summary on stdout; exits 1 when anything did not hold.
import { createClient, defineScript, RESP_TYPES, WatchError } from "node-redis"; // the npm `redis` package (package.json aliases it: mem0ai has an optional peer dependency on redis 4)

const port = Number(process.argv[2]);
const resp = Number(process.argv[3] ?? 2);
const password = process.argv[4];
const agents = 16;
const keysPerAgent = 25;
const incrsPerAgent = 50;
const prefix = `nr${resp}-${process.pid}`;
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };

// The usual "add and return" script, registered with the client: node-redis sends EVALSHA and falls back to EVAL.
const addScore = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: "return redis.call('INCRBY', KEYS[1], ARGV[1])",
  parseCommand: (parser, key, by) => { parser.pushKey(key); parser.push(String(by)); },
  transformReply: reply => reply,
});

const connect = () => createClient({
  url: `redis://127.0.0.1:${port}`,
  password,
  RESP: resp,
  scripts: { addScore },
  socket: { reconnectStrategy: false },
});
const clients = Array.from({ length: agents }, connect);
for (const c of clients) c.on("error", e => failures.push(`client error: ${e.message}`));
await Promise.all(clients.map(c => c.connect()));

if (resp === 3) {
  const hello = await clients[0].hello();
  check(hello.proto === 3, `HELLO proto: ${JSON.stringify(hello)}`);
}

const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
await Promise.all(clients.map(async (redis, a) => {
  await redis.set(`${prefix}:agent:a${a}`, JSON.stringify({ agent: a, status: "running" }), { expiration: { type: "EX", value: 120 } });
  for (let k = 0; k < keysPerAgent; k++) {
    check((await redis.set(`${prefix}:state:a${a}-k${k}`, `state ${a}/${k} ✓`, { expiration: { type: "EX", value: 60 } })) === "OK", `set a${a}-k${k}`);
  }
  const values = await Promise.all(Array.from({ length: keysPerAgent }, (_, k) => redis.get(`${prefix}:state:a${a}-k${k}`)));
  values.forEach((value, k) => check(value === `state ${a}/${k} ✓`, `get a${a}-k${k}: ${value}`));
  const ttl = await redis.ttl(`${prefix}:state:a${a}-k0`);
  check(ttl > 0 && ttl <= 60, `ttl a${a}: ${ttl}`);

  // Raw bytes in, the same bytes out.
  await redis.set(`${prefix}:blob:a${a}`, bytes);
  const back = await redis.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).get(`${prefix}:blob:a${a}`);
  check(Buffer.isBuffer(back) && back.equals(bytes), `bytes a${a}: ${back?.length}`);

  // Concurrent INCRs on one connection: node-redis writes them out together.
  const counts = await Promise.all(Array.from({ length: incrsPerAgent }, () => redis.incr(`${prefix}:counter`)));
  check(counts.every(n => Number.isInteger(n) && n >= 1), `incr replies a${a}`);
  check((await redis.addScore(`${prefix}:score`, 2)) > 0, `script a${a}`);

  // WATCH/MULTI/EXEC: an optimistic update of a shared board, retried when another agent wrote it first.
  for (let attempt = 0; ; attempt++) {
    check(attempt < 1000, `board: a${a} never committed`);
    if (attempt >= 1000) break;
    await redis.watch(`${prefix}:board`);
    const board = JSON.parse((await redis.get(`${prefix}:board`)) ?? "[]");
    board.push(a);
    try {
      const done = await redis.multi().set(`${prefix}:board`, JSON.stringify(board)).exec();
      if (done !== null) break;
    } catch (e) {
      if (!(e instanceof WatchError)) throw e;
    }
  }
}));

const redis = clients[0];
const total = Number(await redis.get(`${prefix}:counter`));
const score = Number(await redis.get(`${prefix}:score`));
const board = JSON.parse(await redis.get(`${prefix}:board`));

// Cleanup: SCAN by pattern, DEL in batches, as a swarm's reaper does.
let deleted = 0;
for await (const keys of redis.scanIterator({ MATCH: `${prefix}:state:*`, COUNT: 100 })) {
  if (keys.length > 0) deleted += await redis.del(keys);
}
let left = 0;
for await (const keys of redis.scanIterator({ MATCH: `${prefix}:state:*` })) left += keys.length;

await Promise.all(clients.map(c => c.close()));
const summary = { ok: failures.length === 0, resp, total, score, board: board.length, boardDistinct: new Set(board).size, deleted, left, failures: failures.slice(0, 20) };
console.log(JSON.stringify(summary));
process.exit(summary.ok ? 0 : 1);
