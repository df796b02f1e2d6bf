// workers-cancel.test.ts: the worker pool's cancel() and settled() on a real embedded store whose
// claims the test lets through by hand (each claim waits at a gate, then runs for real), so the
// interleavings a cancel can meet are played out exactly.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHandlerRegistry } from "../src/handlers/handler.ts";
import { createLogger } from "../src/logger.ts";
import { createScheduler } from "../src/queue/scheduler.ts";
import { createSqliteStore } from "../src/store/sqlite/index.ts";
import type { Store } from "../src/store/store.ts";
import { createWorkerPool } from "../src/pool/pool.ts";
import { job } from "./store.contract.ts";
import { waitFor } from "./support/wait.ts";

const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});

async function harness() {
  const now = 1_000_000;
  const real = createSqliteStore({ path: join(mkdtempSync(join(tmpdir(), "jq-cancel-")), "jobs.db") });
  stores.push(real);
  await real.migrate();
  /** Claims waiting at the gate; open() lets one run against the real store. */
  const claims: Array<{ ids: number[]; open: () => void }> = [];
  const store: Store = {
    ...real,
    claim: (ids, owner, at, leaseMs) =>
      new Promise<void>((open) => claims.push({ ids, open })).then(() => real.claim(ids, owner, at, leaseMs)),
  };
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
  /** A real pending row, placed in the scheduler as a submit would. */
  const submit = async () => {
    const [id] = await real.insert([job({ type: "t", runAt: now })], now);
    scheduler.add(id!, 0, now, now, "t");
    return id!;
  };
  return { now, real, claims, aborted, scheduler, pool, submit };
}

test("settled() waits for the claims out when it was called, not for claims started later", async () => {
  const h = await harness();
  h.pool.start();
  const first = await h.submit();
  await waitFor(() => h.claims.length === 1, { what: "first claim out" });
  let settled = false;
  const waiting = h.pool.settled(first).then(() => (settled = true));
  const second = await h.submit();
  expect(h.claims.length).toBe(1); // one claim out at a time: the second job waits for the next one
  expect(settled).toBe(false);
  // The first claim lands (it takes the first job) and the next claim goes out at once:
  // settled() resolves though that later claim is still out.
  h.claims[0]!.open();
  await waiting;
  await waitFor(() => h.claims.length === 2, { what: "second claim out" });
  expect(h.pool.cancel(first)).toBe(true);
  await waitFor(async () => (await h.real.get(first, h.now)) === null, { what: "the cancelled job's row removed" });
  expect(h.aborted).toEqual(["CancelledError"]);
  expect(h.pool.cancel(second)).toBe(false); // still being claimed: not running here yet
  h.claims[1]!.open();
  await h.pool.settled(second);
  expect(await h.real.get(second, h.now)).toMatchObject({ state: "inflight", attempts: 1, owner: "me" });
  await h.pool.stop(0);
});
