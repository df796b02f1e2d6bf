// stats.test.ts: GET /stats on a whole queue node, on both stores: counts by state and type from
// the database, the oldest ready job's age on the queue's clock, and this process's completions
// over the last minute.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

for (const kind of STORE_KINDS) {
  describe(`GET /stats on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => {
      await site.drop();
    });

    test("counts every state per type, ages the oldest ready job, and counts this minute's completions", async () => {
      let now = Date.now();
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => (release = r));
      const q = await startQueue(site.open(), {
        hold: () => gate,
        quick: () => {},
        doomed: () => { throw new Error("no"); },
      }, { workers: 1, clock: () => now });
      await call(q, "POST", "/submit", { type: "hold" });
      await waitFor(() => q.pool.busy === 1, { what: "the worker is held" });
      // The only worker is busy: these wait.
      await call(q, "POST", "/submit", { jobs: [{ type: "quick" }, { type: "quick" }, { type: "doomed", maxAttempts: 1 }, { type: "quick", delayMs: 3_600_000 }] });
      now += 4000;
      const before = await call(q, "GET", "/stats");
      expect(before.status).toBe(200);
      expect(before.body).toEqual({
        jobs: { pending: 3, scheduled: 1, inflight: 1, dead: 0, completed: 0 },
        types: {
          hold: { pending: 0, scheduled: 0, inflight: 1, dead: 0, completed: 0 },
          quick: { pending: 2, scheduled: 1, inflight: 0, dead: 0, completed: 0 },
          doomed: { pending: 1, scheduled: 0, inflight: 0, dead: 0, completed: 0 },
        },
        oldestReadyAgeSeconds: 4,
        completedLastMinute: 0,
      });
      release();
      await waitFor(async () => (await call(q, "GET", "/stats")).body.jobs.dead === 1, { what: "all but the scheduled one done" });
      await waitFor(async () => (await call(q, "GET", "/stats")).body.completedLastMinute === 3, { what: "three completions" });
      const after = (await call(q, "GET", "/stats")).body;
      expect(after.jobs).toEqual({ pending: 0, scheduled: 1, inflight: 0, dead: 1, completed: 0 });
      expect(after.oldestReadyAgeSeconds).toBeNull();
      now += 61_000;
      expect((await call(q, "GET", "/stats")).body.completedLastMinute).toBe(0);
      await q.shutdown(1000);
    });
  });
}
