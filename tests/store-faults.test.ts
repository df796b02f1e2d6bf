// store-faults.test.ts: what a failing store means to each caller, on real stores. One job the
// database refuses fails only its own submit, never the others sharing its group commit; a claim or
// a leased insert whose answer was lost costs the job no attempt; every route answers a store
// outage with a 503 JSON error (never a 500), and a write whose outcome is unknown says so.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { StoreOutcomeUnknownError, StoreRejectedError } from "../src/errors.ts";
import type { JobContext } from "../src/handlers/handler.ts";
import type { Store, StoreTestHooks } from "../src/store/store.ts";

/** A store with the hooks only tests use (insert by ids, table counts). */
type TestStore = Store & StoreTestHooks;
import type { NewJob } from "../src/store/rows.ts";
import { createPostgresStore } from "../src/store/postgres/index.ts";
import { createTestDatabase } from "./support/pg.ts";
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";
import { waitFor } from "./support/wait.ts";

const newJob = (over: Partial<NewJob> = {}): NewJob => ({
  type: "t", payload: "{}", priority: 0, maxAttempts: 1, runAt: Date.now(), timeoutMs: null, ...over,
});

/** The real store, except that the first call of `method` takes effect and then loses its answer. */
function losingFirstAnswer<K extends "claim" | "add">(store: TestStore, method: K): TestStore {
  let lost = false;
  const real = store[method].bind(store) as (...a: unknown[]) => Promise<unknown>;
  return {
    ...store,
    [method]: async (...args: unknown[]) => {
      const out = await real(...args);
      if (lost) return out;
      lost = true;
      throw new StoreOutcomeUnknownError(`${method}: the connection dropped before the answer came`);
    },
  };
}

