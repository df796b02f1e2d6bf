// keep-completed.test.ts: --keep-completed on a whole queue node, on both stores: a completed job
// answers GET /jobs/:id as "completed" with its result, holds its idempotency key, counts in
// /stats, and is pruned by the maintenance loop once it is older than the keep time.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

const KEEP_MS = 3_600_000;

for (const kind of STORE_KINDS) {
  describe(`--keep-completed on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => {
      await site.drop();
    });

    test("a completed job is shown with its result and holds its key until the record is pruned", async () => {
      let now = Date.now();
      const q = await startQueue(site.open(), {
        thumbs: (job) => `made ${(job.payload as { n: number }).n} thumbnails`,
        chatty: () => "é".repeat(5000),
        silent: () => ({ not: "a string" }),
      }, { clock: () => now, keepCompletedMs: KEEP_MS, reapIntervalMs: 100 });
      const a = await call(q, "POST", "/submit", { type: "thumbs", payload: { n: 3 }, idempotencyKey: "thumbs-for-upload-1" });
      const b = await call(q, "POST", "/submit", { jobs: [{ type: "chatty" }, { type: "silent" }] });
      await waitFor(async () => (await call(q, "GET", `/jobs/${a.body.id}`)).body.state === "completed", { what: "a completed" });
      const view = (await call(q, "GET", `/jobs/${a.body.id}`)).body;
      expect(view).toMatchObject({ id: a.body.id, type: "thumbs", state: "completed", attempts: 1, result: "made 3 thumbnails", payload: null });
      expect(Date.parse(view.finishedAt)).toBe(now);
      await waitFor(async () => (await call(q, "GET", `/jobs/${b.body.ids[1]}`)).body.state === "completed", { what: "b completed" });
      // A result is cut at 4 KiB (2048 two-byte characters); a non-string result is not kept.
      expect((await call(q, "GET", `/jobs/${b.body.ids[0]}`)).body.result).toBe("é".repeat(2048));
      expect((await call(q, "GET", `/jobs/${b.body.ids[1]}`)).body.result).toBeNull();
      expect(await call(q, "POST", "/submit", { type: "thumbs", payload: { n: 9 }, idempotencyKey: "thumbs-for-upload-1" }))
        .toEqual({ status: 200, body: { id: a.body.id, duplicate: true } });
      expect((await call(q, "GET", "/stats")).body.types.thumbs).toEqual({ pending: 0, scheduled: 0, inflight: 0, dead: 0, completed: 1 });
      // An hour later the maintenance loop prunes the records and frees the key.
      now += KEEP_MS + 1;
      await waitFor(async () => (await call(q, "GET", `/jobs/${a.body.id}`)).status === 404, { what: "pruned" });
      await waitFor(async () => (await call(q, "GET", "/stats")).body.jobs.completed === 0, { what: "all pruned" });
      const again = await call(q, "POST", "/submit", { type: "thumbs", payload: { n: 1 }, idempotencyKey: "thumbs-for-upload-1" });
      expect(again.status).toBe(202);
      expect(again.body.id).not.toBe(a.body.id);
      await q.shutdown(1000);
    });

    test("a kept record expires on its own time after the setting is turned off, and frees its key", async () => {
      let now = Date.now();
      const kept = await startQueue(site.open(), { once: () => "done" }, { clock: () => now, keepCompletedMs: KEEP_MS });
      const a = await call(kept, "POST", "/submit", { type: "once", idempotencyKey: "key-of-a-kept-record" });
      await waitFor(async () => (await call(kept, "GET", `/jobs/${a.body.id}`)).body.state === "completed", { what: "a completed" });
      await kept.shutdown(1000);
      // Restarted without --keep-completed: the record stays until its own expiry, then goes.
      const plain = await startQueue(site.open(), { once: () => "done" }, { clock: () => now, keepCompletedMs: 0, reapIntervalMs: 50 });
      try {
        expect((await call(plain, "GET", `/jobs/${a.body.id}`)).body.state).toBe("completed");
        now += KEEP_MS + 1;
        await waitFor(async () => (await call(plain, "GET", `/jobs/${a.body.id}`)).status === 404, { what: "the record pruned" });
        const again = await call(plain, "POST", "/submit", { type: "once", idempotencyKey: "key-of-a-kept-record" });
        expect(again.status).toBe(202);
        expect(again.body.id).not.toBe(a.body.id);
      } finally {
        await plain.shutdown(1000);
      }
    });

    test("without --keep-completed a completed job is gone at once", async () => {
      const q = await startQueue(site.open(), { quick: () => "ignored" });
      const { body: { id } } = await call(q, "POST", "/submit", { type: "quick" });
      await waitFor(() => q.metrics.counterValue("jobqueue_jobs_completed_total") === 1, { what: "completed" });
      expect((await call(q, "GET", `/jobs/${id}`)).status).toBe(404);
      await q.shutdown(1000);
    });
  });
}
