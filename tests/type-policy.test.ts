// type-policy.test.ts: per-type policy on a whole queue node, on both stores: a concurrency limit
// caps one type without holding up others, a type's backoff and default priority apply, and jobs
// pulled from the store respect the limit too.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { registryFromTypes } from "../src/handlers/from-config.ts";
import { parseTypesConfig } from "../src/config/types-file.ts";
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

for (const kind of STORE_KINDS) {
  describe(`per-type policy on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => {
      await site.drop();
    });

    test("a type at its concurrency limit waits while other types use the free workers", async () => {
      let running = 0;
      let most = 0;
      const gates: Array<() => void> = [];
      const fastDone: string[] = [];
      const q = await startQueue(site.open(), {
        slow: {
          policy: { concurrency: 2 },
          handler: () => {
            running++;
            most = Math.max(most, running);
            return new Promise<void>((resolve) => gates.push(() => { running--; resolve(); }));
          },
        },
        fast: (job) => void fastDone.push(String(job.id)),
      }, { workers: 8 });
      const slow = await call(q, "POST", "/submit", { jobs: Array.from({ length: 6 }, () => ({ type: "slow", priority: 100 })) });
      await waitFor(() => gates.length === 2, { what: "two slow jobs running" });
      // Higher-priority slow jobs are waiting, yet the fast ones run on the free workers.
      const fast = await call(q, "POST", "/submit", { jobs: Array.from({ length: 5 }, () => ({ type: "fast" })) });
      await waitFor(() => fastDone.length === 5, { what: "fast jobs done" });
      expect(fastDone.sort()).toEqual([...fast.body.ids].sort());
      expect(running).toBe(2);
      expect(q.scheduler.readyOf("slow")).toBe(4);
      // Each slow job that ends lets exactly one more start.
      while (gates.length < 6) {
        const before = gates.length;
        gates[before - 2]!();
        await waitFor(() => gates.length === before + 1, { what: "the next slow job starts" });
        expect(running).toBe(2);
      }
      gates[4]!();
      gates[5]!();
      for (const id of slow.body.ids) await waitFor(async () => (await call(q, "GET", `/jobs/${id}`)).status === 404, { what: "slow done" });
      expect(most).toBe(2);
      await q.shutdown(1000);
    });

    test("jobs pulled from the store respect the limit, and the rest of that type waits in the table", async () => {
      let running = 0;
      let most = 0;
      const gates: Array<() => void> = [];
      const store = site.open();
      const q = await startQueue(store, {
        capped: {
          policy: { concurrency: 3 },
          handler: () => {
            running++;
            most = Math.max(most, running);
            return new Promise<void>((resolve) => gates.push(() => { running--; resolve(); }));
          },
        },
      }, { workers: 8, reapIntervalMs: 600_000 }); // no polling: only the pool's own pulls find the rows
      // Rows written behind the heap's back (another node's backlog): only a pull finds them.
      const now = Date.now();
      const ids = await store.insert(Array.from({ length: 5 }, () => ({ type: "capped", payload: "null", priority: 0, maxAttempts: 3, runAt: now, timeoutMs: null })), now);
      q.pool.pull();
      await waitFor(() => gates.length === 3, { what: "three pulled" });
      expect(q.metrics.counterValue("jobqueue_jobs_pulled_total")).toBe(3);
      for (let i = 0; i < 5; i++) {
        await waitFor(() => gates.length > i, { what: `job ${i} runs` });
        gates[i]!();
      }
      for (const id of ids) await waitFor(async () => (await call(q, "GET", `/jobs/${id}`)).status === 404, { what: "done" });
      expect(most).toBe(3);
      expect(q.metrics.counterValue("jobqueue_jobs_pulled_total")).toBe(5);
      await q.shutdown(1000);
    });

    test("a type's backoff and default priority come from the types file", async () => {
      const types = parseTypesConfig(
        `[types.patient]\nbuiltin = "noop"\npriority = 42\nbackoff = { base = "1h", cap = "1h" }\nmax_attempts = 3\n`,
        "toml",
        { timeoutMs: 5000, maxAttempts: 5 },
      );
      const fromFile = registryFromTypes(types, { timeoutMs: 5000, maxAttempts: 5, priority: 0 });
      expect(fromFile.get("patient")).toMatchObject({ priority: 42, backoff: { baseMs: 3_600_000, capMs: 3_600_000 }, maxAttempts: 3 });
      // The same policy on a failing handler: retried an hour later (jitter fixed at its maximum).
      const t0 = Date.now();
      const q = await startQueue(site.open(), {
        patient: { policy: { priority: 42, backoff: { baseMs: 3_600_000, capMs: 3_600_000 } }, handler: () => { throw new Error("not yet"); } },
        quick: () => { throw new Error("not yet"); },
      }, { random: () => 0.999_999, backoff: { baseMs: 10, capMs: 10 } });
      const patient = await call(q, "POST", "/submit", { type: "patient" });
      const quick = await call(q, "POST", "/submit", { type: "quick", maxAttempts: 1 });
      await waitFor(async () => (await call(q, "GET", `/jobs/${patient.body.id}`)).body.state === "scheduled", { what: "retry scheduled" });
      const view = (await call(q, "GET", `/jobs/${patient.body.id}`)).body;
      expect(view.priority).toBe(42);
      expect(Date.parse(view.runAt)).toBeGreaterThan(t0 + 3_500_000);
      expect((await call(q, "GET", `/jobs/${quick.body.id}`)).body.priority).toBe(0);
      await q.shutdown(1000);
    });
  });
}
