// The official mem0 npm client's add with inference (the default) against Engram with a language model configured:
//   node mem0-infer.mjs --url http://127.0.0.1:7070 --key egm_… [--client current|v1]
// The add is queued (an extraction job); its event is polled until it succeeds; the model's fact is then found by
// getAll and search. Prints {"ok", "version", "event", "memories"} on stdout; exit 0 when every check passed.
import { readFileSync } from "node:fs";

process.env.MEM0_TELEMETRY = "false";
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf("--" + name);
  return i >= 0 ? args[i + 1] : fallback;
};
const url = arg("url");
const key = arg("key");
const flavour = arg("client", "current");
const pkg = flavour === "v1" ? "mem0ai-v1" : "mem0ai";
const { default: MemoryClient } = await import(pkg);
const version = JSON.parse(readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url), "utf8")).version;
const current = flavour !== "v1";
const resultsOf = (r) => (Array.isArray(r) ? r : r.results);

function check(condition, message) {
  if (!condition) {
    console.error(message);
    process.exit(1);
  }
}

const client = new MemoryClient({ apiKey: key, host: url });
const user = `carol-${Date.now().toString(36)}`;
const added = await client.add(
  [
    { role: "user", content: "I am vegetarian and I cook every Sunday" },
    { role: "assistant", content: "Noted" },
  ],
  current ? { userId: user } : { user_id: user },
);
const queued = resultsOf(added);
const event = (Array.isArray(queued) && queued[0]?.event_id) || added.event_id || added.eventId;
check(typeof event === "string" && event.length > 0, `the add is queued with an event id: ${JSON.stringify(added)}`);

let outcome;
for (let i = 0; i < 600; i++) {
  const response = await fetch(`${url}/v1/event/${event}/`, { headers: { Authorization: `Token ${key}` } });
  check(response.ok, `GET /v1/event/${event}/: ${response.status}`);
  outcome = await response.json();
  if (outcome.status !== "PENDING") break;
  await new Promise((r) => setTimeout(r, 100));
}
check(outcome.status === "SUCCEEDED", `the extraction succeeded: ${JSON.stringify(outcome)}`);

const all = resultsOf(current ? await client.getAll({ filters: { user_id: user } }) : await client.getAll({ user_id: user }));
const texts = all.map((m) => m.memory).sort();
check(JSON.stringify(texts) === JSON.stringify(["Cooks every Sunday", "Is vegetarian"]), `the model's facts are stored: ${JSON.stringify(all)}`);
const found = resultsOf(current ? await client.search("vegetarian", { filters: { user_id: user } }) : await client.search("vegetarian", { api_version: "v2", filters: { user_id: user } }));
check(found.length > 0 && found[0].memory === "Is vegetarian", `search finds the fact: ${JSON.stringify(found)}`);

console.log(JSON.stringify({ ok: true, version, event: outcome.status, memories: texts }));
