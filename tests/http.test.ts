// http.test.ts: the HTTP surface through app.request() on a real queue, once on each store (a temp
// SQLite file, a fresh PostgreSQL database): routes, status codes, the JSON error envelope and its
// messages, and that a refused request stores nothing. What the other whole-queue suites already
// prove over HTTP is left to them: cancelling (cancel.test.ts), dead-letter paging, retry and
// delete (dead-letters.test.ts), key races (idempotency.test.ts), counts (stats.test.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { PermanentError } from "../src/errors.ts";
import type { Handler } from "../src/handlers/handler.ts";
import { DEAD_PAGE_MAX_BYTES } from "../src/http/api-schema.ts";
import type { Store, StoreTestHooks } from "../src/store/store.ts";

/** A store with the hooks only tests use (insert by ids, table counts). */
type TestStore = Store & StoreTestHooks;
import { STORE_KINDS, startQueue, storeSite, type StoreKind, type TestQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

/** Holds its worker until the queue shuts down, so every job submitted stays countable. */
const hold: Handler = (_job, signal) => new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
const doomed: Handler = () => {
  throw new PermanentError("doomed from the start");
};
/** Types of every queue here: noop and email.send default to priority 10 and 5 attempts. */
const HANDLERS = {
  noop: { handler: hold, policy: { priority: 10, maxAttempts: 5 } },
  "email.send": { handler: hold, policy: { priority: 10, maxAttempts: 5 } },
  doomed,
};

interface Node {
  q: TestQueue;
  store: TestStore;
  /** Rows in pending, inflight and dead. */
  rows(): Promise<number>;
}

/** Queues made by a describe block, each on a store of its own, all stopped after it. */
function nodes(kind: StoreKind) {
  const made: { q: TestQueue; drop: () => Promise<void> }[] = [];
  afterAll(async () => {
    for (const { q, drop } of made) {
      await q.shutdown(0).catch(() => {});
      await drop();
    }
  });
  return async (over: Parameters<typeof startQueue>[2] = {}): Promise<Node & { url?: string }> => {
    const site = await storeSite(kind);
    const store = site.open();
    const q = await startQueue(store, HANDLERS, over);
    made.push({ q, drop: site.drop });
    return {
      q, store, url: site.url,
      async rows() {
        const c = await store.counts();
        return c.pending + c.inflight + c.dead;
      },
    };
  };
}

const JSON_TYPE = { "content-type": "application/json" };

function post(n: Node, body: unknown, headers: Record<string, string> = JSON_TYPE) {
  return n.q.app.request("/submit", {
    method: "POST",
    headers,
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
}

/** Asserts the JSON error envelope; returns the message. */
async function errorOf(res: Response, status: number, code: string): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  return body.error.message;
}

/** Sends a request that must be refused: checks the envelope and that the store gained no row. */
async function refused(n: Node, send: () => Response | Promise<Response>, status: number, code: string): Promise<string> {
  const before = await n.rows();
  const message = await errorOf(await send(), status, code);
  expect(await n.rows()).toBe(before);
  return message;
}

async function view(n: Node, id: string): Promise<Record<string, unknown>> {
  const res = await n.q.app.request(`/jobs/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** A valid single-job body of exactly `bytes` bytes. */
function jobBodyOfSize(bytes: number): string {
  const empty = JSON.stringify({ type: "noop", payload: "" });
  return JSON.stringify({ type: "noop", payload: "x".repeat(bytes - empty.length) });
}

for (const kind of STORE_KINDS) {
  describe(`on ${kind}`, () => {
    const node = nodes(kind);
    let n: Node;
    /** A body limit of 1000 bytes. */
    let small: Node;
    beforeAll(async () => {
      n = await node();
      small = await node({ bodyLimitBytes: 1000 });
    });

    describe("POST /submit", () => {
      test("a single job is stored with its type's defaults, due now, and answered with its id as a string", async () => {
        const before = Date.now();
        const res = await post(n, { type: "noop", payload: { to: "a@b.c", n: [1, 2] } });
        const after = Date.now();
        expect(res.status).toBe(202);
        const { id } = (await res.json()) as { id: string };
        expect(id).toMatch(/^[1-9][0-9]*$/);
        const job = await view(n, id);
        expect(job).toMatchObject({ id, type: "noop", priority: 10, maxAttempts: 5, lastError: null, payload: { to: "a@b.c", n: [1, 2] } });
        const runAt = Date.parse(job.runAt as string);
        expect(runAt).toBeGreaterThanOrEqual(before - 1);
        expect(runAt).toBeLessThanOrEqual(after + 1);
      });

      test("a batch is stored whole and answered with ids in order, each job with its own fields", async () => {
        const before = Date.now();
        // Some 100 days ahead, at noon in a +02:00 zone: 10:00 UTC.
        const day = new Date(before + 100 * 86_400_000).toISOString().slice(0, 10);
        const res = await post(n, {
          jobs: [
            { type: "noop", priority: 0, maxAttempts: 1, runAt: `${day}T12:00:00+02:00`, timeoutMs: 5000 },
            { type: "email.send", priority: 100, maxAttempts: 100, delayMs: 600_000 },
            { type: "noop" },
          ],
        });
        expect(res.status).toBe(202);
        const { ids } = (await res.json()) as { ids: string[] };
        expect(ids).toHaveLength(3);
        expect(ids.map(Number)).toEqual([...ids.map(Number)].sort((a, b) => a - b));
        expect(await view(n, ids[0]!)).toMatchObject({ type: "noop", state: "scheduled", priority: 0, maxAttempts: 1, runAt: `${day}T10:00:00.000Z`, payload: null });
        const second = await view(n, ids[1]!);
        expect(second).toMatchObject({ type: "email.send", state: "scheduled", priority: 100, maxAttempts: 100 });
        expect(Date.parse(second.runAt as string)).toBeGreaterThanOrEqual(before + 600_000 - 1);
        expect(await view(n, ids[2]!)).toMatchObject({ type: "noop", priority: 10, maxAttempts: 5 });
      });

      test("a batch of one job still answers with a list of ids", async () => {
        const res = await post(n, { jobs: [{ type: "noop" }] });
        expect(res.status).toBe(202);
        expect(((await res.json()) as { ids: string[] }).ids).toHaveLength(1);
      });

      test("a content-type with a charset parameter, in any case, is accepted", async () => {
        expect((await post(n, { type: "noop" }, { "content-type": "Application/JSON; charset=utf-8" })).status).toBe(202);
      });

      test("a body without a JSON content-type is refused with 415", async () => {
        await refused(n, () => post(n, { type: "noop" }, { "content-type": "text/plain" }), 415, "unsupported_media_type");
        await refused(n, () => post(n, { type: "noop" }, {}), 415, "unsupported_media_type");
      });

      test("a body exactly at the size limit is accepted", async () => {
        expect((await post(small, jobBodyOfSize(1000))).status).toBe(202);
      });

      test("a body over the size limit is refused with 413, whether its content-length is honest, lying or absent", async () => {
        const honest = jobBodyOfSize(1001);
        await refused(small, () => post(small, honest, { ...JSON_TYPE, "content-length": "1001" }), 413, "payload_too_large");
        await refused(small, () => post(small, jobBodyOfSize(5000), { ...JSON_TYPE, "content-length": "10" }), 413, "payload_too_large");
        const bytes = new TextEncoder().encode(jobBodyOfSize(3000));
        const stream = () => new ReadableStream<Uint8Array>({
          start(controller) {
            for (let i = 0; i < bytes.length; i += 256) controller.enqueue(bytes.subarray(i, i + 256));
            controller.close();
          },
        });
        const init = () => ({ method: "POST", headers: JSON_TYPE, body: stream(), duplex: "half" }) as RequestInit;
        await refused(small, () => small.q.app.request("/submit", init()), 413, "payload_too_large");
      });

      test("malformed JSON and bodies that are not UTF-8 are refused with 400 invalid_json", async () => {
        await refused(n, () => post(n, '{"type": "noop",'), 400, "invalid_json");
        await refused(n, () => post(n, ""), 400, "invalid_json");
        const prefix = new TextEncoder().encode('{"type":"noop","payload":"');
        await refused(n, () => post(n, new Uint8Array([...prefix, 0xff, 0xfe, 0x22, 0x7d])), 400, "invalid_json");
      });

      test("a body that is not a job object is refused with 400 invalid_request", async () => {
        expect(await refused(n, () => post(n, [{ type: "noop" }]), 400, "invalid_request")).toBe("body: expected a JSON object");
        await refused(n, () => post(n, "42"), 400, "invalid_request");
        await refused(n, () => post(n, "null"), 400, "invalid_request");
      });

      test("an unknown field is refused and named", async () => {
        expect(await refused(n, () => post(n, { type: "noop", url: "http://x" }), 400, "invalid_request")).toBe('body: unknown field "url"');
        expect(await refused(n, () => post(n, { jobs: [{ type: "noop" }, { type: "noop", colour: 1 }] }), 400, "invalid_request")).toBe('jobs[1]: unknown field "colour"');
        expect(await refused(n, () => post(n, { jobs: [{ type: "noop" }], extra: true }), 400, "invalid_request")).toBe('body: unknown field "extra"');
      });

      test("a batch of 1,000 jobs is stored, and one of 1,001 or none is refused whole", async () => {
        const jobs = (count: number) => Array.from({ length: count }, () => ({ type: "noop", delayMs: 600_000 }));
        expect(await refused(n, () => post(n, { jobs: jobs(1001) }), 400, "invalid_request")).toBe("jobs: expected an array of 1 to 1000 jobs");
        await refused(n, () => post(n, { jobs: [] }), 400, "invalid_request");
        await refused(n, () => post(n, { jobs: "noop" }), 400, "invalid_request");
        const before = await n.rows();
        const res = await post(n, { jobs: jobs(1000) });
        expect(res.status).toBe(202);
        expect(((await res.json()) as { ids: string[] }).ids).toHaveLength(1000);
        expect(await n.rows()).toBe(before + 1000);
      });

      test("one bad job fails the whole batch, and the message names its path", async () => {
        const jobs = [{ type: "noop" }, { type: "noop" }, { type: "noop" }, { type: "noop", priority: 101 }];
        expect(await refused(n, () => post(n, { jobs }), 400, "invalid_request")).toBe("jobs[3].priority: expected an integer from 0 to 100");
      });

      test("priority, maxAttempts, delayMs and timeoutMs outside their ranges or of the wrong kind are refused", async () => {
        expect(await refused(n, () => post(n, { type: "noop", priority: 1.5 }), 400, "invalid_request")).toBe("priority: expected an integer from 0 to 100");
        await refused(n, () => post(n, { type: "noop", priority: "5" }), 400, "invalid_request");
        for (const job of [{ maxAttempts: 0 }, { maxAttempts: 101 }, { delayMs: -1 }, { delayMs: 366 * 24 * 3600 * 1000 }, { timeoutMs: 0 }, { timeoutMs: 86_400_001 }]) {
          const message = await refused(n, () => post(n, { type: "noop", ...job }), 400, "invalid_request");
          expect(message).toStartWith(`${Object.keys(job)[0]}: expected an integer from`);
        }
      });

      test("a runAt more than 365 days ahead is refused, like such a delayMs", async () => {
        const tooLate = { type: "noop", runAt: "9999-12-31T23:59:59Z" };
        expect(await refused(n, () => post(n, { jobs: [{ type: "noop" }, tooLate] }), 400, "invalid_request"))
          .toContain("jobs[1].runAt: must be at most 365 days from now");
      });

      test("runAt with delayMs, or a runAt that is not an ISO date-time with a timezone, is refused", async () => {
        expect(await refused(n, () => post(n, { type: "noop", runAt: "2030-01-01T00:00:00Z", delayMs: 10 }), 400, "invalid_request")).toContain("runAt or delayMs, not both");
        for (const runAt of ["2030-01-01T00:00:00", "tomorrow", "2030-02-30T00:00:00Z", 1893456000000]) {
          expect(await refused(n, () => post(n, { type: "noop", runAt }), 400, "invalid_request")).toStartWith("runAt: ");
        }
      });

      test("a payload of exactly 256 KiB as sent is stored, and one byte more is refused", async () => {
        const fits = "x".repeat(262_144 - 2);
        const res = await post(n, { type: "noop", payload: fits });
        expect(res.status).toBe(202);
        expect((await view(n, ((await res.json()) as { id: string }).id)).payload).toBe(fits);
        expect(await refused(n, () => post(n, { type: "noop", payload: fits + "x" }), 400, "invalid_request")).toBe("payload: must be at most 262144 bytes of JSON as sent");
      });

      test("a payload nested 128 deep is stored, one level more is refused, and far deeper is a 400 too", async () => {
        const nested = (depth: number) => `{"type":"noop","payload":${"[".repeat(depth)}${"]".repeat(depth)}}`;
        expect((await post(n, nested(128))).status).toBe(202);
        expect(await refused(n, () => post(n, nested(129)), 400, "invalid_request")).toBe("payload: must not nest arrays and objects more than 128 deep");
        await refused(n, () => post(n, `{"type":"noop","payload":{"a":${"[".repeat(200_000)}${"]".repeat(200_000)}}}`), 400, "invalid_request");
      });

      test("a missing, malformed or unknown type is refused and named with its path", async () => {
        expect(await refused(n, () => post(n, { payload: 1 }), 400, "invalid_request")).toBe("type: is required");
        for (const type of ["", "a b", "x".repeat(101), 7]) await refused(n, () => post(n, { type }), 400, "invalid_request");
        expect(await refused(n, () => post(n, { type: "x" }), 400, "invalid_request")).toBe('type: unknown job type "x"');
        const jobs = [{ type: "noop" }, { type: "email.send" }, { type: "x" }];
        expect(await refused(n, () => post(n, { jobs }), 400, "invalid_request")).toBe('jobs[2].type: unknown job type "x"');
      });
    });

    describe("idempotency keys", () => {
      test("a held key answers 200 with the first job's id; a batch is 202 when anything was new, 200 when nothing was", async () => {
        const first = await post(n, { type: "noop", idempotencyKey: `order-17-${kind}` });
        expect(first.status).toBe(202);
        const { id } = (await first.json()) as { id: string };
        const again = await post(n, { type: "noop", idempotencyKey: `order-17-${kind}`, payload: { other: true } });
        expect(again.status).toBe(200);
        expect(await again.json()).toEqual({ id, duplicate: true });
        const mixed = await post(n, { jobs: [{ type: "noop", idempotencyKey: `order-17-${kind}` }, { type: "noop" }, { type: "noop", idempotencyKey: `b-${kind}` }, { type: "noop", idempotencyKey: `b-${kind}` }] });
        expect(mixed.status).toBe(202);
        const m = (await mixed.json()) as { ids: string[]; duplicates: boolean[] };
        expect(m.duplicates).toEqual([true, false, false, true]);
        expect(m.ids[0]).toBe(id);
        expect(m.ids[3]).toBe(m.ids[2]!);
        const all = await post(n, { jobs: [{ type: "noop", idempotencyKey: `order-17-${kind}` }, { type: "noop", idempotencyKey: `b-${kind}` }] });
        expect(all.status).toBe(200);
        expect(await all.json()).toEqual({ ids: [id, m.ids[2]], duplicates: [true, true] });
        // Without keys the answer keeps its plain shape.
        expect(Object.keys(await (await post(n, { jobs: [{ type: "noop" }] })).json() as object)).toEqual(["ids"]);
      });

      test("a key must be a string of 1 to 200 well-formed characters without control characters", async () => {
        for (const bad of ["", "x".repeat(201), 7, null, "a\u0000b", "line\nbreak", "k\ud800"]) {
          expect(await refused(n, () => post(n, { type: "noop", idempotencyKey: bad }), 400, "invalid_request")).toStartWith("idempotencyKey: ");
        }
        expect((await post(n, { type: "noop", idempotencyKey: `${kind}-${"x".repeat(190)}` })).status).toBe(202);
        expect((await post(n, { type: "noop", idempotencyKey: `émoji 🚀 and spaces ${kind}` })).status).toBe(202);
      });
    });

    describe("flow-control key and expiry", () => {
      test("a job's key, deadline and throttle count show in its view; expiresAt and ttlMs fix the same deadline", async () => {
        const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
        const a = (await (await post(n, { type: "noop", delayMs: 600_000, key: "tenant 🚀 ü", expiresAt })).json()) as { id: string };
        expect(await view(n, a.id)).toMatchObject({ key: "tenant 🚀 ü", expiresAt, throttles: 0, state: "scheduled" });
        // Read on the queue's own clock (on PostgreSQL the server's, through a measured offset, in
        // fractions of a ms), which the deadline is set by; the view shows it in whole ms, rounded down.
        const before = Math.floor(n.store.clock());
        const b = (await (await post(n, { jobs: [{ type: "noop", delayMs: 600_000, ttlMs: 900_000 }] })).json()) as { ids: string[] };
        const got = await view(n, b.ids[0]!);
        expect(got.key).toBeNull();
        const deadline = Date.parse(got.expiresAt as string);
        expect(deadline - before).toBeGreaterThanOrEqual(900_000);
        expect(deadline - n.store.clock()).toBeLessThanOrEqual(900_000);
        // Without a deadline the field is absent, not null.
        const c = (await (await post(n, { type: "noop", delayMs: 600_000 })).json()) as { id: string };
        expect(Object.keys(await view(n, c.id))).not.toContain("expiresAt");
      });

      test("a bad key or deadline is refused and named, and nothing is stored", async () => {
        for (const bad of ["", "x".repeat(201), 7, null, "a\u0000b", "k\ud800"]) {
          expect(await refused(n, () => post(n, { type: "noop", key: bad }), 400, "invalid_request")).toStartWith("key: ");
        }
        expect(await refused(n, () => post(n, { type: "noop", ttlMs: 0 }), 400, "invalid_request")).toStartWith("ttlMs: ");
        expect(await refused(n, () => post(n, { type: "noop", expiresAt: "tomorrow" }), 400, "invalid_request")).toStartWith("expiresAt: ");
        expect(await refused(n, () => post(n, { type: "noop", ttlMs: 5000, expiresAt: new Date(Date.now() + 60_000).toISOString() }), 400, "invalid_request"))
          .toContain("give expiresAt or ttlMs, not both");
        // A deadline before the first run could only ever be dead-lettered.
        expect(await refused(n, () => post(n, { type: "noop", expiresAt: "2001-01-01T00:00:00Z" }), 400, "invalid_request"))
          .toStartWith("expiresAt: the job would expire before it may first run");
        const jobs = [{ type: "noop" }, { type: "noop", delayMs: 60_000, ttlMs: 30_000 }];
        expect(await refused(n, () => post(n, { jobs }), 400, "invalid_request")).toStartWith("jobs[1].ttlMs: the job would expire");
      });
    });

    describe("backpressure: --max-queued", () => {
      test("a submit past the cap is refused whole with 429 queue_full and retry-after, before its body is read", async () => {
        const capped = await node({ maxQueued: 3 });
        const later = { type: "noop", delayMs: 600_000 };
        expect((await post(capped, { jobs: [later, later] })).status).toBe(202);
        // A batch of two would pass the cap though one of them would fit: neither is stored.
        const overflow = await post(capped, { jobs: [later, later] });
        expect(overflow.headers.get("retry-after")).toBe("1");
        expect(await errorOf(overflow, 429, "queue_full")).toContain("at most 3 jobs");
        expect(await capped.rows()).toBe(2);
        // Exactly filling the queue is fine; then even a malformed body is a 429 (never read).
        expect((await post(capped, later)).status).toBe(202);
        await refused(capped, () => post(capped, "{not json"), 429, "queue_full");
      });

      test("a cap of 0 means no limit", async () => {
        const open = await node({ maxQueued: 0 });
        expect((await post(open, { jobs: Array.from({ length: 50 }, () => ({ type: "noop", delayMs: 600_000 })) })).status).toBe(202);
        expect((await post(open, { type: "noop", delayMs: 600_000 })).status).toBe(202);
      });

      // PostgreSQL only: there another session can hold a commit open from outside (SQLite's commits are synchronous).
      if (kind === "postgres") test("jobs of a submit still waiting for its commit count against the cap", async () => {
        const capped = await node({ maxQueued: 3 });
        // Hold the insert's commit from outside: another session locks the table it writes.
        // Two connections: one holds the lock in its transaction, the other looks at pg_locks.
        const other = postgres(capped.url!, { max: 2, onnotice: () => {} });
        let release: () => void = () => {};
        const held = new Promise<void>((resolve) => (release = resolve));
        let locked: () => void = () => {};
        const isLocked = new Promise<void>((resolve) => (locked = resolve));
        const tx = other.begin(async (sql) => {
          await sql`LOCK TABLE pending_jobs IN EXCLUSIVE MODE`;
          locked();
          await held;
        });
        try {
          await isLocked;
          const later = { type: "noop", delayMs: 600_000 };
          const first = post(capped, { jobs: [later, later, later] });
          await waitFor(async () => (await other`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted`)[0]!.n > 0, { what: "the insert waiting for the lock" });
          await refused(capped, () => post(capped, later), 429, "queue_full");
          release();
          expect((await first).status).toBe(202);
          expect(await capped.rows()).toBe(3);
        } finally {
          release();
          await tx;
          await other.end();
        }
      });
    });

    describe("GET /jobs/:id", () => {
      test("a dead job is shown with a string id, ISO times, its error, failedAt and its payload as sent", async () => {
        // A queue of its own: the held jobs of the others fill their workers.
        const fresh = await node();
        const before = Date.now();
        const res = await post(fresh, '{"type":"doomed","payload":{"a":[1,"b"], "n":1.0}}');
        const { id } = (await res.json()) as { id: string };
        await waitFor(async () => (await view(fresh, id)).state === "dead", { what: "the doomed job dead" });
        const text = await (await fresh.q.app.request(`/jobs/${id}`)).text();
        expect(text.endsWith(',"payload":{"a":[1,"b"], "n":1.0}}')).toBe(true);
        const job = JSON.parse(text) as Record<string, unknown>;
        expect(job).toMatchObject({ id, type: "doomed", state: "dead", priority: 0, attempts: 1, maxAttempts: 3, lastError: "doomed from the start", payload: { a: [1, "b"], n: 1 } });
        for (const field of ["runAt", "createdAt", "failedAt"]) {
          expect(job[field]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
          expect(Date.parse(job[field] as string)).toBeGreaterThanOrEqual(before - 1);
        }
      });

      test("an unknown job is a 404, and ids that are not positive safe integers are 400 invalid_id", async () => {
        await errorOf(await n.q.app.request("/jobs/9007199254740991"), 404, "not_found");
        for (const id of ["0", "-1", "abc", "01", "1.5", "1e3", "99999999999999999999", "9007199254740992"]) {
          await errorOf(await n.q.app.request(`/jobs/${id}`), 400, "invalid_id");
        }
      });
    });

    describe("dead letters: what the HTTP layer checks itself", () => {
      test("GET /dead refuses a bad limit, cursor, type or unknown parameter, naming it", async () => {
        for (const [q, field] of [["limit=0", "limit"], ["limit=501", "limit"], ["limit=x", "limit"], ["after=-1", "after"], ["after=1.5", "after"], ["type=a%20b", "type"], ["color=red", "color"]] as const) {
          expect(await errorOf(await n.q.app.request(`/dead?${q}`), 400, "invalid_request")).toContain(field);
        }
      });

      test("bulk retry and delete need a type", async () => {
        expect(await errorOf(await n.q.app.request("/dead/retry", { method: "POST" }), 400, "invalid_request")).toBe("type: is required");
        await errorOf(await n.q.app.request("/dead", { method: "DELETE" }), 400, "invalid_request");
      });

      test("other methods on the dead-letter paths are 405s that say what is allowed", async () => {
        const allow = async (path: string, method: string) => (await n.q.app.request(path, { method })).headers.get("allow");
        expect(await allow("/dead", "POST")).toBe("GET, HEAD, DELETE");
        expect(await allow("/dead/retry", "GET")).toBe("POST");
        expect(await allow("/dead/1", "GET")).toBe("DELETE");
        expect(await allow("/dead/1/retry", "DELETE")).toBe("POST");
      });
    });

    describe("health, readiness and metrics", () => {
      test("health and ready answer 200 on a running queue", async () => {
        expect(await (await n.q.app.request("/health")).json()).toEqual({ status: "ok" });
        const ready = await n.q.app.request("/ready");
        expect(ready.status).toBe(200);
        expect(await ready.json()).toEqual({ status: "ready" });
      });

      test("metrics are served as Prometheus text with its content type", async () => {
        const res = await n.q.app.request("/metrics");
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
        expect(await res.text()).toContain('jobqueue_jobs_submitted_total{type="noop"}');
      });
    });

    describe("routing", () => {
      test("an unknown path is a JSON 404", async () => {
        await errorOf(await n.q.app.request("/nope"), 404, "not_found");
        await errorOf(await n.q.app.request("/jobs/1/extra"), 404, "not_found");
      });

      test("a known path with the wrong method is a 405 with an Allow header", async () => {
        const get = await n.q.app.request("/submit");
        expect(get.headers.get("allow")).toBe("POST");
        await errorOf(get, 405, "method_not_allowed");
        const patch = await n.q.app.request("/jobs/1", { method: "PATCH" });
        expect(patch.headers.get("allow")).toBe("GET, HEAD, DELETE");
        await errorOf(patch, 405, "method_not_allowed");
        await refused(n, () => n.q.app.request("/health", { method: "PUT", body: "{}" }), 405, "method_not_allowed");
      });
    });

    describe("when the store is gone", () => {
      test("reads and submits answer 503 with retry-after, /ready says why, and nothing internal is shown", async () => {
        const broken = await node();
        await broken.store.close();
        const submit = await post(broken, { type: "noop" });
        expect(submit.headers.get("retry-after")).toBe("1");
        expect(await errorOf(submit, 503, "unavailable")).toBe("the job store is unavailable; nothing was changed, retry later");
        for (const path of ["/jobs/1", "/stats", "/dead"]) {
          const res = await broken.q.app.request(path);
          expect(res.headers.get("retry-after")).toBe("1");
          expect(await errorOf(res, 503, "unavailable")).toBe("the job store is unavailable; retry later");
        }
        expect(await errorOf(await broken.q.app.request("/ready"), 503, "not_ready")).toStartWith("the job store is unreachable");
        expect((await broken.q.app.request("/health")).status).toBe(200);
      });
    });

    describe("while shutting down", () => {
      test("submits are refused with 503 shutting_down and /ready fails, while /health still answers", async () => {
        const stopping = await node();
        await stopping.q.shutdown(0);
        expect(await errorOf(await post(stopping, { type: "noop" }), 503, "shutting_down")).toBe("the server is shutting down");
        expect(await errorOf(await stopping.q.app.request("/ready"), 503, "not_ready")).toBe("shutting down");
        expect(await (await stopping.q.app.request("/health")).json()).toEqual({ status: "ok" });
      });
    });

    describe("GET /dead holds at most about 4 MiB of payload per page", () => {
      test("a page of large payloads stops at the byte bound, and `next` pages on from the last job shown", async () => {
        const big = await node();
        // 20 dead jobs of 240,002 payload bytes each: 17 fit in 4 MiB, 18 do not.
        const payloads = Array.from({ length: 20 }, (_, i) => JSON.stringify(String.fromCharCode(97 + i).repeat(240_000)));
        const ids: string[] = [];
        for (let i = 0; i < payloads.length; i += 4) {
          const res = await post(big, `{"jobs":[${payloads.slice(i, i + 4).map((p) => `{"type":"doomed","payload":${p}}`).join(",")}]}`);
          expect(res.status).toBe(202);
          ids.push(...((await res.json()) as { ids: string[] }).ids);
        }
        await waitFor(async () => (await big.store.counts()).dead === 20, { what: "20 dead jobs" });

        const get = async (path: string) => {
          const res = await big.q.app.request(path);
          expect(res.status).toBe(200);
          const text = await res.text();
          return { bytes: Buffer.byteLength(text), page: JSON.parse(text) as { jobs: { id: string; payload: string }[]; next: string | null } };
        };
        const first = await get("/dead");
        expect(first.page.jobs.map((j) => j.id)).toEqual(ids.slice(0, 17));
        expect(first.page.next).toBe(ids[16]!);
        expect(first.bytes).toBeLessThan(DEAD_PAGE_MAX_BYTES + 17 * 1000);
        const second = await get(`/dead?after=${first.page.next}`);
        expect(second.page.jobs.map((j) => j.id)).toEqual(ids.slice(17));
        expect(second.page.next).toBeNull();
        expect([...first.page.jobs, ...second.page.jobs].map((j) => JSON.stringify(j.payload))).toEqual(payloads);
        // The count limit still applies below the byte bound.
        const few = await get("/dead?type=doomed&limit=5");
        expect(few.page.jobs.map((j) => j.id)).toEqual(ids.slice(0, 5));
        expect(few.page.next).toBe(ids[4]!);
      }, 60_000);
    });
  });
}
