// multinode.fault.ts: three jobqueue processes on one PostgreSQL share 20,000 webhook jobs
// submitted round-robin; one is kill -9ed mid-run and another SIGTERMed. Every job must be
// delivered, none twice except those in flight on the killed node, and the survivor finishes.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { startBinary, type RunningBinary } from "../support/binary.ts";
import { checkAccounting } from "../support/ledger.ts";
import { createTestDatabase } from "../support/pg.ts";
import { postgresProbe } from "../support/probe.ts";
import { range, scrape, submitAll } from "../support/producer.ts";
import { startReceiver, type Mode, type Receiver } from "../support/receiver.ts";
import { waitFor } from "../support/wait.ts";

const TOTAL = 20_000;
const MAX_ATTEMPTS = 3;
let db: { url: string; drop: () => Promise<void> };
let receiver: Receiver;
beforeAll(async () => {
  db = await createTestDatabase("jq_multi");
  receiver = startReceiver({ delayMs: 1 });
});
afterAll(async () => {
  receiver?.stop();
  await db?.drop();
});

test("3 nodes, one kill -9ed and one SIGTERMed mid-run: every job delivered, duplicates only from the killed node", async () => {
  const configPath = join(mkdtempSync(join(tmpdir(), "jq-multi-")), "jobs.toml");
  writeFileSync(configPath, `[types.hook]\nurl = "${receiver.url}"\ntimeout = "5s"\nmax_attempts = ${MAX_ATTEMPTS}\n`);
  const env = (id: string) => ({
    DATABASE_URL: db.url, PORT: "0", JOBQUEUE_CONFIG: configPath, JOBQUEUE_NODE_ID: id, JOBQUEUE_WORKERS: "8",
    JOBQUEUE_LEASE_MS: "3000", JOBQUEUE_REAP_INTERVAL_MS: "500", JOBQUEUE_BACKOFF_BASE_MS: "20", JOBQUEUE_BACKOFF_CAP_MS: "200",
    JOBQUEUE_SHUTDOWN_GRACE_MS: "2000",
  });
  const nodes: RunningBinary[] = [];
  for (const id of ["node-a", "node-b", "node-c"]) nodes.push(await startBinary([], env(id)));
  await waitFor(async () => (await scrape(nodes[0]!.url)).get("jobqueue_nodes") === 3, { what: "3 nodes see each other" });

  const acked = new Map<string, Mode>();
  // Round-robin producers, one per node; a producer whose node is gone hands its rest to the survivor.
  const shares = [0, 1, 2].map((k) => range(0, TOTAL).filter((i) => i % 3 === k));
  const producing = Promise.all(shares.map(async (share, k) => {
    let todo = await submitAll(nodes[k]!.url, share, acked, { concurrency: 6 });
    while (todo.length > 0) todo = await submitAll(nodes[2]!.url, todo, acked, { concurrency: 6 });
  }));

  // Mid-run: kill -9 node-a, then SIGTERM node-b; node-c survives.
  await waitFor(() => receiver.count >= 3000, { timeoutMs: 120_000, what: "3,000 deliveries" });
  nodes[0]!.proc.kill("SIGKILL");
  await nodes[0]!.exited;
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const inflightOnKilled = new Set((await sql<{ id: string }[]>`SELECT id::text FROM inflight_jobs WHERE owner = 'node-a'`).map((r) => r.id));
  await waitFor(() => receiver.count >= 8000, { timeoutMs: 120_000, what: "8,000 deliveries" });
  nodes[1]!.proc.kill("SIGTERM");
  expect(await nodes[1]!.exited).toBe(0);
  const leftByStopped = Number((await sql<{ n: string }[]>`SELECT count(*) AS n FROM inflight_jobs WHERE owner = 'node-b'`)[0]!.n);

  try {
    await producing;
    // The survivor drains everything: its own backlog, the others' pending rows, the killed node's leases.
    await waitFor(async () => Number((await sql<{ n: string }[]>`SELECT (SELECT count(*) FROM pending_jobs) + (SELECT count(*) FROM inflight_jobs) AS n`)[0]!.n) === 0,
      { timeoutMs: 240_000, intervalMs: 200, what: "all work done by the survivor" });
  } finally {
    await sql.end();
    nodes[2]!.proc.kill("SIGTERM");
    expect(await nodes[2]!.exited).toBe(0);
  }
  const probe = postgresProbe(db.url);
  const counts = checkAccounting({ acked, deliveries: receiver.deliveries, dead: await probe.deadRows(), inflightAtKills: inflightOnKilled, maxAttempts: MAX_ATTEMPTS });
  console.log(`multinode: ${JSON.stringify({ ...counts, inflightOnKilled: inflightOnKilled.size, leftInflightByStopped: leftByStopped })}`);
  expect(acked.size).toBe(TOTAL);
  expect(leftByStopped).toBe(0); // a clean stop hands its running jobs back at once
}, 600_000);
