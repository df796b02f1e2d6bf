// pause.test.ts: pausing and resuming job types over HTTP (POST /types/:type/pause, /resume, GET
// /types), what a pause holds (claims, direct starts, a restart) and what it lets finish, and jobs
// whose start-by deadline passes: dead-lettered as expired by a claim or the maintenance sweep, and
// retryable. On both stores, through the real queue and its app.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createApp } from "../src/http/app.ts";
import { STORE_KINDS, call, startQueue, storeSite, type TestQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

/** A handler that waits until released, and the ids it has started. */
function gated() {
  let open: () => void = () => {};
  const gate = new Promise<void>((r) => (open = r));
  const started: number[] = [];
  return { started, release: () => open(), handler: async (job: { id: number }) => { started.push(job.id); await gate; } };
}

const completed = (q: TestQueue, type: string) => q.metrics.counterValue("jobqueue_jobs_completed_total", { type });

for (const kind of STORE_KINDS) {
  describe(`pausing job types on ${kind}`, () => {
    // A fresh store per test: a pause is the whole database's, and would reach the next test.
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeEach(async () => {
      site = await storeSite(kind);
    });
    afterEach(async () => {
      await site.drop();
    });

    test("pause and resume answer with the type's state, are idempotent, and refuse an unknown type with 404", async () => {
      const q = await startQueue(site.open(), { mail: () => {} });
      try {
        expect(await call(q, "POST", "/types/mail/pause")).toEqual({ status: 200, body: { type: "mail", paused: true } });
        expect(await call(q, "POST", "/types/mail/pause")).toEqual({ status: 200, body: { type: "mail", paused: true } });
        expect((await call(q, "GET", "/types")).body.types[0]).toMatchObject({ type: "mail", paused: true });
        expect(await call(q, "POST", "/types/mail/resume")).toEqual({ status: 200, body: { type: "mail", paused: false } });
        expect(await call(q, "POST", "/types/mail/resume")).toEqual({ status: 200, body: { type: "mail", paused: false } });
        expect((await call(q, "GET", "/types")).body.types[0]).toMatchObject({ type: "mail", paused: false });
        for (const path of ["/types/nope/pause", "/types/nope/resume"]) {
          const res = await call(q, "POST", path);
          expect(res.status).toBe(404);
          expect(res.body.error.code).toBe("not_found");
          expect(res.body.error.message).toContain('"nope"');
        }
        const long = await call(q, "POST", `/types/${"x".repeat(300)}/pause`);
        expect(long.status).toBe(404);
        expect(long.body.error.message).toBe(`no job type "${"x".repeat(100)}…" is registered`);
        const wrong = await q.app.request("/types/mail/pause", { method: "GET" });
        expect(wrong.status).toBe(405);
        expect(wrong.headers.get("allow")).toBe("POST");
        expect((await q.app.request("/types", { method: "POST" })).status).toBe(405);
      } finally {
        await q.shutdown(1000);
      }
    });

    test("GET /types shows every registered type's policy, whether it is paused, and its jobs running and waiting", async () => {
      const slow = gated();
      const q = await startQueue(site.open(), {
        slow: slow.handler,
        limited: {
          handler: () => {},
          policy: {
            concurrency: 2, priority: 40, backoff: { baseMs: 100 },
            flow: { rate: { limit: 10, perMs: 1000, burst: 2 }, keyConcurrency: 1, maxThrottles: 3, breaker: { failures: 5, coolMs: 30_000 } },
          },
        },
      });
      try {
        const running = await call(q, "POST", "/submit", { type: "slow" });
        await waitFor(() => slow.started.includes(Number(running.body.id)), { what: "the slow job started" });
        await call(q, "POST", "/submit", { jobs: [{ type: "slow", delayMs: 60_000 }, { type: "slow", delayMs: 60_000 }] });
        await call(q, "POST", "/types/limited/pause");
        const res = await call(q, "GET", "/types");
        expect(res.status).toBe(200);
        expect(res.body).toEqual({
          types: [
            {
              type: "limited", paused: true, registered: true, running: 0, waiting: 0, tokens: 2, effectiveConcurrency: 2, breaker: "closed",
              policy: {
                timeoutMs: 5000, maxAttempts: 3, priority: 40, concurrency: 2, backoff: { baseMs: 100 },
                rate: { limit: 10, perMs: 1000, burst: 2 }, keyConcurrency: 1, maxThrottles: 3, breaker: { failures: 5, coolMs: 30_000 },
              },
            },
            {
              type: "slow", paused: false, registered: true, running: 1, waiting: 2, effectiveConcurrency: 4, breaker: "closed",
              policy: { timeoutMs: 5000, maxAttempts: 3, priority: 0 },
            },
          ],
        });
        slow.release();
        await call(q, "POST", "/types/limited/resume");
      } finally {
        slow.release();
        await q.shutdown(1000);
      }
    });

    test("a paused type's jobs wait, neither claimed nor started at submit, while running ones finish and other types run; resumed, they run", async () => {
      const slow = gated();
      const ran: number[] = [];
      const q = await startQueue(site.open(), { slow: slow.handler, other: (job) => void ran.push(job.id) }, { workers: 4 });
      try {
        const running = await call(q, "POST", "/submit", { type: "slow" });
        await waitFor(() => slow.started.length === 1, { what: "the running job started" });
        expect((await call(q, "POST", "/types/slow/pause")).body).toEqual({ type: "slow", paused: true });
        // Slots are idle, yet a job of the paused type is not started at submit: it waits in pending.
        const waiting = await call(q, "POST", "/submit", { jobs: [{ type: "slow" }, { type: "slow", priority: 100 }] });
        const waitingIds: string[] = waiting.body.ids;
        for (const id of waitingIds) expect((await call(q, "GET", `/jobs/${id}`)).body).toMatchObject({ state: "pending", attempts: 0 });
        // The running one finishes normally.
        slow.release();
        await waitFor(() => completed(q, "slow") === 1, { what: "the running job completed" });
        expect((await call(q, "GET", `/jobs/${running.body.id}`)).status).toBe(404);
        // Another type runs after them, on the same idle workers.
        const other = await call(q, "POST", "/submit", { type: "other" });
        await waitFor(() => ran.includes(Number(other.body.id)), { what: "the other type's job ran" });
        await waitFor(() => q.api.queuedCount() === 2, { what: "the paused jobs back in the heap" });
        expect(slow.started).toEqual([Number(running.body.id)]);
        for (const id of waitingIds) expect((await call(q, "GET", `/jobs/${id}`)).body).toMatchObject({ state: "pending", attempts: 0 });
        expect((await call(q, "POST", "/types/slow/resume")).body).toEqual({ type: "slow", paused: false });
        await waitFor(() => completed(q, "slow") === 3, { what: "the paused jobs ran once resumed" });
        expect(slow.started.slice(1).sort()).toEqual(waitingIds.map(Number).sort());
      } finally {
        slow.release();
        await q.shutdown(1000);
      }
    });

    test("a submit that would start at once while the store, not yet this node, knows of a pause waits instead", async () => {
      const ran: number[] = [];
      const store = site.open();
      // No NOTIFY and no maintenance tick tell this node of a pause made behind its back.
      const q = await startQueue(store, { late: (job) => void ran.push(job.id), other: (job) => void ran.push(job.id) },
        { listen: false, reapIntervalMs: 60_000, workers: 2 });
      try {
        await store.pauseType("late", q.api.clock());
        const held = await call(q, "POST", "/submit", { type: "late" });
        expect(held.status).toBe(202);
        expect((await call(q, "GET", `/jobs/${held.body.id}`)).body).toMatchObject({ state: "pending", attempts: 0 });
        // Its slot came back: another type still starts on it, and the held job's claim taught the node of the pause.
        const other = await call(q, "POST", "/submit", { type: "other" });
        await waitFor(() => ran.includes(Number(other.body.id)), { what: "the other type's job ran" });
        await waitFor(() => q.pool.shut("late"), { what: "the node learnt of the pause from its claim" });
        expect(ran).not.toContain(Number(held.body.id));
        expect((await call(q, "GET", `/jobs/${held.body.id}`)).body.state).toBe("pending");
        await call(q, "POST", "/types/late/resume");
        await waitFor(() => ran.includes(Number(held.body.id)), { what: "the held job ran once resumed" });
      } finally {
        await q.shutdown(1000);
      }
    });

    test("GET /types merges what flow control tells of each type, never over the entry's own fields", async () => {
      const q = await startQueue(site.open(), { mail: () => {} });
      try {
        const app = createApp({ ...q.api, flowStatus: (type) => ({ effectiveConcurrency: 3, paused: "no", note: `about ${type}` }) },
          { bodyLimitBytes: 1 << 20, maxQueued: 0 });
        const res = await app.request("/types");
        expect(res.status).toBe(200);
        expect(((await res.json()) as { types: unknown[] }).types).toEqual([
          { type: "mail", paused: false, registered: true, running: 0, waiting: 0, policy: { timeoutMs: 5000, maxAttempts: 3, priority: 0 }, effectiveConcurrency: 3, note: "about mail" },
        ]);
      } finally {
        await q.shutdown(1000);
      }
    });

    test("a pause outlives a restart: the restarted node reads it before its first claim", async () => {
      const ran: number[] = [];
      const handlers = { held: (job: { id: number }) => void ran.push(job.id), other: (job: { id: number }) => void ran.push(job.id) };
      const first = await startQueue(site.open(), handlers, { nodeId: "restarting" });
      await call(first, "POST", "/types/held/pause");
      const job = await call(first, "POST", "/submit", { type: "held" });
      await first.shutdown(1000);
      const q = await startQueue(site.open(), handlers, { nodeId: "restarting" });
      try {
        expect((await call(q, "GET", "/types")).body.types.find((t: { type: string }) => t.type === "held")).toMatchObject({ paused: true, waiting: 1 });
        const other = await call(q, "POST", "/submit", { type: "other" });
        await waitFor(() => ran.includes(Number(other.body.id)), { what: "the other type's job ran" });
        expect(ran).not.toContain(Number(job.body.id));
        expect((await call(q, "GET", `/jobs/${job.body.id}`)).body.state).toBe("pending");
        await call(q, "POST", "/types/held/resume");
        await waitFor(() => ran.includes(Number(job.body.id)), { what: "the held job ran once resumed" });
      } finally {
        await q.shutdown(1000);
      }
    });

    test("a paused type's job whose ttl passes is dead-lettered as expired by the maintenance sweep; retried, it runs", async () => {
      const ran: number[] = [];
      const q = await startQueue(site.open(), { brief: (job) => void ran.push(job.id) });
      try {
        await call(q, "POST", "/types/brief/pause");
        const sub = await call(q, "POST", "/submit", { type: "brief", ttlMs: 50 });
        expect(sub.status).toBe(202);
        const id: string = sub.body.id;
        const dead = await waitFor(async () => {
          const v = (await call(q, "GET", `/jobs/${id}`)).body;
          return v.state === "dead" ? v : null;
        }, { what: "the job expired" });
        expect(dead).toMatchObject({ lastError: "expired", attempts: 0 });
        expect(Date.parse(dead.failedAt)).toBeGreaterThanOrEqual(Date.parse(dead.expiresAt));
        expect(q.metrics.counterValue("jobqueue_jobs_expired_total", { type: "brief" })).toBe(1);
        expect(q.api.queuedCount()).toBe(0);
        const page = await call(q, "GET", "/dead?type=brief");
        expect(page.body.jobs.map((j: { id: string; lastError: string }) => [j.id, j.lastError])).toEqual([[id, "expired"]]);
        await call(q, "POST", "/types/brief/resume");
        expect(await call(q, "POST", `/dead/${id}/retry`)).toEqual({ status: 200, body: { id } });
        await waitFor(() => ran.includes(Number(id)), { what: "the retried job ran" });
        expect(ran).toEqual([Number(id)]);
      } finally {
        await q.shutdown(1000);
      }
    });

    test("a library job submitted already past its deadline is not started at submit but dead-lettered as expired", async () => {
      const ran: number[] = [];
      const q = await startQueue(site.open(), { late: (job) => void ran.push(job.id) });
      try {
        const now = q.api.clock();
        const [id] = await q.submit([{ type: "late", payload: "{}", priority: 0, maxAttempts: 3, runAt: now, timeoutMs: null, startBy: now - 1 }]);
        const view = await waitFor(async () => {
          const v = (await call(q, "GET", `/jobs/${id}`)).body;
          return v.state === "dead" ? v : null;
        }, { what: "the job expired" });
        expect(view).toMatchObject({ lastError: "expired", attempts: 0 });
        expect(ran).toEqual([]);
      } finally {
        await q.shutdown(1000);
      }
    });

    test("a job whose deadline passes while it waits for a busy worker is dead-lettered by its claim, never started", async () => {
      const slow = gated();
      const ran: number[] = [];
      // One worker, and a maintenance tick too slow to sweep first: the claim meets the expired job.
      const q = await startQueue(site.open(), { slow: slow.handler, quick: (job) => void ran.push(job.id) }, { workers: 1, reapIntervalMs: 60_000 });
      try {
        await call(q, "POST", "/submit", { type: "slow" });
        await waitFor(() => slow.started.length === 1, { what: "the worker is busy" });
        const late = await call(q, "POST", "/submit", { type: "quick", ttlMs: 1 });
        const fine = await call(q, "POST", "/submit", { type: "quick", ttlMs: 600_000 });
        const expiresAt = Date.parse((await call(q, "GET", `/jobs/${late.body.id}`)).body.expiresAt);
        await waitFor(() => q.api.clock() > expiresAt, { what: "the deadline passed" });
        slow.release();
        await waitFor(() => ran.includes(Number(fine.body.id)), { what: "the job with time left ran" });
        expect(ran).toEqual([Number(fine.body.id)]);
        expect((await call(q, "GET", `/jobs/${late.body.id}`)).body).toMatchObject({ state: "dead", lastError: "expired", attempts: 0 });
        expect(q.metrics.counterValue("jobqueue_jobs_expired_total", { type: "quick" })).toBe(1);
      } finally {
        slow.release();
        await q.shutdown(1000);
      }
    });
  });
}
