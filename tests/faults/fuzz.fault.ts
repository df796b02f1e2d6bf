// fuzz.fault.ts: 10,000 seeded random requests (methods, paths, headers, and bodies mutated from
// valid submits) against a real server on 127.0.0.1, once on an embedded store in a temp file and
// once on a fresh PostgreSQL database. Asserts no 5xx, the server still serves, and the store holds
// exactly the jobs the 202 answers named.
// Slow, so a fault suite: make test-faults runs it, the quick run does not collect it.
// JOBQUEUE_FUZZ_SEED and JOBQUEUE_FUZZ_COUNT replay or resize a run.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { STORE_KINDS } from "../support/queues.ts";
import { startTestServer, type TestServer } from "../support/test-server.ts";
import { waitFor } from "../support/wait.ts";
import { prng } from "../support/prng.ts";

const SEED = Number(process.env.JOBQUEUE_FUZZ_SEED ?? 20_261_127);
const COUNT = Number(process.env.JOBQUEUE_FUZZ_COUNT ?? 10_000);
/** Requests in flight at once (keep-alive connections). */
const CONCURRENCY = 8;
/** The run stops sending after this long, whatever the count (the test then fails: too slow). */
const TIME_BUDGET_MS = 240_000;
const TOKEN = "fuzz_0123456789abcdefGHIJ";


interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
}

