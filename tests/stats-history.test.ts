// stats-history.test.ts: the node's second-by-second history: the ring under a fake clock (what a
// step counts, levels, the mean wait, gaps, wrapping at its capacity), its timer (never keeps the
// process alive, stops), and GET /stats/history on a real queue.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createStatsHistory, type HistoryReading } from "../src/queue/stats-history.ts";
import { STORE_KINDS, call, startQueue, storeSite, type TestQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

const T0 = 1_700_000_000_000;

function reading(over: Partial<HistoryReading> = {}): HistoryReading {
  return { submitted: 0, completed: 0, failed: 0, dead: 0, started: 0, waitMs: 0, ready: 0, scheduled: 0, running: 0, ...over };
}

describe("the history ring", () => {
  test("each sample holds what the totals grew by since the last one, the levels as read, and the mean wait", () => {
    let now = reading();
    const h = createStatsHistory({ clock: () => T0, read: () => now, capacity: 10 });
    expect(h.tick(T0)).toEqual({ sampled: false }); // the baseline
    expect(h.view(T0)).toEqual({ stepMs: 1000, start: null, series: { submitted: [], completed: [], failed: [], dead: [], ready: [], scheduled: [], running: [], waitMs: [] } });
    now = reading({ submitted: 5, completed: 2, failed: 1, dead: 1, started: 4, waitMs: 10, ready: 3, scheduled: 7, running: 2 });
    expect(h.tick(T0 + 1000)).toEqual({ sampled: true });
    now = reading({ submitted: 5, completed: 4, failed: 1, dead: 1, started: 4, waitMs: 10, ready: 1, scheduled: 7, running: 0 });
    h.tick(T0 + 2000);
    expect(h.view(T0 + 2500)).toEqual({
      stepMs: 1000, start: T0 + 1000,
      series: { submitted: [5, 0], completed: [2, 2], failed: [1, 0], dead: [1, 0], ready: [3, 1], scheduled: [7, 7], running: [2, 0], waitMs: [2.5, null] },
    });
  });

  test("a second tick within one step adds its events to the next sample, and a missed step is a gap", () => {
    let submitted = 0;
    const h = createStatsHistory({ clock: () => T0, read: () => reading({ submitted }), capacity: 10 });
    h.tick(T0);
    submitted = 1;
    h.tick(T0 + 1000);
    submitted = 3;
    expect(h.tick(T0 + 1500)).toEqual({ sampled: false });
    submitted = 4;
    h.tick(T0 + 2000);
    submitted = 10;
    h.tick(T0 + 4000); // the step at T0 + 3000 had no tick
    expect(h.view(T0 + 4000).series.submitted).toEqual([1, 3, null, 6]);
  });

  test("keeps only the last `capacity` steps, oldest first, however long it runs", () => {
    let submitted = 0;
    const h = createStatsHistory({ clock: () => T0, read: () => reading({ submitted, ready: submitted }), capacity: 5 });
    for (let i = 0; i <= 12; i++) {
      submitted += i;
      h.tick(T0 + i * 1000);
    }
    const v = h.view(T0 + 12_000);
    expect(v.start).toBe(T0 + 8000);
    expect(v.series.submitted).toEqual([8, 9, 10, 11, 12]);
    expect(v.series.ready).toEqual([36, 45, 55, 66, 78]);
    // Asked later than its last sample, it still answers up to that sample.
    expect(h.view(T0 + 14_000).series.submitted).toEqual([8, 9, 10, 11, 12]);
  });

  test("its timer samples every step, never keeps the process alive, and stops", async () => {
    let reads = 0;
    const h = createStatsHistory({ clock: Date.now, read: () => (reads++, reading()), stepMs: 5 });
    h.start();
    await waitFor(() => reads >= 4, { what: "ticks on the timer" });
    h.stop();
    const stopped = reads;
    await Bun.sleep(50); // ten steps: none may tick now
    expect(reads).toBe(stopped);

    // A process whose only timer is a started history exits by itself.
    const module = join(import.meta.dir, "..", "src", "queue", "stats-history.ts");
    const script = `import { createStatsHistory } from ${JSON.stringify(module)};
      createStatsHistory({ clock: Date.now, read: () => ({ submitted: 0, completed: 0, failed: 0, dead: 0, started: 0, waitMs: 0, ready: 0, scheduled: 0, running: 0 }) }).start();`;
    const child = Bun.spawn({ cmd: [process.execPath, "-e", script], stdout: "ignore", stderr: "pipe" });
    expect(await child.exited).toBe(0);
  });
});

for (const kind of STORE_KINDS) {
  describe(`GET /stats/history on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    let q: TestQueue;
    beforeAll(async () => {
      site = await storeSite(kind);
      q = await startQueue(site.open(), { quick: () => {}, broken: () => { throw new Error("no"); } });
    });
    afterAll(async () => {
      await q?.shutdown(0);
      await site?.drop();
    });

    test("answers the node's samples: what it submitted, completed, failed and dead-lettered, second by second", async () => {
      await call(q, "POST", "/submit", { jobs: [{ type: "quick" }, { type: "quick" }, { type: "quick" }, { type: "broken", maxAttempts: 1 }] });
      const sum = (xs: (number | null)[]) => xs.reduce<number>((a, b) => a + (b ?? 0), 0);
      const h = await waitFor(async () => {
        const res = await call(q, "GET", "/stats/history");
        const s = res.body.series;
        return res.status === 200 && sum(s.completed) === 3 && sum(s.dead) === 1 ? res.body : null;
      }, { what: "the jobs in the history" });
      expect(h.stepMs).toBe(1000);
      expect(h.start).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(sum(h.series.submitted)).toBe(4);
      expect(sum(h.series.failed)).toBe(1);
      const lengths = new Set(Object.values(h.series as Record<string, unknown[]>).map((xs) => xs.length));
      expect(lengths.size).toBe(1);
      expect([...lengths][0]).toBeGreaterThan(0);
      expect([...lengths][0]).toBeLessThanOrEqual(900);
      expect(h.series.waitMs.some((w: number | null) => w !== null && w >= 0)).toBe(true);
    });

    test("is read-only: other methods are 405s", async () => {
      const res = await q.app.request("/stats/history", { method: "POST" });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, HEAD");
    });
  });
}
