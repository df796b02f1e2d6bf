// e2e.binary.test.ts: the compiled binary on each store (PostgreSQL, embedded SQLite) with a
// webhook receiver run by the test: 2,000 jobs over real HTTP, some flaky and some always failing,
// a kill -9 mid-run and a restart; every acknowledged job must be accounted for.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBinary, type RunningBinary } from "./support/binary.ts";
import { checkAccounting } from "./support/ledger.ts";
import { createTestDatabase } from "./support/pg.ts";
import { postgresProbe, sqliteProbe, type StoreProbe } from "./support/probe.ts";
import { drained, range, scrape, submitAll } from "./support/producer.ts";
import { startReceiver, type Mode, type Receiver } from "./support/receiver.ts";
import { waitFor } from "./support/wait.ts";

const TOTAL = 2000;
const MAX_ATTEMPTS = 3;

let db: { url: string; drop: () => Promise<void> };
let receiver: Receiver;

beforeAll(async () => {
  db = await createTestDatabase("jq_e2e");
  receiver = startReceiver({ delayMs: 1 }); // a little latency lets a backlog build, so the kill lands mid-run
});

afterAll(async () => {
  receiver?.stop();
  await db?.drop();
});

for (const [storeName, makeProbe] of [
  ["postgres", (): StoreProbe => postgresProbe(db.url)],
  ["sqlite", (): StoreProbe => sqliteProbe(join(mkdtempSync(join(tmpdir(), "jq-e2e-db-")), "jobs.db"))],
] as const) {
  test(`${storeName}: kill -9 mid-run and restart: every acknowledged job is delivered and settled as configured`, async () => {
    receiver.reset();
    const probe = makeProbe();
    const dir = mkdtempSync(join(tmpdir(), "jq-e2e-"));
    const configPath = join(dir, "jobs.toml");
    writeFileSync(configPath, `[types.hook]\nurl = "${receiver.url}"\ntimeout = "5s"\nmax_attempts = ${MAX_ATTEMPTS}\n`);
    const env = {
      ...probe.env, PORT: "0", JOBQUEUE_CONFIG: configPath, JOBQUEUE_NODE_ID: "e2e-node",
      JOBQUEUE_WORKERS: "8", JOBQUEUE_BACKOFF_BASE_MS: "20", JOBQUEUE_BACKOFF_CAP_MS: "100",
    };
    const acked = new Map<string, Mode>();

    let node: RunningBinary = await startBinary([], env);
    // Phase 1: submit the first 1,200 and kill -9 once ~300 deliveries happened, submits still flowing.
    const submitting = submitAll(node.url, range(0, 1200), acked);
    await waitFor(() => receiver.count >= 300, { what: "300 deliveries" });
    node.proc.kill("SIGKILL");
    expect(await node.exited).not.toBe(0);
    const unacked = await submitting;
    const ackedBeforeKill = acked.size;
    // The jobs in flight at the kill are the only ones allowed a second delivery (or, on their final
    // attempt, a dead letter even though the receiver said 200: the verdict died with the process).
    const inflightAtKill = await probe.inflightIds();

    // Phase 2: restart with the same node id; it recovers its orphans; submit the rest, and again
    // what was refused or cut off by the kill (as a producer would).
    node = await startBinary([], env);
    let deadAfterRestart = 0;
    try {
      expect(await submitAll(node.url, [...unacked, ...range(1200, TOTAL)], acked)).toEqual([]);
      await waitFor(() => drained(node.url), { timeoutMs: 60_000, what: "queue drained" });
      // /metrics agrees with what happened after the restart.
      const m = await scrape(node.url);
      expect(m.get("jobqueue_workers_busy")).toBe(0);
      expect(m.get("jobqueue_oldest_ready_age_seconds")).toBe(0);
      expect(m.get('jobqueue_jobs_submitted_total{type="hook"}')).toBe(acked.size - ackedBeforeKill);
      deadAfterRestart = m.get('jobqueue_jobs_dead_total{type="hook"}') ?? 0;
      expect(deadAfterRestart).toBeGreaterThan(0);
    } finally {
      node.proc.kill("SIGTERM");
      expect(await node.exited).toBe(0);
    }

    expect(await probe.liveCount()).toBe(0);
    const dead = await probe.deadRows();
    expect(deadAfterRestart).toBeLessThanOrEqual(dead.size);
    const counts = checkAccounting({ acked, deliveries: receiver.deliveries, dead, inflightAtKills: inflightAtKill, maxAttempts: MAX_ATTEMPTS });
    console.log(`e2e ${storeName}: ${JSON.stringify({ ...counts, ackedBeforeKill })}`);
    expect(acked.size).toBe(TOTAL);
    // Running (≤ 8 workers) plus finished attempts whose settle had not committed yet: a handful,
    // never a large part of the queue.
    expect(inflightAtKill.size).toBeLessThan(100);
  }, 120_000);
}