for (const kind of STORE_KINDS) {
  describe(`store faults on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => site.drop());

    test("a job the database refuses fails only its own submit; the 190 others in its group commits are stored", async () => {
      const ran: number[] = [];
      const q = await startQueue(site.open(), { t: (job: JobContext) => void ran.push(job.id) }, { workers: 1 });
      try {
        // max_attempts 0 breaks a CHECK constraint on both stores: the statement carrying it fails.
        const submits = Array.from({ length: 200 }, (_, i) => q.submit([newJob({ maxAttempts: i % 20 === 7 ? 0 : 1 })]));
        const results = await Promise.allSettled(submits);
        const refused = results.flatMap((r, i) => (r.status === "rejected" ? [i] : []));
        expect(refused).toEqual(Array.from({ length: 10 }, (_, n) => n * 20 + 7));
        for (const i of refused) expect((results[i] as PromiseRejectedResult).reason).toBeInstanceOf(StoreRejectedError);
        const ids = results.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
        expect(new Set(ids).size).toBe(190);
        await waitFor(() => ran.length === 190, { what: "the 190 stored jobs to run" });
        expect(new Set(ran)).toEqual(new Set(ids));
      } finally {
        await q.shutdown(1000);
      }
    });

    test("the library's submit refuses payload text that is not JSON and malformed keys before they reach the store", async () => {
      const store = site.open();
      const q = await startQueue(store, { t: () => {} });
      try {
        const before = await store.stats(Date.now());
        await expect(q.submit([newJob(), newJob({ payload: '{"open":' })])).rejects.toThrow("jobs[1].payload: is not JSON text");
        await expect(q.submit([newJob({ idempotencyKey: "k\ud800" })])).rejects.toThrow("jobs[0].idempotencyKey: contains a lone UTF-16 surrogate");
        expect(await store.stats(Date.now())).toEqual(before);
      } finally {
        await q.shutdown(1000);
      }
    });

    test("a claim whose answer was lost costs no attempt: the job runs as its first attempt", async () => {
      const attempts: number[] = [];
      const store = losingFirstAnswer(site.open(), "claim");
      const q = await startQueue(store, { t: (job: JobContext) => void attempts.push(job.attempt) }, { leaseMs: 60_000 });
      try {
        // Due a little later, so it is claimed from the heap (a due job would start in its own insert).
        const [id] = await q.submit([newJob({ runAt: Date.now() + 30, maxAttempts: 1 })]);
        await waitFor(async () => (await store.get(id!, Date.now())) === null, { what: "the job to complete" });
        expect(attempts).toEqual([1]);
        expect(q.metrics.counterValue("jobqueue_jobs_dead_total", { type: "t" })).toBe(0);
      } finally {
        await q.shutdown(1000);
      }
    });

    test("an insert that leased its job to this node and lost its answer costs no attempt either", async () => {
      const attempts: number[] = [];
      const store = losingFirstAnswer(site.open(), "add");
      const q = await startQueue(store, { t: (job: JobContext) => void attempts.push(job.attempt) }, { leaseMs: 60_000 });
      try {
        // An idle node starts a due job in its insert's own commit: the lost answer leaves it leased here.
        await expect(q.submit([newJob({ maxAttempts: 1 })])).rejects.toBeInstanceOf(StoreOutcomeUnknownError);
        await waitFor(() => attempts.length === 1, { what: "the stored job to run" });
        await waitFor(async () => (await store.counts()).inflight === 0, { what: "its completion" });
        expect(attempts).toEqual([1]);
        expect(await store.counts()).toEqual({ pending: 0, inflight: 0, dead: 0 });
      } finally {
        await q.shutdown(1000);
      }
    });
  });
}

for (const kind of STORE_KINDS) {
  test(`${kind}: submits waiting for a stalled store hold at most --max-pending-bytes; beyond it 503 overloaded`, async () => {
    const site = await storeSite(kind);
    const real = site.open();
    let unstall: () => void = () => {};
    const stalled = new Promise<void>((r) => (unstall = r));
    const store: TestStore = {
      ...real,
      add: async (...args) => {
        await stalled;
        return real.add(...args);
      },
    };
    const q = await startQueue(store, { t: () => {} }, { maxPendingBytes: 20_000 });
    try {
      const payload = { text: "x".repeat(2000) };
      const settled: Array<{ status: number; body: any }> = [];
      const answers = Array.from({ length: 50 }, () => call(q, "POST", "/submit", { type: "t", payload }).then((r) => (settled.push(r), r)));
      // Each held submit is ~2.3 kB: about eight fit in 20,000 bytes; every other one is refused at once.
      await waitFor(() => settled.length >= 41, { what: "the submits beyond the bound refused" });
      for (const r of settled) expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 503, code: "overloaded" });
      unstall();
      const results = await Promise.all(answers);
      const held = results.filter((r) => r.status === 202).length;
      expect(held).toBeGreaterThanOrEqual(7);
      expect(held).toBeLessThanOrEqual(9);
      expect(results.filter((r) => r.status === 503 && r.body.error.code === "overloaded")).toHaveLength(50 - held);
      expect((await call(q, "POST", "/submit", { type: "t", payload })).status).toBe(202);
    } finally {
      unstall();
      await q.shutdown(1000);
      await site.drop();
    }
  });
}

describe("a closing embedded store", () => {
  test("reads and writes answer 503 unavailable with a JSON error, never 500", async () => {
    const site = await storeSite("sqlite");
    const store = site.open();
    const q = await startQueue(store, { t: () => {} });
    try {
      await store.close();
      for (const [method, path, body] of [
        ["GET", "/jobs/1"], ["GET", "/stats"], ["GET", "/dead"], ["DELETE", "/jobs/1"], ["POST", "/dead/1/retry"],
        ["DELETE", "/dead/1"], ["POST", "/dead/retry?type=t"], ["POST", "/submit", { type: "t" }],
      ] as const) {
        const res = await q.app.request(path, {
          method,
          ...(body !== undefined && { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
        });
        expect({ path, method, status: res.status, retry: res.headers.get("retry-after") }).toEqual({ path, method, status: 503, retry: "1" });
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unavailable");
      }
    } finally {
      await q.shutdown(100).catch(() => {});
      await site.drop();
    }
  });
});

describe("PostgreSQL out of reach", () => {
  let db: { url: string; drop: () => Promise<void> };
  let proxy: TcpProxy;
  beforeAll(async () => {
    db = await createTestDatabase("jq_faults");
    const u = new URL(db.url);
    proxy = startTcpProxy({ host: u.hostname, port: Number(u.port) });
  });
  afterAll(async () => {
    proxy.close();
    await db.drop();
  });

  test("every route answers 503 with a JSON error while the database is unreachable, and recovers", async () => {
    const q = await startQueue(createPostgresStore({ url: proxy.via(db.url), connectTimeoutS: 1 }), { t: () => {} });
    try {
      proxy.down();
      for (const [method, path, body] of [
        ["GET", "/jobs/1"], ["GET", "/stats"], ["GET", "/dead"], ["DELETE", "/jobs/1"], ["POST", "/dead/1/retry"],
        ["DELETE", "/dead/1"], ["DELETE", "/dead?type=t"], ["POST", "/submit", { type: "t" }],
      ] as const) {
        const res = await call(q, method, path, body);
        expect({ path, method, status: res.status }).toEqual({ path, method, status: 503 });
        // A connection cut mid-statement may leave a write's outcome unknown; a refused one never does.
        expect(["unavailable", "outcome_unknown"]).toContain(res.body.error.code);
      }
      proxy.up();
      await waitFor(async () => (await call(q, "POST", "/submit", { type: "t" })).status === 202, { what: "submits to work again" });
    } finally {
      proxy.up();
      await q.shutdown(1000);
    }
  });

  test("a claim whose answer was lost, then an outage: the node retries handing back its stray leases calmly and still shuts down", async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (msg: string) => void warnings.push(msg), error: (msg: string) => void warnings.push(msg) };
    const q = await startQueue(createPostgresStore({ url: proxy.via(db.url), connectTimeoutS: 1 }), { t: () => {} }, { logger });
    try {
      // Due shortly, so the pool claims it from its heap: the claim's answer is the one lost.
      const lost = proxy.loseAnswerTo("DELETE FROM pending_jobs WHERE id = ANY");
      await q.submit([newJob({ runAt: Date.now() + 50 })]);
      await lost;
      proxy.down();
      await waitFor(() => warnings.some((w) => w.startsWith("handing back stray leases failed")), { what: "a failed hand-back" });
      await Bun.sleep(300); // long enough for a retry loop without a pause to run thousands of times
      const tries = warnings.filter((w) => w.startsWith("handing back stray leases failed")).length;
      expect(tries).toBeLessThanOrEqual(5);
      await q.shutdown(100);
      expect(q.state).toBe("stopped");
    } finally {
      proxy.up();
      if (q.state !== "stopped") await q.shutdown(100);
    }
  });

  test("a submit whose commit answer was lost says outcome_unknown, and its retry with the same key makes no second job", async () => {
    const store = createPostgresStore({ url: proxy.via(db.url) });
    const q = await startQueue(store, { t: () => new Promise(() => {}) }, { workers: 1 });
    const live = async () => {
      const check = createPostgresStore({ url: db.url });
      try {
        return (await check.stats(Date.now())).types.reduce((n, t) => n + t.pending + t.scheduled + t.inflight, 0);
      } finally {
        await check.close();
      }
    };
    const before = await live();
    try {
      // Keep the one worker busy so the keyed submit below is a plain insert, not a direct start.
      expect((await call(q, "POST", "/submit", { type: "t" })).status).toBe(202);
      const lost = proxy.loseAnswerTo("idempotency_keys");
      const first = await call(q, "POST", "/submit", { type: "t", idempotencyKey: "lost-answer" });
      await lost;
      expect(first.status).toBe(503);
      expect(first.body.error.code).toBe("outcome_unknown");
      const again = await waitFor(async () => {
        const r = await call(q, "POST", "/submit", { type: "t", idempotencyKey: "lost-answer" });
        return r.status === 503 ? null : r;
      }, { what: "the retried submit to be answered" });
      expect([200, 202]).toContain(again.status);
      const check = createPostgresStore({ url: db.url });
      try {
        const view = await check.get(Number(again.body.id), Date.now());
        expect(view?.type).toBe("t");
      } finally {
        await check.close();
      }
      expect(await live()).toBe(before + 2); // the busy job and the keyed one, once
    } finally {
      await q.shutdown(100);
    }
  });
});
