// cancel.test.ts: DELETE /jobs/:id on a whole queue node, on both stores: scheduled and pending jobs
// are removed and never run, running ones see their signal fire and are never retried, and a
// cancel raced against claims and completions leaves every job accounted for exactly once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Handler } from "../src/handlers/handler.ts";
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

const untilAborted: Handler = (_job, signal) =>
  new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));

for (const kind of STORE_KINDS) {
  describe(`cancelling jobs on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => {
      await site.drop();
    });

    test("a scheduled job is removed with 204 and never runs", async () => {
      let runs = 0;
      const q = await startQueue(site.open(), { later: () => void runs++ });
      const { body: { id } } = await call(q, "POST", "/submit", { type: "later", delayMs: 200 });
      expect((await call(q, "DELETE", `/jobs/${id}`)).status).toBe(204);
      expect((await call(q, "GET", `/jobs/${id}`)).status).toBe(404);
      expect((await call(q, "DELETE", `/jobs/${id}`)).status).toBe(404);
      // A job submitted after it with the same delay runs: the cancelled one never does.
      const { body: { id: witness } } = await call(q, "POST", "/submit", { type: "later", delayMs: 200 });
      await waitFor(async () => (await call(q, "GET", `/jobs/${witness}`)).status === 404, { what: "the witness completes" });
      expect(runs).toBe(1);
      await q.shutdown(1000);
    });

    test("cancelled jobs leave this node's heaps at once: they stop counting toward --max-queued and the gauges", async () => {
      const q = await startQueue(site.open(), { later: () => {} }, { maxQueued: 5 });
      try {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) ids.push((await call(q, "POST", "/submit", { type: "later", delayMs: 3_600_000 })).body.id);
        expect((await call(q, "POST", "/submit", { type: "later", delayMs: 3_600_000 })).status).toBe(429);
        for (const id of ids) expect((await call(q, "DELETE", `/jobs/${id}`)).status).toBe(204);
        expect(q.scheduler.scheduledCount + q.scheduler.readyCount).toBe(0);
        const metrics = await (await q.app.request("/metrics")).text();
        expect(metrics).toMatch(/^jobqueue_jobs_scheduled 0$/m);
        expect((await call(q, "POST", "/submit", { type: "later", delayMs: 3_600_000 })).status).toBe(202);
      } finally {
        await q.shutdown(1000);
      }
    });

    test("a running job sees its signal fire with a cancelled reason, answers 202, and is removed, not retried", async () => {
      const reasons: string[] = [];
      let runs = 0;
      const q = await startQueue(site.open(), {
        slow: (_job, signal) => {
          runs++;
          return new Promise((_, reject) => signal.addEventListener("abort", () => {
            reasons.push(`${(signal.reason as Error).name}: ${(signal.reason as Error).message}`);
            reject(signal.reason);
          }, { once: true }));
        },
      }, { workers: 1 });
      const { body: { id } } = await call(q, "POST", "/submit", { type: "slow", maxAttempts: 5 });
      await waitFor(async () => (await call(q, "GET", `/jobs/${id}`)).body.state === "inflight", { what: "running" });
      expect(await call(q, "DELETE", `/jobs/${id}`)).toEqual({ status: 202, body: { id, state: "cancelling" } });
      await waitFor(async () => (await call(q, "GET", `/jobs/${id}`)).status === 404, { what: "row removed" });
      expect(reasons).toEqual(["CancelledError: cancelled"]);
      expect(runs).toBe(1);
      expect(q.metrics.counterValue("jobqueue_jobs_failed_total")).toBe(0);
      expect(q.metrics.counterValue("jobqueue_jobs_retried_total")).toBe(0);
      await q.shutdown(1000);
    });

    test("a handler that ignores the signal still frees its slot, and its job is removed", async () => {
      const ran: string[] = [];
      const q = await startQueue(site.open(), {
        deaf: () => new Promise(() => {}),
        next: (job) => void ran.push(String(job.id)),
      }, { workers: 1 });
      const { body: { id } } = await call(q, "POST", "/submit", { type: "deaf" });
      await waitFor(() => q.pool.busy === 1, { what: "running" });
      const { body: { id: next } } = await call(q, "POST", "/submit", { type: "next" });
      expect((await call(q, "DELETE", `/jobs/${id}`)).status).toBe(202);
      await waitFor(() => ran.includes(next), { what: "the next job gets the slot" });
      await waitFor(async () => (await call(q, "GET", `/jobs/${id}`)).status === 404, { what: "row removed" });
      await q.shutdown(1000);
    });

    test("a dead job is a 404 pointing at /dead, and a job another process runs is a 409", async () => {
      const store = site.open();
      const q = await startQueue(store, { doomed: () => { throw new Error("no"); }, theirs: untilAborted });
      const { body: { id } } = await call(q, "POST", "/submit", { type: "doomed", maxAttempts: 1 });
      await waitFor(async () => (await call(q, "GET", `/jobs/${id}`)).body.state === "dead", { what: "dead" });
      const dead = await call(q, "DELETE", `/jobs/${id}`);
      expect(dead.status).toBe(404);
      expect(dead.body.error.message).toContain(`DELETE /dead/${id}`);
      // A row leased to another node (inserted and claimed behind this node's back).
      const now = Date.now();
      const [other] = await store.insert([{ type: "theirs", payload: "null", priority: 0, maxAttempts: 1, runAt: now, timeoutMs: null }], now);
      (await store.claim([other!], "another-node", now, 60_000)).jobs;
      const elsewhere = await call(q, "DELETE", `/jobs/${other}`);
      expect(elsewhere.status).toBe(409);
      expect(elsewhere.body.error.code).toBe("running_elsewhere");
      await store.completeCancelled([{ id: other!, attempt: 1 }]);
      await q.shutdown(1000);
    });

    test("cancels raced against claims and completions: a 204'd job never runs, a 202'd one runs once, and every row is gone", async () => {
      const runs = new Map<string, number>();
      const q = await startQueue(site.open(), {
        race: async (job, signal) => {
          const id = String(job.id);
          runs.set(id, (runs.get(id) ?? 0) + 1);
          if (job.id % 2 === 0) await new Promise((resolve, reject) => {
            const t = setTimeout(resolve, 5);
            signal.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason); }, { once: true });
          });
        },
      }, { workers: 8 });
      const { body: { ids } } = await call(q, "POST", "/submit", { jobs: Array.from({ length: 300 }, () => ({ type: "race" })) });
      const answers = await Promise.all((ids as string[]).map((id) => call(q, "DELETE", `/jobs/${id}`)));
      await waitFor(() => q.pool.inflight === 0 && q.scheduler.readyCount === 0, { what: "the pool settles" });
      const seen = { removed: 0, cancelling: 0, gone: 0 };
      for (const [i, id] of (ids as string[]).entries()) {
        const a = answers[i]!;
        expect([202, 204, 404]).toContain(a.status);
        if (a.status === 204) {
          seen.removed++;
          expect(runs.get(id)).toBeUndefined();
        } else if (a.status === 202) {
          seen.cancelling++;
          expect(runs.get(id)).toBe(1);
        } else {
          seen.gone++;
          expect(runs.get(id)).toBe(1); // it had completed
        }
        expect((await call(q, "GET", `/jobs/${id}`)).status).toBe(404);
      }
      expect(seen.removed + seen.cancelling + seen.gone).toBe(300);
      expect(seen.removed).toBeGreaterThan(0);
      for (const count of runs.values()) expect(count).toBe(1);
      await q.shutdown(1000);
    });
  });
}
