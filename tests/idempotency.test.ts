// idempotency.test.ts: idempotency keys on a whole queue node, on both stores: concurrent identical
// submits make one job, a key holds while its job is pending, running or dead, and is free again
// once the job completes or is deleted.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

for (const kind of STORE_KINDS) {
  describe(`idempotency keys on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => {
      await site.drop();
    });

    test("twenty identical submits at once make one job that runs once; the others are 200 duplicates of it", async () => {
      const runs: string[] = [];
      const q = await startQueue(site.open(), { charge: (job) => void runs.push(String(job.id)) });
      const answers = await Promise.all(Array.from({ length: 20 }, () => call(q, "POST", "/submit", { type: "charge", idempotencyKey: "invoice-9" })));
      const created = answers.filter((a) => a.status === 202);
      expect(created).toHaveLength(1);
      const id = created[0]!.body.id;
      for (const a of answers.filter((x) => x.status !== 202)) expect(a).toEqual({ status: 200, body: { id, duplicate: true } });
      await waitFor(() => runs.length === 1, { what: "the job runs" });
      expect(q.metrics.counterValue("jobqueue_jobs_submitted_total")).toBe(1);
      await q.shutdown(1000);
      expect(runs).toEqual([id]);
    });

    test("a key holds while its job runs and while it is dead, and is free once the job completes or is deleted", async () => {
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => (release = r));
      const q = await startQueue(site.open(), { gated: () => gate, doomed: () => { throw new Error("no"); } });
      const first = await call(q, "POST", "/submit", { type: "gated", idempotencyKey: "k1" });
      await waitFor(async () => (await call(q, "GET", `/jobs/${first.body.id}`)).body.state === "inflight", { what: "running" });
      expect(await call(q, "POST", "/submit", { type: "gated", idempotencyKey: "k1" })).toEqual({ status: 200, body: { id: first.body.id, duplicate: true } });
      release();
      await waitFor(async () => (await call(q, "GET", `/jobs/${first.body.id}`)).status === 404, { what: "completed" });
      const second = await call(q, "POST", "/submit", { type: "gated", idempotencyKey: "k1" });
      expect(second.status).toBe(202);
      expect(second.body.id).not.toBe(first.body.id);

      const dead = await call(q, "POST", "/submit", { type: "doomed", maxAttempts: 1, idempotencyKey: "k2" });
      await waitFor(async () => (await call(q, "GET", `/jobs/${dead.body.id}`)).body.state === "dead", { what: "dead" });
      expect((await call(q, "POST", "/submit", { type: "doomed", idempotencyKey: "k2" })).body).toEqual({ id: dead.body.id, duplicate: true });
      expect((await call(q, "DELETE", `/dead/${dead.body.id}`)).status).toBe(204);
      expect((await call(q, "POST", "/submit", { type: "doomed", maxAttempts: 1, idempotencyKey: "k2" })).status).toBe(202);
      await q.shutdown(1000);
    });

    test("a batch naming one key twice makes one job for it, and a later batch finds it", async () => {
      const q = await startQueue(site.open(), { later: () => {} });
      const batch = await call(q, "POST", "/submit", { jobs: [
        { type: "later", delayMs: 60_000, idempotencyKey: "b1" }, { type: "later", delayMs: 60_000 }, { type: "later", delayMs: 60_000, idempotencyKey: "b1" },
      ] });
      expect(batch.status).toBe(202);
      expect(batch.body.duplicates).toEqual([false, false, true]);
      expect(batch.body.ids[2]).toBe(batch.body.ids[0]);
      expect(q.scheduler.scheduledCount).toBe(2);
      const again = await call(q, "POST", "/submit", { jobs: [{ type: "later", idempotencyKey: "b1" }] });
      expect(again).toEqual({ status: 200, body: { ids: [batch.body.ids[0]], duplicates: [true] } });
      await q.shutdown(1000);
    });
  });
}
