"""The swarm scenario of issue 20 with redis-py (Debian's python3-redis) against Engram's RESP endpoint.

Python is where most agent frameworks live, and redis-py is what they use: this drives the endpoint the way
they do. 16 agents on threads, each with its own client: SET with EX and GET (text and raw bytes), MSET/MGET,
INCR of a shared counter through a plain pipeline (the sum must be exact), a claim in a transactional pipeline
(MULTI/EXEC), a shared board updated with WATCH through `Redis.transaction` (no update lost), redis-py's `Lock`
(SET NX PX to take it, Lua scripts to extend and release it) guarding a read-modify-write, a rate limiter as a
registered script (EVALSHA, and EVAL again after SCRIPT FLUSH), TTL/EXPIRE/PERSIST/GETDEL, a bulk load through a
default (transactional) pipeline of 10,500 SETs and its removal the same way, then the cleanup: `scan_iter` by pattern
and DEL. Usage: python3 resp_swarm.py <port> [password]
Prints one JSON summary on stdout; exits 1 when anything did not hold.
"""

import json
import sys
import threading
import time

import redis

port = int(sys.argv[1])
password = sys.argv[2] if len(sys.argv) > 2 else None
AGENTS = 16
KEYS_PER_AGENT = 20
INCRS_PER_AGENT = 50
LEASE_ROUNDS = 5

failures = []
failures_lock = threading.Lock()


def check(ok, what):
    if not ok:
        with failures_lock:
            failures.append(what)


def connect():
    return redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=30)


