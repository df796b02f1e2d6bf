// shutdown.test.ts: a result that exists is settled. A handler that returned before the shutdown
// grace ran out has its completion written even when the store stumbles right then; only attempts
// still running at the deadline are handed back, their attempt not counted. Both stores.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { StoreUnavailableError } from "../src/errors.ts";
import type { Store } from "../src/store/store.ts";
import { STORE_KINDS, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

/** The real store, whose completions fail while `failures` is above zero (each failure uses one up). */
function stumblingCompletions(store: Store) {
  const state = { failures: 0, calls: 0 };
  const wrapped: Store = {
    ...store,
    complete: async (...args) => {
      state.calls++;
      if (state.failures > 0) {
        state.failures--;
        throw new StoreUnavailableError("complete: the connection was refused");
      }
      return store.complete(...args);
    },
  };
  return { store: wrapped, state };
}

for (const kind of STORE_KINDS) {
  describe(`shutdown on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => site.drop());

    test("a handler that returned just before the grace ran out is completed, even when the store stumbles at that moment", async () => {
      const { store, state } = stumblingCompletions(site.open());
      let finish: (() => void) | null = null;
      const q = await startQueue(store, {
        slow: () => new Promise<void>((resolve) => (finish = resolve)),
        stuck: (_job, signal) => new Promise<void>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
      }, { workers: 2, leaseMs: 60_000 });
      const [done] = await q.submit([{ type: "slow", payload: "{}", priority: 0, maxAttempts: 3, runAt: Date.now(), timeoutMs: null }]);
      const [held] = await q.submit([{ type: "stuck", payload: "{}", priority: 0, maxAttempts: 3, runAt: Date.now(), timeoutMs: null }]);
      await waitFor(() => finish !== null && q.pool.busy === 2, { what: "both handlers running" });
      // The first completion try fails before the grace ends, the second after it.
      state.failures = 2;
      const stopping = q.shutdown(40);
      finish!();
      const result = await stopping;
      expect(state.calls).toBeGreaterThanOrEqual(3);
      expect(result).toEqual({ finished: 1, released: 1 });
      const check = site.open();
      try {
        expect(await check.get(done!, Date.now())).toBeNull(); // completed, not left to run again
        expect(await check.get(held!, Date.now())).toMatchObject({ state: "pending", attempts: 0 });
      } finally {
        await check.close();
      }
    });
  });
}
