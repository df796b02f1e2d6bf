// clock-skew.test.ts: nodes on one PostgreSQL agree on time whatever their own clocks say. A node
// whose clock runs 20 s ahead neither reaps another node's live job nor schedules its own jobs 20 s
// late: leases and due times are the database server's clock (each node measures its offset from
// it, and a lease must also have ended by the server's own clock before any node reaps it).
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import type { JobContext } from "../src/handlers/handler.ts";
import { createPostgresStore } from "../src/store/postgres/index.ts";
import { createTestDatabase } from "./support/pg.ts";
import { call, startQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

const SKEW_MS = 20_000;

let db: { url: string; drop: () => Promise<void> };
beforeAll(async () => {
  db = await createTestDatabase("jq_skew");
});
afterAll(async () => db.drop());

test("a node whose clock runs 20 s ahead never reaps another node's live job, and schedules on the database's time", async () => {
  const runs: number[] = [];
  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  const onTime = await startQueue(createPostgresStore({ url: db.url }), {
    long: async (job: JobContext) => {
      runs.push(job.id);
      await held;
    },
  }, { nodeId: "on-time", leaseMs: 3000, reapIntervalMs: 100 });
  const ahead = await startQueue(createPostgresStore({ url: db.url, localClock: () => Date.now() + SKEW_MS }), {
    long: (job: JobContext) => void runs.push(job.id),
  }, { nodeId: "ahead", leaseMs: 3000, reapIntervalMs: 100 });
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const { body: { id } } = await call(onTime, "POST", "/submit", { type: "long" });
    await waitFor(() => runs.length === 1, { what: "the job running on the on-time node" });
    // Let the node that runs ahead go through several maintenance ticks (each reaps, then beats).
    const beats = new Set<number>();
    await waitFor(async () => {
      const [row] = await sql<{ at: number }[]>`SELECT (extract(epoch from heartbeat_at) * 1000)::float8 AS at FROM jobqueue_nodes WHERE id = 'ahead'`;
      if (row) beats.add(row.at);
      return beats.size >= 5;
    }, { what: "five maintenance ticks of the node that runs ahead" });
    const [row] = await sql<{ owner: string; attempts: number }[]>`SELECT owner, attempts FROM inflight_jobs WHERE id = ${id}`;
    expect(row).toEqual({ owner: "on-time", attempts: 1 });
    expect(runs).toEqual([Number(id)]);
    expect(ahead.metrics.counterValue("jobqueue_jobs_recovered_total")).toBe(0);
    // Its heartbeats are stamped on the database's time, not 20 s in the future.
    expect(Math.max(...beats)).toBeLessThan(Date.now() + 5_000);

    // A job it schedules 2 s ahead is due 2 s from now by the database's clock, not 22 s.
    const before = Date.now();
    const { body: later } = await call(ahead, "POST", "/submit", { type: "long", delayMs: 2_000 });
    const view = (await call(onTime, "GET", `/jobs/${later.id}`)).body;
    expect(Date.parse(view.runAt)).toBeGreaterThanOrEqual(before + 1_000);
    expect(Date.parse(view.runAt)).toBeLessThanOrEqual(Date.now() + 3_000);
  } finally {
    release();
    await sql.end();
    await ahead.shutdown(1000);
    await onTime.shutdown(1000);
  }
});
