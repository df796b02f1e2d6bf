// pgboss.ts (bench peer): pg-boss 12 on the same PostgreSQL: end to end on 50,000 preloaded noop
// jobs (batch fetches, several local workers, burst fetching while batches come back full) and
// add→start latency at 1,000 jobs/s (LISTEN/NOTIFY on, so workers wake at once).
import { PgBoss } from "pg-boss";
import { E2E_JOBS, e2eText } from "../e2e.ts";
import { measureLatency, peerLatencyRows } from "../latency.ts";
import { type Result, createDb, emit, log, waitFor } from "../lib.ts";
import { cpuMeter, fmtCpu, postgresPids } from "../proc.ts";

const VERSION = "12.38.0";
const QUEUE = "noop";

/**
 * Fetch many per round trip, and no idle wait while batches come back full. Measured here (50k
 * noop jobs): batchSize 100 × 4 loops 5.4k, 500 × 4 13k, 1000 × 2 15.5k, 2000 × 2 16.5k jobs/s.
 */
const E2E_WORK = { batchSize: 2000, localConcurrency: 2, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 };
const E2E_TEXT = "work(batchSize 2000, localConcurrency 2, burstWhenBatchFull, pollingIntervalSeconds 0.5), pool max 10";
/**
 * NOTIFY wakes a waiting worker per insert. Measured at 200 jobs/s: batchSize 1 × 8 loops p50
 * 9.4 ms, 10 × 4 4.4 ms, 100 × 2 with burst 3.2 ms.
 */
const LATENCY_WORK = { batchSize: 100, localConcurrency: 2, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 };
const LATENCY_TEXT = "useListenNotify, queue notify: true, work(batchSize 100, localConcurrency 2, burstWhenBatchFull), pool max 10";

function newBoss(url: string, listen: boolean): PgBoss {
  const boss = new PgBoss({
    connectionString: url,
    max: 10,
    schedule: false,
    supervise: false,
    useListenNotify: listen,
  });
  boss.on("error", (err) => log(`pg-boss error: ${err instanceof Error ? err.message : String(err)}`));
  return boss;
}

export async function e2e(): Promise<{ jobsPerS: number; totalMs: number; notes: string }> {
  const db = await createDb("pgboss");
  const boss = newBoss(db.url, false);
  try {
    await boss.start();
    await boss.createQueue(QUEUE);
    for (let b = 0; b < E2E_JOBS; b += 1000) {
      await boss.insert(QUEUE, Array.from({ length: Math.min(1000, E2E_JOBS - b) }, (_, i) => ({ data: { n: b + i } })));
    }
    const meter = cpuMeter({ bench: () => [process.pid], postgres: postgresPids });
    meter.start();
    const t0 = performance.now();
    await boss.work(QUEUE, E2E_WORK, async () => {});
    let doneAt = 0;
    await waitFor(async () => {
      const [r] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pgboss.job WHERE name = ${QUEUE} AND state <> 'completed'`;
      doneAt = performance.now();
      return r?.n === 0;
    }, 600_000, 10);
    const cpu = meter.stop();
    const totalMs = doneAt - t0;
    return { jobsPerS: (E2E_JOBS * 1000) / totalMs, totalMs, notes: `timed from work() to no job left short of 'completed'; ${fmtCpu(cpu)}` };
  } finally {
    await boss.stop({ graceful: false, close: true, timeout: 5000 });
    await db.drop();
  }
}

export async function latency(rate: number) {
  const db = await createDb("pgbosslat");
  const boss = newBoss(db.url, true);
  try {
    await boss.start();
    await boss.createQueue(QUEUE, { notify: true });
    let arriveRef: (key: string) => void = () => {};
    await boss.work<{ i: number }>(QUEUE, LATENCY_WORK, async (jobs) => {
      for (const j of jobs) arriveRef(String(j.data.i));
    });
    return await measureLatency(async (arrive) => {
      arriveRef = arrive;
      return async (i) => {
        await boss.send(QUEUE, { i });
        return String(i);
      };
    }, rate);
  } finally {
    await boss.stop({ graceful: false, close: true, timeout: 5000 });
    await db.drop();
  }
}

export async function main(): Promise<Result[]> {
  const subject = `pg-boss ${VERSION}`;
  log("peer: pg-boss end to end");
  const e = await e2e();
  log("peer: pg-boss latency");
  const lat = await peerLatencyRows(subject, `send() to the handler's first line, same process; ${LATENCY_TEXT}`, latency);
  return [
    {
      row: "6", bench: `End to end, ${E2E_JOBS.toLocaleString("en-US")} preloaded noop jobs`, subject,
      result: e2eText(e.jobsPerS, e.totalMs), value: e.jobsPerS, notes: `${E2E_TEXT}; preloaded with insert(); ${e.notes}`,
    },
    ...lat,
  ];
}

if (import.meta.main) {
  for (const r of await main()) emit(r);
}
