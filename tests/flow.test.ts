// flow.test.ts: flow control through a real queue on each store: a type's rate, a key's concurrency
// and rate, and GET /jobs/:id's waitingFor saying why each job waits.
import { afterAll, describe, expect, test } from "bun:test";
import type { Handler } from "../src/handlers/handler.ts";
import { STORE_KINDS, call, startQueue, storeSite, type TestQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

const HOUR = 3_600_000;
/** Runs until the queue stops: a started job stays running. */
const hold: Handler = (_job, signal) => new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
const fails: Handler = () => {
  throw new Error("not yet");
};

for (const kind of STORE_KINDS) {
  describe(`flow control on ${kind}`, () => {
    const made: Array<{ q: TestQueue; drop: () => Promise<void> }> = [];
    afterAll(async () => {
      for (const { q, drop } of made) {
        await q.shutdown(0).catch(() => {});
        await drop();
      }
    });

    async function queue(): Promise<TestQueue> {
      const site = await storeSite(kind);
      const q = await startQueue(site.open(), {
        rated: { handler: hold, policy: { flow: { rate: { limit: 1, perMs: HOUR, burst: 1 } } } },
        quiet: { handler: hold, policy: { flow: { rate: { limit: 5, perMs: HOUR, burst: 3 } } } },
        keyed: { handler: hold, policy: { flow: { keyConcurrency: 1 } } },
        keyrate: { handler: hold, policy: { flow: { keyRate: { limit: 1, perMs: HOUR, burst: 1 } } } },
        single: { handler: hold, policy: { concurrency: 1 } },
        failing: { handler: fails, policy: { maxAttempts: 5, backoff: { baseMs: HOUR, capMs: HOUR } } },
      }, { workers: 8 });
      made.push({ q, drop: site.drop });
      return q;
    }
    const submit = async (q: TestQueue, body: unknown) => {
      const res = await call(q, "POST", "/submit", body);
      expect(res.status).toBe(202);
      return res.body.id as string;
    };
    const waiting = async (q: TestQueue, id: string) => (await call(q, "GET", `/jobs/${id}`)).body.waitingFor;

    test("waitingFor names each wait: rate, key concurrency, key rate, type concurrency, schedule, backoff; null while running", async () => {
      const q = await queue();
      const rated = [await submit(q, { type: "rated" }), await submit(q, { type: "rated" })];
      const keyed = [await submit(q, { type: "keyed", key: "a" }), await submit(q, { type: "keyed", key: "a" }), await submit(q, { type: "keyed", key: "b" })];
      const keyrate = [await submit(q, { type: "keyrate", key: "a" }), await submit(q, { type: "keyrate", key: "a" })];
      const single = [await submit(q, { type: "single" }), await submit(q, { type: "single" })];
      const later = await submit(q, { type: "single", delayMs: HOUR });
      const failing = await submit(q, { type: "failing" });
      // One of each limited pair runs; the other waits for the reason its limit gives.
      await waitFor(async () => (await waiting(q, rated[0]!)) === null && (await waiting(q, rated[1]!)) === "rate_limit", { what: "the rate to hold the second rated job" });
      await waitFor(async () => (await waiting(q, keyed[1]!)) === "key_concurrency", { what: "key a at its concurrency" });
      expect(await waiting(q, keyed[0]!)).toBeNull();
      await waitFor(async () => (await waiting(q, keyed[2]!)) === null, { what: "key b to run beside key a" });
      await waitFor(async () => (await waiting(q, keyrate[1]!)) === "rate_limit", { what: "key a's rate" });
      await waitFor(async () => (await waiting(q, single[1]!)) === "type_concurrency", { what: "the single type at its limit" });
      expect(await waiting(q, later)).toBe("scheduled");
      await waitFor(async () => (await waiting(q, failing)) === "backoff", { what: "the failed job to wait for its retry" });
      // Held jobs stay pending with no attempt used.
      expect((await call(q, "GET", `/jobs/${rated[1]}`)).body).toMatchObject({ state: "pending", attempts: 0 });
      expect((await call(q, "GET", `/jobs/${keyed[1]}`)).body).toMatchObject({ state: "pending", attempts: 0, key: "a" });
      // GET /types: the rate's tokens (used up), the pushback state, and no tokens for a type without a rate.
      const types = (await call(q, "GET", "/types")).body.types as Array<Record<string, unknown>>;
      expect(types.find((t) => t.type === "rated")).toMatchObject({ tokens: 0, running: 1, waiting: 1, effectiveConcurrency: expect.any(Number), breaker: "closed" });
      expect(types.find((t) => t.type === "keyed")).not.toHaveProperty("tokens");
      expect(types.find((t) => t.type === "quiet")).toMatchObject({ tokens: 3 });
      // Each hold is counted by type and reason.
      const metrics = await (await q.app.request("/metrics")).text();
      for (const [type, reason] of [["rated", "rate_limit"], ["keyed", "key_concurrency"], ["keyrate", "rate_limit"]]) {
        const line = metrics.split("\n").find((l) => l.startsWith(`jobqueue_flow_held_total{type="${type}",reason="${reason}"}`));
        expect(Number(line?.split(" ")[1])).toBeGreaterThan(0);
      }
    });

    test("every configured type's counters are on /metrics from the start, at 0", async () => {
      const q = await queue();
      const text = await (await q.app.request("/metrics")).text();
      for (const name of ["submitted", "completed", "failed", "retried", "dead", "expired"]) {
        expect(text).toMatch(new RegExp(`^jobqueue_jobs_${name}_total\\{type="quiet"\\} 0$`, "m"));
      }
    });

    test("a held key's next job starts as soon as its running job finishes", async () => {
      const site = await storeSite(kind);
      let release: (() => void) | undefined;
      const q = await startQueue(site.open(), {
        keyed: {
          handler: (_job, signal) => new Promise<void>((resolve) => {
            release = resolve;
            signal.addEventListener("abort", () => resolve(), { once: true });
          }),
          policy: { flow: { keyConcurrency: 1 } },
        },
      });
      made.push({ q, drop: site.drop });
      const first = await submit(q, { type: "keyed", key: "k" });
      const second = await submit(q, { type: "keyed", key: "k" });
      await waitFor(async () => (await waiting(q, second)) === "key_concurrency", { what: "the second job held" });
      expect(await waiting(q, first)).toBeNull();
      release!();
      await waitFor(async () => (await call(q, "GET", `/jobs/${second}`)).body?.state === "inflight", { what: "the second job to start" });
      expect((await call(q, "GET", `/jobs/${first}`)).status).toBe(404);
    });
  });
}
