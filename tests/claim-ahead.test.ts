// claim-ahead.test.ts: with short handlers, claims take more jobs than there are free worker slots
// (--claim-ahead-ms); those wait on the node for a slot, in the heap's order, never more handlers at
// once than --workers. A waiting job can be cancelled (it never runs), and a shutdown hands the
// waiting ones straight back uncounted. On both stores, through the real queue.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Store } from "../src/store/store.ts";
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

for (const kind of STORE_KINDS) {
  describe(`claiming ahead on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeEach(async () => {
      site = await storeSite(kind);
    });
    afterEach(async () => {
      await site.drop();
    });

    test("short jobs are claimed ahead of free slots, run in priority order, never more at once than the workers", async () => {
      let running = 0;
      let most = 0;
      let mostWaiting = 0;
      const order: number[] = [];
      const pool: { waitingForSlot: number }[] = [];
      const q = await startQueue(site.open(), {
        short: async (job) => {
          running++;
          most = Math.max(most, running);
          mostWaiting = Math.max(mostWaiting, pool[0]?.waitingForSlot ?? 0);
          order.push((job.payload as { p: number }).p);
          await Promise.resolve();
          running--;
        },
      }, { workers: 2, claimAheadMs: 50, agingMs: 3_600_000 });
      pool.push(q.pool);
      try {
        // Warm up: the pool learns that handlers here are short.
        await call(q, "POST", "/submit", { jobs: Array.from({ length: 20 }, () => ({ type: "short", payload: { p: -1 } })) });
        await waitFor(() => order.length === 20, { what: "the warm-up jobs" });
        order.length = 0;
        // A backlog of mixed priorities, committed at once while the node looks elsewhere (a paused type).
        await call(q, "POST", "/types/short/pause");
        const priorities = Array.from({ length: 300 }, (_, i) => (i * 37) % 100);
        await call(q, "POST", "/submit", { jobs: priorities.map((p) => ({ type: "short", priority: p, payload: { p } })) });
        await call(q, "POST", "/types/short/resume");
        await waitFor(() => order.length === 300, { what: "the backlog" });
        expect(most).toBeLessThanOrEqual(2);
        expect(mostWaiting).toBeGreaterThan(2); // claims went ahead of the 2 slots
        // Most urgent first (an hour of aging per level: priority alone decides), up to the claims' batches: every job
        // ran before any job of a lower priority that was claimed in a later batch.
        const sorted = [...priorities].sort((a, b) => b - a);
        const inversions = order.filter((p, i) => i > 0 && p > order[i - 1]!).length;
        expect(order.slice().sort((a, b) => b - a)).toEqual(sorted);
        expect(inversions).toBeLessThanOrEqual(priorities.length / 10);
        expect(await (await q.app.request("/metrics")).text()).toContain("jobqueue_jobs_claimed_ahead 0");
      } finally {
        await q.shutdown(1000);
      }
    });

    test("a job waiting for a slot can be cancelled, and a shutdown hands the waiting ones back uncounted", async () => {
      let open: () => void = () => {};
      const gate = new Promise<void>((r) => (open = r));
      const started: number[] = [];
      const store: Store = site.open();
      const q = await startQueue(store, {
        warm: () => {},
        held: async (job) => {
          started.push(job.id);
          await gate;
        },
      }, { workers: 1, claimAheadMs: 50 });
      let stopped = false;
      try {
        await call(q, "POST", "/submit", { jobs: Array.from({ length: 10 }, () => ({ type: "warm" })) });
        await waitFor(async () => (await store.stats(Date.now())).types.every((t) => t.type !== "warm" || t.pending + t.inflight === 0), { what: "the warm-up" });
        const ids = ((await call(q, "POST", "/submit", { jobs: Array.from({ length: 5 }, () => ({ type: "held" })) })).body.ids as string[]).map(Number);
        await waitFor(() => started.length === 1 && q.pool.waitingForSlot === 4, { what: "one running and four waiting" });
        // All five are leased to this node; one waiting is cancelled: its row goes, it never runs.
        const victim = ids.find((id) => !started.includes(id))!;
        expect((await call(q, "DELETE", `/jobs/${victim}`)).status).toBe(204);
        expect((await call(q, "GET", `/jobs/${victim}`)).status).toBe(404);
        expect(q.pool.waitingForSlot).toBe(3);
        // Shutdown: the three still waiting go back to pending at once, their attempt not counted.
        const stopping = q.shutdown(5000);
        stopped = true;
        open();
        await stopping;
        const waitingIds = ids.filter((id) => id !== victim && id !== started[0]);
        expect(started).toHaveLength(1);
        const reopened = site.open();
        try {
          for (const id of waitingIds) expect(await reopened.get(id, Date.now())).toMatchObject({ state: "pending", attempts: 0 });
        } finally {
          await reopened.close();
        }
      } finally {
        open();
        if (!stopped) await q.shutdown(1000);
      }
    });

    test("a submit while every worker is busy is born leased into the waiting line (no claim), behind the jobs already waiting", async () => {
      let open: () => void = () => {};
      const gate = new Promise<void>((r) => (open = r));
      const ran: string[] = [];
      const q = await startQueue(site.open(), {
        short: (job) => void ran.push(`short ${(job.payload as { n: number }).n}`),
        blocker: async () => {
          ran.push("blocker");
          await gate;
        },
      }, { workers: 1, claimAheadMs: 50 });
      try {
        await call(q, "POST", "/submit", { jobs: Array.from({ length: 10 }, (_, n) => ({ type: "short", payload: { n: -1 - n } })) });
        await waitFor(() => ran.length === 10, { what: "the warm-up" });
        await call(q, "POST", "/submit", { type: "blocker" });
        await waitFor(() => ran.includes("blocker"), { what: "the slot held" });
        const before = q.metrics.counterValue("jobqueue_jobs_born_leased_total");
        await call(q, "POST", "/submit", { jobs: [0, 1, 2].map((n) => ({ type: "short", payload: { n } })) });
        // Committed leased to this node: waiting here for the slot the moment the submit answered.
        expect(q.metrics.counterValue("jobqueue_jobs_born_leased_total") - before).toBe(3);
        expect(q.pool.waitingForSlot).toBe(3);
        await call(q, "POST", "/submit", { type: "short", priority: 100, payload: { n: 3 } });
        expect(q.pool.waitingForSlot).toBe(4);
        open();
        await waitFor(() => ran.length === 15, { what: "the waiting jobs" });
        // In the order they were leased: a later one waits behind them (about --claim-ahead-ms).
        expect(ran.slice(11)).toEqual(["short 0", "short 1", "short 2", "short 3"]);
      } finally {
        open();
        await q.shutdown(1000);
      }
    });

    test("a rate-limited type whose burst spans under a second is never claimed ahead: its starts are counted when claimed, so its jobs wait in the store, not for a slot here", async () => {
      let open: () => void = () => {};
      const gate = new Promise<void>((r) => (open = r));
      const ran: string[] = [];
      const store: Store = site.open();
      const q = await startQueue(store, {
        short: () => void ran.push("short"),
        blocker: async () => {
          ran.push("blocker");
          await gate;
        },
        rated: { handler: () => void ran.push("rated"), policy: { flow: { rate: { limit: 1000, perMs: 1000, burst: 100 } } } },
      }, { workers: 2, claimAheadMs: 50 });
      try {
        // Warm up (handlers here are short, so claims go ahead), then both slots held by blockers.
        await call(q, "POST", "/submit", { jobs: Array.from({ length: 10 }, () => ({ type: "short" })) });
        await waitFor(() => ran.length === 10, { what: "the warm-up" });
        await call(q, "POST", "/submit", { jobs: [{ type: "blocker" }, { type: "blocker" }] });
        await waitFor(() => ran.filter((t) => t === "blocker").length === 2, { what: "both slots held" });
        // The rated jobs are more urgent than the short one submitted after them; only the short one is
        // claimed ahead to wait for a slot, the rated ones stay pending in the store.
        await call(q, "POST", "/submit", { jobs: Array.from({ length: 5 }, () => ({ type: "rated" })) });
        await call(q, "POST", "/submit", { type: "short" });
        await waitFor(() => q.pool.waitingForSlot === 1, { what: "the short job claimed ahead" });
        const rated = (await store.stats(Date.now())).types.find((t) => t.type === "rated");
        expect(rated).toMatchObject({ pending: 5, inflight: 0 });
        open();
        await waitFor(() => ran.filter((t) => t === "rated").length === 5, { what: "the rated jobs, once slots are free" });
      } finally {
        open();
        await q.shutdown(1000);
      }
    });

    test("a rated type whose burst holds a second's starts is claimed ahead, its claims weighing 100 ms of starts less; one that waits past 100 ms goes back without using an attempt", async () => {
      let now = Date.now();
      const gates: Array<() => void> = [];
      const ran: string[] = [];
      const store: Store = site.open();
      // The real store, with its hand-backs noted.
      const released: number[] = [];
      const release = store.release.bind(store);
      store.release = (async (...args: Parameters<Store["release"]>) => {
        released.push(...args[0].map((r) => r.id));
        return await release(...args);
      }) as Store["release"];
      const q = await startQueue(store, {
        short: () => void ran.push("short"),
        blocker: async () => {
          ran.push("blocker");
          await new Promise<void>((r) => gates.push(r));
        },
        // 1,000 starts a second, 1,000 back to back: claims weigh a burst of 900 (100 ms of starts less).
        capped: { handler: (job) => void ran.push(`capped ${job.id} attempt ${job.attempt}`), policy: { flow: { rate: { limit: 1000, perMs: 1000, burst: 1000 } } } },
      }, { workers: 1, claimAheadMs: 50, clock: () => now });
      try {
        const types = (await call(q, "GET", "/types")).body.types as Array<{ type: string; tokens?: number }>;
        expect(types.find((t) => t.type === "capped")?.tokens).toBe(900);
        await call(q, "POST", "/submit", { jobs: Array.from({ length: 10 }, () => ({ type: "short" })) });
        await waitFor(() => ran.length === 10, { what: "the warm-up" });

        // The slot held: the rated jobs are claimed ahead and wait here, and start from the line when it frees.
        await call(q, "POST", "/submit", { type: "blocker" });
        await waitFor(() => gates.length === 1, { what: "the slot held" });
        const onTime = ((await call(q, "POST", "/submit", { jobs: Array.from({ length: 3 }, () => ({ type: "capped" })) })).body.ids as string[]).map(Number);
        await waitFor(() => q.pool.waitingForSlot === 3, { what: "the rated jobs claimed ahead" });
        gates[0]!();
        await waitFor(() => ran.filter((r) => r.startsWith("capped")).length === 3, { what: "the rated jobs from the line" });
        expect(released).toEqual([]);

        // Again, but the slot frees 150 ms after their claim: they go back, uncounted, and run from a later claim.
        await call(q, "POST", "/submit", { type: "blocker" });
        await waitFor(() => gates.length === 2, { what: "the slot held again" });
        const late = ((await call(q, "POST", "/submit", { jobs: Array.from({ length: 3 }, () => ({ type: "capped" })) })).body.ids as string[]).map(Number);
        await waitFor(() => q.pool.waitingForSlot === 3, { what: "the rated jobs claimed ahead again" });
        now += 150;
        gates[1]!();
        await waitFor(() => ran.filter((r) => r.startsWith("capped")).length === 6, { what: "the late jobs, claimed again" });
        expect(released.sort()).toEqual([...late].sort());
        expect(await (await q.app.request("/metrics")).text()).toContain('jobqueue_flow_held_total{type="capped",reason="rate_limit"} 3');
        // Each went back on its own, so they come back in any order; every start is its first attempt.
        const capped = ran.filter((r) => r.startsWith("capped"));
        expect(capped.slice(0, 3)).toEqual(onTime.map((id) => `capped ${id} attempt 1`));
        expect(capped.slice(3).sort()).toEqual(late.map((id) => `capped ${id} attempt 1`).sort());
      } finally {
        for (const open of gates) open();
        await q.shutdown(1000);
      }
    });
  });
}
