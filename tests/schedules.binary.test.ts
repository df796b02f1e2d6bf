// schedules.binary.test.ts: a recurring schedule on two compiled binaries sharing one PostgreSQL
// database, one of them killed with -9 and restarted mid-way: every tick is enqueued exactly once
// (each job is due at the tick that made it, and no two jobs share a tick), and none goes missing.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { startBinary, type RunningBinary } from "./support/binary.ts";
import { createTestDatabase } from "./support/pg.ts";
import { waitFor } from "./support/wait.ts";

let db: { url: string; drop: () => Promise<void> };
const nodes: RunningBinary[] = [];

beforeAll(async () => {
  db = await createTestDatabase("jq_sched");
});
afterAll(async () => {
  for (const n of nodes) n.proc.kill("SIGKILL");
  await Promise.all(nodes.map((n) => n.exited));
  await db?.drop();
});

/** Every job the schedule made, live or kept as a completed record: its due time (the tick). */
async function ticks(): Promise<number[]> {
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ t: number }[]>`
      SELECT (extract(epoch FROM run_at) * 1000)::float8 AS t FROM (
        SELECT run_at, type FROM pending_jobs UNION ALL SELECT run_at, type FROM inflight_jobs
        UNION ALL SELECT run_at, type FROM completed_jobs UNION ALL SELECT run_at, type FROM dead_jobs) j
      WHERE type = 'beat' ORDER BY 1`;
    return rows.map((r) => Number(r.t));
  } finally {
    await sql.end();
  }
}

test("two nodes and a kill -9: each tick of an every-second schedule is enqueued once, none missed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "jq-sched-"));
  const configPath = join(dir, "jobs.toml");
  writeFileSync(configPath, '[types.beat]\nbuiltin = "noop"\n\n[schedules.heartbeat]\nevery = "1s"\ntype = "beat"\ncatch_up = "all"\n');
  const env = { DATABASE_URL: db.url, PORT: "0", JOBQUEUE_CONFIG: configPath, JOBQUEUE_KEEP_COMPLETED: "1h" };
  const a = await startBinary([], { ...env, JOBQUEUE_NODE_ID: "sched-a" });
  const b = await startBinary([], { ...env, JOBQUEUE_NODE_ID: "sched-b" });
  nodes.push(a, b);
  await waitFor(async () => (await ticks()).length >= 3, { what: "three ticks", timeoutMs: 30_000 });
  a.proc.kill("SIGKILL");
  await a.exited;
  await waitFor(async () => (await ticks()).length >= 5, { what: "two more ticks from the survivor", timeoutMs: 30_000 });
  const a2 = await startBinary([], { ...env, JOBQUEUE_NODE_ID: "sched-a" });
  nodes.push(a2);
  await waitFor(async () => (await ticks()).length >= 8, { what: "ticks after the restart", timeoutMs: 30_000 });
  b.proc.kill("SIGTERM");
  a2.proc.kill("SIGTERM");
  expect(await b.exited).toBe(0);
  expect(await a2.exited).toBe(0);
  const all = await ticks();
  // Whole seconds, each once, and no gap between the first and the last.
  expect(all.every((t) => t % 1000 === 0)).toBe(true);
  expect(new Set(all).size).toBe(all.length);
  expect((all[all.length - 1]! - all[0]!) / 1000 + 1).toBe(all.length);
}, 120_000);
