// cluster-aging.test.ts: the aging promise holds across nodes sharing one PostgreSQL. Jobs that no
// live node holds in its heap (a dead node's backlog) run within a few maintenance ticks even while
// every live node stays busy with its own submissions, and a job more urgent than anything a busy
// node holds starts there ahead of its own backlog.
import { afterEach, beforeEach, expect, test } from "bun:test";
import type { JobContext } from "../src/handlers/handler.ts";
import { createPostgresStore } from "../src/store/postgres/index.ts";
import type { NewJob } from "../src/store/rows.ts";
import { createTestDatabase } from "./support/pg.ts";
import { startQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

let db: { url: string; drop: () => Promise<void> };
beforeEach(async () => {
  db = await createTestDatabase("jq_aging");
});
afterEach(async () => db.drop());

const work = (over: Partial<NewJob> = {}): NewJob => ({ type: "work", payload: "{}", priority: 0, maxAttempts: 3, runAt: Date.now(), timeoutMs: null, ...over });

test("a dead node's backlog runs while the live nodes stay busy with their own submissions", async () => {
  const ran = new Set<number>();
  const handler = async (job: JobContext) => {
    ran.add(job.id);
    await Bun.sleep(10);
  };
  const nodes = await Promise.all(["b", "c"].map((name) =>
    startQueue(createPostgresStore({ url: db.url }), { work: handler }, { nodeId: name, workers: 2, reapIntervalMs: 200 })));
  // Each live node gets more submissions than it can run, so its own heap never empties.
  let loading = true;
  const load = Promise.all(nodes.map(async (q) => {
    while (loading) {
      await q.submit(Array.from({ length: 4 }, () => work()));
      await Bun.sleep(20);
    }
  }));
  await waitFor(() => nodes.every((q) => q.scheduler.readyCount > 10), { what: "both live nodes busy with a backlog" });
  // The backlog a node left behind when it died: due rows that no live heap holds.
  const orphanStore = createPostgresStore({ url: db.url });
  const orphans = new Set(await orphanStore.insert(Array.from({ length: 100 }, () => work({ runAt: Date.now() - 5_000 })), Date.now() - 5_000));
  await orphanStore.close();
  try {
    await waitFor(() => [...orphans].every((id) => ran.has(id)), { what: "every orphaned job to run during the load", timeoutMs: 30_000 });
    expect(loading).toBe(true);
    expect(nodes.some((q) => q.scheduler.readyCount > 0)).toBe(true); // the nodes are still busy
    const adopted = nodes.reduce((n, q) => n + q.metrics.counterValue("jobqueue_jobs_adopted_total"), 0);
    expect(adopted).toBeGreaterThanOrEqual(100);
  } finally {
    loading = false;
    await load;
    await Promise.all(nodes.map((q) => q.shutdown(1000)));
  }
});

test("a job more urgent than all of a busy node's own starts there within a tick, ahead of its backlog", async () => {
  const started: number[] = [];
  let gate: () => void = () => {};
  const q = await startQueue(createPostgresStore({ url: db.url }), {
    work: async (job: JobContext) => {
      started.push(job.id);
      await new Promise<void>((r) => (gate = r));
    },
  }, { nodeId: "busy", workers: 1, reapIntervalMs: 100, agingMs: 1000 });
  const other = createPostgresStore({ url: db.url });
  try {
    // The node's one worker is busy and 50 of its own jobs wait behind it.
    await q.submit([work()]);
    await waitFor(() => started.length === 1, { what: "the first job running" });
    const own = await q.submit(Array.from({ length: 50 }, () => work()));
    // Another node (no heap of its own here) committed a priority-100 job: 100 s of aging ahead.
    const [urgent] = await other.insert([work({ priority: 100 })], Date.now());
    await waitFor(() => q.scheduler.readyCount === 51, { what: "the urgent job taken into the busy node's heap" });
    gate();
    await waitFor(() => started.length === 2, { what: "the next start" });
    expect(started[1]).toBe(urgent!);
    expect(own).not.toContain(started[1]);
  } finally {
    gate();
    await other.close();
    await q.shutdown(100);
  }
});

test("a paused type's old jobs in a busy node's heap do not keep it from taking a more urgent job of another type", async () => {
  const started: number[] = [];
  let gate: () => void = () => {};
  const q = await startQueue(createPostgresStore({ url: db.url }), {
    work: async (job: JobContext) => {
      started.push(job.id);
      await new Promise<void>((r) => (gate = r));
    },
    held: () => {},
  }, { nodeId: "busy-paused", workers: 1, reapIntervalMs: 100, agingMs: 1000 });
  const other = createPostgresStore({ url: db.url });
  try {
    await q.api.types.pause("held");
    // Jobs of the paused type that have waited far longer than anything else sit in the heap.
    await q.submit(Array.from({ length: 5 }, () => work({ type: "held", runAt: Date.now() - 1_000_000 })));
    await q.submit([work()]);
    await waitFor(() => started.length === 1, { what: "the first job running" });
    const own = await q.submit(Array.from({ length: 20 }, () => work()));
    const [urgent] = await other.insert([work({ priority: 100 })], Date.now());
    await waitFor(() => q.scheduler.readyCount === 26, { what: "the urgent job taken into the busy node's heap" });
    gate();
    await waitFor(() => started.length === 2, { what: "the next start" });
    expect(started[1]).toBe(urgent!);
    expect(own).not.toContain(started[1]);
  } finally {
    gate();
    await other.close();
    await q.shutdown(100);
  }
});
