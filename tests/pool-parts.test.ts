// pool-parts.test.ts: the pool's mode door (mode.ts) on its own, and a whole pool handed a real
// store through the narrow PoolStore type (only the moves the pool makes).
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHandlerRegistry } from "../src/handlers/handler.ts";
import { createLogger } from "../src/logger.ts";
import { createPoolMode } from "../src/pool/mode.ts";
import { createWorkerPool, type PoolStore } from "../src/pool/pool.ts";
import { createScheduler } from "../src/queue/scheduler.ts";
import { createSqliteStore } from "../src/store/sqlite/index.ts";
import { waitFor } from "./support/wait.ts";

const silent = createLogger("silent");

/** A pool on `store` with the scheduler that feeds it (no aging: the earlier ready time goes first; a 60 s lease, quiet events). */
function testPool(store: PoolStore, registry: ReturnType<typeof createHandlerRegistry>, concurrency: number, claimAheadMs = 0) {
  const scheduler = createScheduler({ agingMs: 0, clock: Date.now, onReady: () => pool.pump() });
  const pool = createWorkerPool({
    store, scheduler, registry, clock: Date.now, owner: "me", concurrency, leaseMs: 60_000, agingMs: 0, claimAheadMs,
    backoff: { baseMs: 1, capMs: 1 }, logger: silent,
    events: { started: () => {}, completed: () => {}, failed: () => {}, fenced: () => {}, pulled: () => {} },
  });
  return { scheduler, pool };
}

/** A fresh, migrated SQLite store in a temporary directory for `fn`, closed and removed after. */
async function onSqlite(fn: (real: ReturnType<typeof createSqliteStore>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "jq-pool-parts-"));
  const real = createSqliteStore({ path: join(dir, "jobs.db"), synchronous: "NORMAL" });
  try {
    await real.migrate();
    await fn(real);
  } finally {
    await real.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the pool's mode moves only along the machine's edges", () => {
  const mode = createPoolMode({ clock: () => 0, logger: silent, onResume: () => {} });
  expect(mode.current).toBe("new");
  expect(() => mode.enter("sweeping")).toThrow("no move from new to sweeping");
  mode.enter("running");
  expect(() => mode.enter("hardStop")).toThrow("no move from running to hardStop");
  mode.enter("sweeping");
  mode.enter("running");
  mode.enter("stopping");
  expect(mode.stopping).toBe(true);
  expect(() => mode.enter("running")).toThrow("no move from stopping to running");
});

test("a store failure backs off from running and the timer brings the pool back to running", async () => {
  let resumed: () => void = () => {};
  const back = new Promise<void>((r) => (resumed = r));
  const mode = createPoolMode({ clock: () => 0, logger: silent, onResume: () => resumed() });
  mode.enter("running");
  mode.backOff("claim failed", new Error("down"));
  expect(mode.current).toBe("backingOff");
  await back;
  expect(mode.current).toBe("running");
});

test("stopping, a store failure only counts: the pool neither backs off nor leaves its stop", () => {
  const mode = createPoolMode({ clock: () => 0, logger: silent, onResume: () => {} });
  mode.enter("running");
  mode.enter("stopping");
  mode.backOff("claim failed", new Error("down"));
  expect(mode.current).toBe("stopping");
});

test("hardStopAt is unset until the grace runs out, then the moment it did", () => {
  let now = 100;
  const mode = createPoolMode({ clock: () => now, logger: silent, onResume: () => {} });
  mode.enter("running");
  mode.enter("stopping");
  expect(mode.hardStopAt).toBeNull();
  now = 250;
  mode.enter("hardStop");
  expect(mode.hardStopAt).toBe(250);
});

test("a pool given only the store moves it makes (a real store, typed PoolStore) claims, runs and completes a job", async () => {
  await onSqlite(async (real) => {
    const now = Date.now();
    const [id] = await real.insert([{ type: "t", payload: '{"n":1}', priority: 0, maxAttempts: 3, runAt: now, timeoutMs: null }], now);
    const store: PoolStore = real; // the pool sees only the moves it makes
    const registry = createHandlerRegistry({ timeoutMs: 60_000, maxAttempts: 3, priority: 0 });
    const seen: unknown[] = [];
    registry.register("t", (job) => void seen.push(job.payload));
    const { scheduler, pool } = testPool(store, registry, 2);
    pool.start();
    scheduler.add(id!, 0, now, now, "t");
    await waitFor(async () => (await real.get(id!, Date.now())) === null && pool.inflight === 0, { what: "the job completed in the store" });
    expect(seen).toEqual([{ n: 1 }]);
    expect(await pool.stop(0)).toEqual({ finished: 0, released: 0 });
    expect(await real.counts()).toEqual({ pending: 0, inflight: 0, dead: 0 });
  });
});

