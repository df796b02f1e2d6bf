// workers-cancel.test.ts: the worker pool's cancel() and settled() against a store whose claims the
// test answers by hand, so the interleavings a cancel can meet are played out exactly.
import { expect, test } from "bun:test";
import { createHandlerRegistry } from "../src/handlers/handler.ts";
import { createLogger } from "../src/logger.ts";
import { createScheduler } from "../src/scheduler.ts";
import type { ClaimRef, ClaimedJob, Store } from "../src/store/store.ts";
import { createWorkerPool } from "../src/workers.ts";
import { waitFor } from "./support/wait.ts";

function harness() {
  const now = 1_000_000;
  const claims: Array<{ ids: number[]; answer: (jobs: ClaimedJob[]) => void }> = [];
  const removed: ClaimRef[] = [];
  const store = {
    blocking: false,
    claim: (ids: number[]) => new Promise<ClaimedJob[]>((answer) => claims.push({ ids, answer })),
    complete: async (refs: ClaimRef[]) => refs.map(() => true),
    completeCancelled: async (refs: ClaimRef[]) => {
      removed.push(...refs);
      return refs.map(() => true);
    },
    extendLeases: async (refs: ClaimRef[]) => refs.map(() => true),
  } as unknown as Store;
  const registry = createHandlerRegistry({ timeoutMs: 60_000, maxAttempts: 3, priority: 0 });
  const aborted: string[] = [];
  registry.register("t", (_job, signal) => new Promise((_, reject) => signal.addEventListener("abort", () => {
    aborted.push((signal.reason as Error).name);
    reject(signal.reason);
  })));
  const scheduler = createScheduler({ agingMs: 0, clock: () => now, onReady: () => pool.pump() });
  const pool = createWorkerPool({
    store, scheduler, registry, clock: () => now, owner: "me", concurrency: 8, leaseMs: 60_000, agingMs: 0,
    backoff: { baseMs: 1, capMs: 1 }, logger: createLogger("silent"),
    events: { started: () => {}, completed: () => {}, failed: () => {}, fenced: () => {}, pulled: () => {} },
  });
  const job = (id: number): ClaimedJob => ({
    id, type: "t", payload: "null", priority: 0, attempts: 1, maxAttempts: 3, timeoutMs: null, runAt: now, createdAt: now, lastError: null,
  });
  return { now, claims, removed, aborted, scheduler, pool, job };
}

test("settled() waits for the claims out when it was called, not for claims started later", async () => {
  const h = harness();
  h.pool.start();
  h.scheduler.add(1, 0, h.now, h.now, "t");
  await waitFor(() => h.claims.length === 1, { what: "first claim out" });
  let settled = false;
  const waiting = h.pool.settled(1).then(() => (settled = true));
  h.scheduler.add(2, 0, h.now, h.now, "t");
  expect(h.claims.length).toBe(1); // one claim out at a time: job 2 waits for the next one
  expect(settled).toBe(false);
  // The first claim lands (it got job 1) and the next claim (job 2) goes out at once:
  // settled() resolves though that later claim is still out.
  h.claims[0]!.answer([h.job(1)]);
  await waiting;
  await waitFor(() => h.claims.length === 2, { what: "second claim out" });
  expect(h.pool.cancel(1)).toBe(true);
  await waitFor(() => h.removed.length === 1, { what: "job 1 removed" });
  expect(h.removed).toEqual([{ id: 1, attempt: 1 }]);
  expect(h.aborted).toEqual(["CancelledError"]);
  expect(h.pool.cancel(2)).toBe(false); // still being claimed: not running here yet
  h.claims[1]!.answer([]);
  await h.pool.settled(2);
  await h.pool.stop(0);
});
