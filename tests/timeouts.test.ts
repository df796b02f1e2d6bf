// timeouts.test.ts: attempts started together share timers per timeout length; each attempt still
// ends at its own limit, whether its handler ignores the signal or not, and one that finishes in
// time is never touched by its group's timer. On both stores.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

for (const kind of STORE_KINDS) {
  describe(`timeouts on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => {
      await site.drop();
    });

    test("jobs started in one batch time out at their own limits; the one that finishes is completed", async () => {
      const seen = new Map<string, AbortSignal>();
      const q = await startQueue(site.open(), {
        mixed: {
          handler: (job, signal) => {
            const p = job.payload as { name: string; hang: boolean };
            seen.set(p.name, signal);
            // A hanging handler ignores its signal: the pool must still end the attempt.
            return p.hang ? new Promise<never>(() => {}) : "done";
          },
          policy: { timeoutMs: 300, maxAttempts: 1 },
        },
      }, { workers: 4, keepCompletedMs: 60_000 });
      try {
        const res = await call(q, "POST", "/submit", {
          jobs: [
            { type: "mixed", payload: { name: "slow", hang: true } },
            { type: "mixed", payload: { name: "quick", hang: false } },
            { type: "mixed", payload: { name: "short", hang: true }, timeoutMs: 60 },
          ],
        });
        expect(res.status).toBe(202);
        const [slow, quick, short] = res.body.ids as string[];
        const view = async (id: string) => (await call(q, "GET", `/jobs/${id}`)).body;
        await waitFor(async () => (await view(short!)).state === "dead", { what: "the 60 ms job dead" });
        expect((await view(short!)).lastError).toBe("timed out after 60 ms");
        // Each job was ended by its own limit's timer: had the 60 ms timer reached the job with
        // the longer limit, its error would name 60 ms.
        await waitFor(async () => (await view(slow!)).state === "dead", { what: "the 300 ms job dead" });
        expect((await view(slow!)).lastError).toBe("timed out after 300 ms");
        expect(await view(quick!)).toMatchObject({ state: "completed", result: "done" });
        expect(seen.get("quick")!.aborted).toBe(false);
        expect(seen.get("slow")!.aborted).toBe(true);
        expect(seen.get("short")!.aborted).toBe(true);
      } finally {
        await q.shutdown(1000);
      }
    });
  });
}