# A fixed-window rate limiter: INCR the window's counter, set its expiry on the first hit, refuse past the limit.
RATE_LIMIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then return 0 end
return n
"""

allowed = [0] * AGENTS
board_adds = [0] * AGENTS


def agent(a):
    r = connect()
    r.set(f"pyswarm:agent:a{a}", json.dumps({"agent": a, "status": "running"}), ex=120)
    registered = time.monotonic()
    for k in range(KEYS_PER_AGENT):
        check(r.set(f"pyswarm:state:a{a}-k{k}", f"state {a}/{k} ✓", ex=60) is True, f"set a{a}-k{k}")
    for k in range(KEYS_PER_AGENT):
        value = r.get(f"pyswarm:state:a{a}-k{k}")
        check(value == f"state {a}/{k} ✓".encode(), f"get a{a}-k{k}: {value!r}")

    # Raw bytes, every byte value: what a pickled or msgpack'd state looks like.
    blob = bytes(range(256)) * 2
    r.set(f"pyswarm:blob:a{a}", blob, px=60_000)
    check(r.get(f"pyswarm:blob:a{a}") == blob, f"blob a{a}")

    check(r.mset({f"pyswarm:m:a{a}-{i}": str(i) for i in range(5)}) is True, f"mset a{a}")
    check(r.mget([f"pyswarm:m:a{a}-{i}" for i in range(5)] + ["pyswarm:m:missing"]) == [b"0", b"1", b"2", b"3", b"4", None], f"mget a{a}")

    pipe = r.pipeline(transaction=False)
    for _ in range(INCRS_PER_AGENT):
        pipe.incr("pyswarm:counter:total")
    results = pipe.execute()
    check(len(results) == INCRS_PER_AGENT and all(isinstance(n, int) for n in results), f"incr pipeline a{a}")

    # MULTI/EXEC: the agent's claim and the claims counter in one transaction.
    claim = r.pipeline(transaction=True).set(f"pyswarm:claim:a{a}", "taken", ex=60).incr("pyswarm:claims").get(f"pyswarm:claim:a{a}").execute()
    check(claim[0] is True and isinstance(claim[1], int) and claim[2] == b"taken", f"claim a{a}: {claim!r}")

    # WATCH: read the board, add this agent, write it back; redis-py retries when another agent got there first.
    def add_to_board(p):
        raw = p.get("pyswarm:board")
        board = json.loads(raw) if raw else []
        p.multi()
        p.set("pyswarm:board", json.dumps(board + [a]))
        board_adds[a] += 1

    r.transaction(add_to_board, "pyswarm:board")

    # A lock around a read-modify-write that is not atomic by itself.
    lock = r.lock("pyswarm:lock:ledger", timeout=10, blocking_timeout=60)
    for _ in range(LEASE_ROUNDS):
        check(lock.acquire(), f"lock a{a}")
        try:
            current = int(r.get("pyswarm:ledger") or 0)
            check(lock.extend(5), f"extend a{a}")
            r.set("pyswarm:ledger", current + 1)
        finally:
            lock.release()

    limiter = r.register_script(RATE_LIMIT)
    for _ in range(10):
        if limiter(keys=["pyswarm:rate:shared"], args=[100, 60_000]) != 0:
            allowed[a] += 1

    # The TTL counts down from 120 while the agent works (longer on a loaded machine): between 120 less the seconds
    # gone by (rounded down by the server) and 120.
    ttl = r.ttl(f"pyswarm:agent:a{a}")
    check(120 - int(time.monotonic() - registered) - 2 <= ttl <= 120, f"ttl a{a}: {ttl} after {time.monotonic() - registered:.1f} s")
    check(r.expire(f"pyswarm:agent:a{a}", 300) is True and r.ttl(f"pyswarm:agent:a{a}") in range(290, 301), f"expire a{a}")
    check(r.persist(f"pyswarm:agent:a{a}") is True and r.ttl(f"pyswarm:agent:a{a}") == -1, f"persist a{a}")
    check(r.getdel(f"pyswarm:m:a{a}-0") == b"0" and r.exists(f"pyswarm:m:a{a}-0") == 0, f"getdel a{a}")
    r.close()


started = time.monotonic()
errors = []


def guarded(a):
    try:
        agent(a)
    except Exception as error:  # noqa: BLE001 - every failure goes in the summary
        errors.append(f"agent {a}: {error!r}")


threads = [threading.Thread(target=guarded, args=(a,)) for a in range(AGENTS)]
for t in threads:
    t.start()
for t in threads:
    t.join()

r = connect()
total = int(r.get("pyswarm:counter:total") or 0)
claims = int(r.get("pyswarm:claims") or 0)
board = json.loads(r.get("pyswarm:board") or "[]")
ledger = int(r.get("pyswarm:ledger") or 0)
limited = int(r.get("pyswarm:rate:shared") or 0)

# After a SCRIPT FLUSH the registered script reloads itself (NOSCRIPT, then EVAL).
r.script_flush()
again = r.register_script(RATE_LIMIT)(keys=["pyswarm:rate:other"], args=[5, 60_000])

# redis-py's default pipeline is a transaction (MULTI ... EXEC): a bulk load of more commands than Engram once queued in
# one transaction (10,000), run whole as Redis runs it, then read back with one MGET and removed the same way.
BULK = 10_500
pipe = r.pipeline()
for i in range(BULK):
    pipe.set(f"pyswarm:bulk:{i}", f"v{i}", ex=300)
bulk_set = sum(1 for ok in pipe.execute() if ok is True)
bulk_keys = [f"pyswarm:bulk:{i}" for i in range(BULK)]
bulk_read = sum(1 for i, value in enumerate(r.mget(bulk_keys)) if value == f"v{i}".encode())
pipe = r.pipeline()
for key in bulk_keys:
    pipe.delete(key)
bulk_deleted = sum(pipe.execute())
bulk_left = r.exists(*bulk_keys)

# Cleanup: SCAN by pattern and DEL in batches, as the swarm's cleanup job does.
deleted = 0
batch = []
for key in r.scan_iter(match="pyswarm:state:*", count=100):
    batch.append(key)
    if len(batch) == 50:
        deleted += r.delete(*batch)
        batch = []
if batch:
    deleted += r.delete(*batch)
left = list(r.scan_iter(match="pyswarm:state:*"))

summary = {
    "total": total,
    "claims": claims,
    "board": len(board),
    "boardDistinct": len(set(board)),
    "ledger": ledger,
    "allowed": sum(allowed),
    "limiterCount": limited,
    "reloaded": again,
    "deleted": deleted,
    "left": len(left),
    "bulkSet": bulk_set,
    "bulkRead": bulk_read,
    "bulkDeleted": bulk_deleted,
    "bulkLeft": bulk_left,
    "seconds": round(time.monotonic() - started, 2),
    "failures": failures[:20] + errors[:20],
}
summary["ok"] = not failures and not errors
print(json.dumps(summary))
sys.exit(0 if summary["ok"] else 1)