test("a handler gets a live AbortSignal unless it is declared with exactly one parameter; interrupts end every kind", async () => {
  await onSqlite(async (real) => {
    const now = Date.now();
    // Each type hangs until the pool's 200 ms timeout interrupts it; what it was handed is recorded.
    const seen = new Map<string, unknown[]>();
    const hang = () => new Promise(() => {});
    const registry = createHandlerRegistry({ timeoutMs: 200, maxAttempts: 1, priority: 0 });
    registry.register("one", function (this: unknown, _job) {
      seen.set("one", [...arguments]);
      return hang();
    });
    registry.register("two", (job, signal) => {
      seen.set("two", [signal]);
      return hang();
    });
    registry.register("rest", (...args) => {
      seen.set("rest", args.slice(1));
      return hang();
    });
    registry.register("none", function () {
      seen.set("none", [...arguments].slice(1));
      return hang();
    });
    const types = ["one", "two", "rest", "none"];
    const ids = await real.insert(types.map((type) => ({ type, payload: "1", priority: 0, maxAttempts: 1, runAt: now, timeoutMs: null })), now);
    const { scheduler, pool } = testPool(real, registry, 4);
    pool.start();
    ids.forEach((id, i) => scheduler.add(id, 0, now, now, types[i]!));
    // Every attempt, signal or not, is ended by its timeout and dead-lettered (one attempt each).
    await waitFor(async () => (await real.counts()).dead === 4 && pool.inflight === 0, { what: "all four attempts to time out" });
    expect(seen.get("one")!.length).toBe(1); // called with the job alone
    for (const type of ["two", "rest", "none"]) {
      const [signal] = seen.get(type)!;
      expect(signal).toBeInstanceOf(AbortSignal);
      expect((signal as AbortSignal).aborted).toBe(true); // the timeout aborted it
    }
    await pool.stop(0);
  });
});

test("an id the heap holds twice, claimed in one batch, leaves its type's slot free once it ends", async () => {
  await onSqlite(async (real) => {
    const now = Date.now();
    const job = (payload: string) => ({ type: "two", payload, priority: 0, maxAttempts: 3, runAt: now, timeoutMs: null });
    const [a] = await real.insert([job('"a"')], now);
    // A type that may run two jobs at a time; the later pair can only finish by running together.
    let together = 0;
    let bothIn: () => void = () => {};
    const pairRunning = new Promise<void>((r) => (bothIn = r));
    const registry = createHandlerRegistry({ timeoutMs: 60_000, maxAttempts: 3, priority: 0 });
    const ran: unknown[] = [];
    registry.register("two", async (j) => {
      ran.push(j.payload);
      if (j.payload === "a") return;
      if (++together === 2) bothIn();
      await pairRunning;
    }, { concurrency: 2 });
    const { scheduler, pool } = testPool(real, registry, 4);
    // The same id twice (as after a lost claim answer and a reap): both copies leave in one claim.
    scheduler.add(a!, 0, now, now, "two");
    scheduler.add(a!, 0, now, now, "two");
    pool.start();
    await waitFor(() => ran.includes("a") && pool.inflight === 0, { what: "the first job to run and settle" });
    const [b, c] = await real.insert([job('"b"'), job('"c"')], now);
    scheduler.add(b!, 0, now, now, "two");
    scheduler.add(c!, 0, now, now, "two");
    await waitFor(() => together === 2, { what: "both slots of the type to run the next pair at once" });
    await waitFor(() => pool.inflight === 0, { what: "the pair to settle" });
    expect(ran.sort()).toEqual(["a", "b", "c"]);
    await pool.stop(0);
  });
});

/**
 * A real store whose claims answer only when the test says: the pool's claims out at once, and the
 * order in which the claimed jobs start.
 */
