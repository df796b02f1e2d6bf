// direct-start.test.ts: a job submitted while its node has idle slots and nothing queued is
// inserted already claimed (one commit) and runs at once; everything else still queues. On both stores.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

for (const kind of STORE_KINDS) {
  describe(`direct start on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => {
      await site.drop();
    });

    test("with two idle slots, the two most urgent jobs of a batch are inflight when the 202 arrives; the rest wait in pending", async () => {
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => (release = r));
      const ran: number[] = [];
      const q = await startQueue(site.open(), { held: async (job) => { ran.push(job.id); await gate; } }, { workers: 2 });
      try {
        const priorities = [0, 5, 1, 9, 0];
        const res = await call(q, "POST", "/submit", { jobs: priorities.map((priority) => ({ type: "held", priority })) });
        expect(res.status).toBe(202);
        const ids: string[] = res.body.ids;
        // Read straight after the answer: the leased rows were written by the insert itself.
        const views = await Promise.all(ids.map(async (id) => (await call(q, "GET", `/jobs/${id}`)).body));
        expect(views.map((v) => v.state)).toEqual(["pending", "inflight", "pending", "inflight", "pending"]);
        for (const v of views.filter((x) => x.state === "inflight")) expect(v.attempts).toBe(1);
        await waitFor(() => ran.length === 2, { what: "the two leased jobs start" });
        expect(ran.sort((a, b) => a - b)).toEqual([Number(ids[1]), Number(ids[3])]);
        // Slots are full now: a new job queues behind the others instead of starting.
        const later = await call(q, "POST", "/submit", { type: "held", priority: 100 });
        expect((await call(q, "GET", `/jobs/${later.body.id}`)).body.state).toBe("pending");
        release();
        await waitFor(() => q.metrics.counterValue("jobqueue_jobs_completed_total") === 6, { what: "all six completed" });
        expect(ran).toHaveLength(6);
        expect((await call(q, "GET", `/jobs/${later.body.id}`)).status).toBe(404);
      } finally {
        release();
        await q.shutdown(1000);
      }
    });

    test("a type at its concurrency limit gets no direct start: the rest of the batch waits in pending", async () => {
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => (release = r));
      const q = await startQueue(site.open(), { single: { handler: () => gate, policy: { concurrency: 1 } } }, { workers: 4 });
      try {
        const res = await call(q, "POST", "/submit", { jobs: [{ type: "single" }, { type: "single" }, { type: "single" }] });
        expect(res.status).toBe(202);
        const states = await Promise.all((res.body.ids as string[]).map(async (id) => (await call(q, "GET", `/jobs/${id}`)).body.state));
        expect(states).toEqual(["inflight", "pending", "pending"]);
        release();
        await waitFor(() => q.metrics.counterValue("jobqueue_jobs_completed_total") === 3, { what: "all three completed" });
      } finally {
        release();
        await q.shutdown(1000);
      }
    });

    test("a duplicate key gives its reserved slot back: the job runs once and the node drains and stops", async () => {
      const runs: number[] = [];
      const q = await startQueue(site.open(), { once: (job) => void runs.push(job.id) }, { workers: 1 });
      const first = await call(q, "POST", "/submit", { type: "once", idempotencyKey: "direct-k" });
      expect(first.status).toBe(202);
      await waitFor(() => runs.length === 1, { what: "the job ran" });
      // Completed and not kept: the key was released, so this one is new; then a duplicate of it.
      await waitFor(async () => (await call(q, "GET", `/jobs/${first.body.id}`)).status === 404, { what: "completed" });
      const second = await call(q, "POST", "/submit", { type: "once", idempotencyKey: "direct-k", delayMs: 60_000 });
      const dup = await call(q, "POST", "/submit", { type: "once", idempotencyKey: "direct-k" });
      expect(dup).toEqual({ status: 200, body: { id: second.body.id, duplicate: true } });
      // The duplicate's slot came back: a fresh job still starts on the single worker.
      const third = await call(q, "POST", "/submit", { type: "once" });
      await waitFor(() => runs.includes(Number(third.body.id)), { what: "a fresh job ran" });
      expect(runs).toEqual([Number(first.body.id), Number(third.body.id)]);
      await q.shutdown(1000);
      expect(q.state).toBe("stopped");
    });
  });
}