function generator(random: () => number) {
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => random() < p;

  const STRINGS = ["", "noop", "nope", "NaN", "Infinity", "-0", "1e400", "\u0000", "\ud800", "é", "💥", "../../etc/passwd", "' OR 1=1 --", "%00", "<script>", "a".repeat(300)];
  const NUMBERS = [0, -1, 1, 1.5, 100, 101, 2 ** 53 + 1, -(2 ** 53), 1e308, -1e308, 5e-324, 86_400_001];
  const FIELDS = ["type", "payload", "priority", "maxAttempts", "runAt", "delayMs", "timeoutMs", "idempotencyKey"];
  const ODD_KEYS = ["__proto__", "constructor", "prototype", "jobs", "url", "id", "", "type ", "\udc00", "k\ud83d\ude80"];

  function value(depth = 0): unknown {
    switch (int(depth > 3 ? 4 : 7)) {
      case 0: return pick(STRINGS);
      case 1: return pick(NUMBERS);
      case 2: return chance(0.5);
      case 3: return null;
      case 4: return Array.from({ length: int(4) }, () => value(depth + 1));
      case 5: return Object.fromEntries(Array.from({ length: int(4) }, () => [pick([...FIELDS, ...ODD_KEYS]), value(depth + 1)]));
      default: return new Date(Date.now() + (int(2) ? 1 : -1) * int(1e10)).toISOString();
    }
  }

  function validJob(): Record<string, unknown> {
    const job: Record<string, unknown> = { type: "noop" };
    if (chance(0.5)) job.payload = value(1);
    if (chance(0.3)) job.priority = int(101);
    if (chance(0.2)) job.maxAttempts = 1 + int(100);
    if (chance(0.2)) job.delayMs = int(1e6);
    else if (chance(0.1)) job.runAt = new Date(Date.now() + int(1e9)).toISOString();
    if (chance(0.1)) job.timeoutMs = 1 + int(86_400_000);
    if (chance(0.1)) job.idempotencyKey = pick(["a", "b", "k\ud800", "k\udc00", "💥"]);
    return job;
  }

  function mutateObject(job: Record<string, unknown>): void {
    switch (int(6)) {
      case 0: delete job[pick(FIELDS)]; break;
      case 1: job[pick(FIELDS)] = value(); break;
      case 2: job[pick(ODD_KEYS)] = value(); break;
      case 3: { const d = 1 + int(300); job.payload = JSON.parse("[".repeat(d) + "]".repeat(d)); break; } // around the 128 limit
      case 4: job.type = pick(STRINGS); break;
      default: job[`x${int(1000)}`] = value();
    }
  }

  function validBodyText(): string {
    if (chance(0.25)) {
      const jobs = Array.from({ length: 1 + int(chance(0.05) ? 1100 : 20) }, validJob);
      if (chance(0.5)) for (let i = int(3); i > 0; i--) mutateObject(pick(jobs));
      return JSON.stringify({ jobs });
    }
    const job = validJob();
    if (chance(0.5)) for (let i = 1 + int(3); i > 0; i--) mutateObject(job);
    return JSON.stringify(job);
  }

  function mutateBytes(bytes: Uint8Array): Uint8Array {
    const out = [...bytes];
    for (let i = 1 + int(4); i > 0; i--) {
      const at = int(out.length + 1);
      switch (int(6)) {
        case 0: out.splice(at, 1); break; // delete a byte
        case 1: out.splice(at, 0, int(256)); break; // insert a random byte (often invalid UTF-8)
        case 2: if (at < out.length) out[at] = out[at]! ^ (1 << int(8)); break; // flip a bit
        case 3: out.length = at; break; // truncate
        case 4: out.splice(at, 0, ...out.slice(int(out.length), int(out.length) + 20)); break; // duplicate
        default: out.splice(at, 0, ...Buffer.from(pick(['"__proto__":{"x":1},', "1e400", "\\u0000", "[[[[[[", '","', "NaN"]))); break;
      }
    }
    return new Uint8Array(out);
  }

  function body(): Uint8Array | undefined {
    const roll = random();
    if (roll < 0.03) return undefined;
    if (roll < 0.05) return new Uint8Array(Array.from({ length: int(2000) }, () => int(256)));
    if (roll < 0.06) return Buffer.from(`{"type":"noop","payload":${"[".repeat(5000)}${"]".repeat(5000)}}`);
    const text = Buffer.from(validBodyText());
    return chance(0.35) ? mutateBytes(text) : text;
  }

  function path(): string {
    const roll = random();
    if (roll < 0.6) return pick(["/submit", "/submit", "/submit", "/submit/", "/SUBMIT", "/submit?x=1", "//submit"]);
    if (roll < 0.8) {
      const id = pick([String(1 + int(5000)), "0", "-1", "1e3", "%00", "..%2f..", "9".repeat(1 + int(40)), "abc", "%F0%9F%92%A5", "1.0"]);
      return `/jobs/${id}`;
    }
    if (roll < 0.9) return pick(["/health", "/ready", "/metrics", "/"]);
    return "/" + Array.from({ length: 1 + int(5) }, () => pick(["a", "..", ".", "%2e%2e", "%", "jobs", "submit", "%ff", "~"])).join("/");
  }

  function headers(): Record<string, string> {
    const h: Record<string, string> = {};
    const auth = random();
    if (auth < 0.85) h.authorization = `Bearer ${TOKEN}`;
    else if (auth < 0.92) h.authorization = pick([`Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`, "Bearer", `bearer ${TOKEN}x`]);
    h["content-type"] = chance(0.85)
      ? pick(["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"])
      : pick(["text/plain", "application/x-www-form-urlencoded", "application/jsonx", "multipart/form-data; boundary=z", ""]);
    if (chance(0.1)) h["x-fuzz"] = Array.from({ length: int(200) }, () => String.fromCharCode(0x20 + int(95))).join("");
    if (chance(0.05)) h["content-encoding"] = pick(["gzip", "br", "identity"]);
    if (chance(0.05)) h.origin = pick(["null", "http://evil.example", "http://127.0.0.1", "file://", "%%%"]);
    return h;
  }

  return (): FuzzRequest => {
    const method = random() < 0.8 ? (random() < 0.75 ? "POST" : "GET") : pick(["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]);
    const withBody = method !== "GET" && method !== "HEAD";
    const where = method === "POST" && chance(0.8) ? "/submit" : path();
    return { method, path: where, headers: headers(), body: withBody ? body() : undefined };
  };
}

describe.each(STORE_KINDS)("fuzzing a real server on %s", (kind) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ store: kind, env: { JOBQUEUE_TOKEN: TOKEN } });
  });
  afterAll(async () => s?.stop());

  test(`${COUNT} random requests (seed ${SEED}) get no 5xx, and exactly the 202s' jobs are stored`, async () => {
    const next = generator(prng(SEED));
    const statuses = new Map<number, number>();
    const serverErrors: string[] = [];
    const transportErrors: string[] = [];
    let acceptedJobs = 0;
    let cancelledJobs = 0;
    let sent = 0;
    const deadline = Date.now() + TIME_BUDGET_MS;

    async function one(req: FuzzRequest): Promise<void> {
      let res: Response;
      try {
        res = await fetch(`${s.server.url}${req.path}`, { method: req.method, headers: req.headers, body: req.body });
      } catch (err) {
        transportErrors.push(`${req.method} ${req.path}: ${String(err)}`);
        return;
      }
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500) serverErrors.push(`${res.status} ${req.method} ${req.path} ${text.slice(0, 200)}`);
      if (req.method === "DELETE") {
        // DELETE /jobs/:id cancels: 204 removed a waiting job, 202 removes a running one shortly.
        if (res.status === 204 || res.status === 202) cancelledJobs++;
      } else if (res.status === 202) {
        // Only the jobs made new: a job whose idempotency key was held names the holder.
        const answer = JSON.parse(text) as { id?: string; duplicate?: boolean; ids?: string[]; duplicates?: boolean[] };
        if (answer.ids !== undefined) acceptedJobs += answer.ids.filter((_, i) => answer.duplicates?.[i] !== true).length;
        else if (answer.id !== undefined && answer.duplicate !== true) acceptedJobs++;
      }
    }

    // The requests are generated in one fixed order (so a seed replays), then sent CONCURRENCY at a time.
    const lanes = Array.from({ length: CONCURRENCY }, async () => {
      while (sent < COUNT && Date.now() < deadline) {
        sent++;
        await one(next());
      }
    });
    await Promise.all(lanes);

    console.log(`fuzz on ${kind}, seed ${SEED}: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${acceptedJobs} jobs accepted, ${cancelledJobs} cancelled`);
    expect(sent).toBe(COUNT);
    expect(serverErrors).toEqual([]);
    expect(transportErrors).toEqual([]);
    expect(statuses.get(202) ?? 0).toBeGreaterThan(0);
    await waitFor(async () => (await s.rows()) === acceptedJobs - cancelledJobs, { what: "rows = accepted − cancelled" });

    // Still alive and still correct.
    expect((await fetch(`${s.server.url}/health`)).status).toBe(200);
    const good = await fetch(`${s.server.url}/submit`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: '{"type":"noop"}',
    });
    expect(good.status).toBe(202);
    expect(await s.rows()).toBe(acceptedJobs - cancelledJobs + 1);
  }, TIME_BUDGET_MS + 60_000);
});