function gatedClaims(real: PoolStore) {
  const gates: Array<() => void> = [];
  let out = 0;
  let mostOut = 0;
  const store: PoolStore = Object.assign(Object.create(real) as PoolStore, {
    claim: async (...args: Parameters<PoolStore["claim"]>) => {
      out++;
      mostOut = Math.max(mostOut, out);
      await new Promise<void>((open) => gates.push(open));
      try {
        return await real.claim(...args);
      } finally {
        out--;
      }
    },
  });
  return { store, gates, get mostOut() { return mostOut; } };
}

test("a big claim goes out beside the one out, and one that lands first starts its jobs in the slots free without waiting for the other", async () => {
  await onSqlite(async (real) => {
    const now = Date.now();
    const jobs = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ type: "t", payload: String(from + i), priority: 0, maxAttempts: 3, runAt: now, timeoutMs: null }));
    const first = await real.insert(jobs(0, 40), now);
    const second = await real.insert(jobs(40, 40), now);
    const gated = gatedClaims(real);
    const registry = createHandlerRegistry({ timeoutMs: 60_000, maxAttempts: 3, priority: 0 });
    const started: number[] = [];
    registry.register("t", (job) => void started.push(job.payload as number));
    const { scheduler, pool } = testPool(gated.store, registry, 200);
    for (const id of first) scheduler.add(id, 0, now, now, "t");
    pool.start();
    await waitFor(() => gated.gates.length === 1, { what: "the first claim to go out" });
    // 40 more become ready while it is out: enough for a claim of their own beside it.
    for (const id of second) scheduler.add(id, 0, now, now, "t");
    await waitFor(() => gated.gates.length === 2, { what: "a second claim beside the first" });
    expect(gated.mostOut).toBe(2);
    // The second answers first: 200 slots are free, so its jobs start at once.
    gated.gates[1]!();
    await waitFor(() => started.length === 40, { what: "the second claim's jobs" });
    expect(started.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => 40 + i));
    gated.gates[0]!();
    await waitFor(() => started.length === 80 && pool.inflight === 0, { what: "all 80 jobs to run and settle" });
    expect(started.slice(40).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    await pool.stop(0);
  });
});

test("jobs that become ready while a claim is out leave together in the next claim when they are few", async () => {
  await onSqlite(async (real) => {
    const now = Date.now();
    const jobs = (n: number) => Array.from({ length: n }, () => ({ type: "t", payload: "1", priority: 0, maxAttempts: 3, runAt: now, timeoutMs: null }));
    const first = await real.insert(jobs(40), now);
    const few = await real.insert(jobs(10), now);
    const gated = gatedClaims(real);
    const registry = createHandlerRegistry({ timeoutMs: 60_000, maxAttempts: 3, priority: 0 });
    let ran = 0;
    registry.register("t", () => void ran++);
    const { scheduler, pool } = testPool(gated.store, registry, 200);
    for (const id of first) scheduler.add(id, 0, now, now, "t");
    pool.start();
    await waitFor(() => gated.gates.length === 1, { what: "the first claim to go out" });
    for (const id of few) scheduler.add(id, 0, now, now, "t");
    await Bun.sleep(20); // nothing to await: the point is that no second claim goes out
    expect(gated.gates.length).toBe(1);
    gated.gates[0]!();
    await waitFor(() => gated.gates.length === 2, { what: "the next claim, with the few" });
    gated.gates[1]!();
    await waitFor(() => ran === 50 && pool.inflight === 0, { what: "all 50 jobs to run and settle" });
    expect(gated.mostOut).toBe(1);
    await pool.stop(0);
  });
});

test("jobs a later claim brings take their places in line by the heap's order, ahead of less urgent ones claimed earlier that still wait", async () => {
  await onSqlite(async (real) => {
    const now = Date.now();
    const job = (payload: string, runAt: number) => ({ type: "t", payload, priority: 0, maxAttempts: 3, runAt, timeoutMs: null });
    let unblock: () => void = () => {};
    const blocked = new Promise<void>((r) => (unblock = r));
    const ran: string[] = [];
    const registry = createHandlerRegistry({ timeoutMs: 60_000, maxAttempts: 3, priority: 0 });
    registry.register("t", async (j) => {
      ran.push(j.payload as string);
      if (j.payload === "block") await blocked;
    });
    const { scheduler, pool } = testPool(real, registry, 1, 1000);
    const add = async (jobs: ReturnType<typeof job>[]) => {
      const ids = await real.insert(jobs, now);
      ids.forEach((id, i) => scheduler.add(id, 0, jobs[i]!.runAt, Date.now(), "t"));
    };
    pool.start();
    // Short handlers first, so the pool claims ahead of its one slot.
    await add(Array.from({ length: 5 }, () => job('"warm"', now)));
    await waitFor(() => ran.length === 5 && pool.inflight === 0, { what: "the warm-up jobs" });
    await add([job('"block"', now)]);
    await waitFor(() => ran.includes("block"), { what: "the slot to be taken" });
    // Claimed while the slot is busy: they wait. Then more urgent ones (ready a minute earlier) come in a later claim.
    await add(Array.from({ length: 10 }, (_, i) => job(`"later${i}"`, now)));
    await waitFor(() => pool.waitingForSlot === 10, { what: "the first claim's jobs to wait" });
    await add(Array.from({ length: 10 }, (_, i) => job(`"urgent${i}"`, now - 60_000)));
    await waitFor(() => pool.waitingForSlot === 20, { what: "the second claim's jobs to wait" });
    unblock();
    await waitFor(() => ran.length === 26 && pool.inflight === 0, { what: "every job to run" });
    const after = ran.slice(6);
    expect(after.slice(0, 10).every((p) => p.startsWith("urgent"))).toBe(true);
    expect(after.slice(10).every((p) => p.startsWith("later"))).toBe(true);
    await pool.stop(0);
  });
});

test("while most of the claimed-ahead line still waits, a freed slot sends no claim; once half of it has started, the next claim goes", async () => {
  await onSqlite(async (real) => {
    const now = Date.now();
    const jobs = (n: number) => Array.from({ length: n }, (_, i) => ({ type: "t", payload: String(i), priority: 0, maxAttempts: 3, runAt: now, timeoutMs: null }));
    const gated = gatedClaims(real);
    const registry = createHandlerRegistry({ timeoutMs: 60_000, maxAttempts: 3, priority: 0 });
    const release: Array<() => void> = [];
    let hold = true;
    let ran = 0;
    registry.register("t", () => {
      ran++;
      if (hold) return new Promise<void>((done) => release.push(done));
    });
    // One worker and so much claim ahead (1000 s) that any run time this test sees (the handlers
    // wait for the test to end them) lines up the most, 1000.
    const { scheduler, pool } = testPool(gated.store, registry, 1, 1_000_000);
    pool.start();
    // One job first, so a run time has been seen and the line has its size.
    const [warm] = await real.insert(jobs(1), now);
    scheduler.add(warm!, 0, now, now, "t");
    await waitFor(() => gated.gates.length === 1, { what: "the first claim" });
    gated.gates[0]!();
    await waitFor(() => release.length === 1, { what: "the first job to start" });
    release[0]!();
    await waitFor(() => pool.inflight === 0, { what: "the first job to settle" });
    for (const id of await real.insert(jobs(1200), now)) scheduler.add(id, 0, now, now, "t");
    await waitFor(() => gated.gates.length === 2, { what: "a claim for the free worker and the line" });
    gated.gates[1]!();
    await waitFor(() => release.length === 2, { what: "the claim's first job to start" });
    expect(pool.inflight).toBe(1000); // one running, 999 in line
    const turn = () => new Promise<void>((r) => setImmediate(r));
    // Each ended job lets the next start; while more than half of the line of 1000 waits, no claim goes.
    for (let started = 3; started <= 500; started++) {
      release[started - 2]!();
      await waitFor(() => release.length === started, { what: `job ${started} to start`, intervalMs: 1 });
      await turn();
      await turn();
      if (gated.gates.length !== 2) throw new Error(`a claim went out with ${1001 - started} jobs still in line`);
    }
    // One more: 500 wait, half the line, and the next claim goes out.
    release[499]!();
    await waitFor(() => gated.gates.length === 3, { what: "the next claim once half the line has started" });
    // Let everything run out: every job released as it starts, every claim answered.
    // Let the rest run: handlers end at once from here, every claim is answered as it goes out.
    hold = false;
    for (const done of release.splice(500)) done();
    let opened = 2;
    await waitFor(async () => {
      while (opened < gated.gates.length) gated.gates[opened++]!();
      return (await real.counts()).pending === 0 && pool.inflight === 0;
    }, { what: "all 1201 jobs to run" });
    expect(ran).toBe(1201);
    await pool.stop(0);
  });
});
