// graphile.ts (bench peer): graphile-worker 0.18 on the same PostgreSQL, tuned from its performance
// page (concurrentJobs 24, maxPoolSize 25, a local queue, batched completion, prepared statements):
// end to end on 50,000 preloaded noop jobs, and add→start latency at 1,000 jobs/s.
import { Logger, makeWorkerUtils, run, type Runner } from "graphile-worker";
import { E2E_JOBS, E2E_PAYLOAD_BYTES, e2eText, sizedPayload } from "../e2e.ts";
import { measureLatency, peerLatencyRows } from "../latency.ts";
import { type Result, createDb, emit, log, waitFor } from "../lib.ts";
import { cpuMeter, fmtCpu, postgresPids } from "../proc.ts";

const VERSION = "0.18.0";
const quiet = new Logger(() => () => {});

/**
 * https://worker.graphile.org/docs/performance ("Quick stats" configuration), with localQueue.size
 * raised from 500 to 5000 as its docs advise for very high throughput of very fast tasks: measured
 * here, 500 → 13k, 2000 → 21-24k, 5000 → 27k, 10000 → 27k jobs/s end to end.
 */
const TUNED = {
  concurrentJobs: 24,
  maxPoolSize: 25,
  localQueue: { size: 5000 },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
  preparedStatements: true,
  pollInterval: 2000,
};
const TUNED_TEXT = "concurrentJobs 24, maxPoolSize 25, localQueue.size 5000, completeJobBatchDelay 0, failJobBatchDelay 0, preparedStatements";

function startRunner(connectionString: string, noop: () => void): Promise<Runner> {
  return run({
    noHandleSignals: true,
    logger: quiet,
    taskList: { noop: async () => noop() },
    preset: { worker: { connectionString, ...TUNED } },
  });
}

export async function e2e(payloadBytes = 0): Promise<{ jobsPerS: number; totalMs: number; notes: string }> {
  const db = await createDb("graphile");
  try {
    const utils = await makeWorkerUtils({ connectionString: db.url, logger: quiet });
    await utils.migrate();
    for (let b = 0; b < E2E_JOBS; b += 1000) {
      await utils.addJobs(Array.from({ length: Math.min(1000, E2E_JOBS - b) }, (_, i) => ({ identifier: "noop", payload: sizedPayload(b + i, payloadBytes) })));
    }
    await utils.release();
    const meter = cpuMeter({ bench: () => [process.pid], postgres: postgresPids });
    meter.start();
    const t0 = performance.now();
    const runner = await startRunner(db.url, () => {});
    let doneAt = 0;
    // Completed jobs are deleted: done when the table is empty.
    await waitFor(async () => {
      const [r] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM graphile_worker._private_jobs`;
      doneAt = performance.now();
      return r?.n === 0;
    }, 600_000, 10);
    const cpu = meter.stop();
    await runner.stop();
    const totalMs = doneAt - t0;
    return { jobsPerS: (E2E_JOBS * 1000) / totalMs, totalMs, notes: `timed from run() to an empty jobs table; ${fmtCpu(cpu)}` };
  } finally {
    await db.drop();
  }
}

export async function latency(rate: number) {
  const db = await createDb("graphilelat");
  try {
    const utils = await makeWorkerUtils({ connectionString: db.url, logger: quiet });
    await utils.migrate();
    let arriveRef: (key: string) => void = () => {};
    const runner = await run({
      noHandleSignals: true,
      logger: quiet,
      taskList: { lat: async (payload) => arriveRef(String((payload as { i: number }).i)) },
      preset: { worker: { connectionString: db.url, ...TUNED } },
    });
    try {
      return await measureLatency(async (arrive) => {
        arriveRef = arrive;
        return async (i) => {
          await utils.addJob("lat", { i });
          return String(i);
        };
      }, rate);
    } finally {
      await runner.stop();
      await utils.release();
    }
  } finally {
    await db.drop();
  }
}

export async function main(): Promise<Result[]> {
  const subject = `graphile-worker ${VERSION}`;
  log("peer: graphile-worker end to end");
  const e = await e2e();
  const sized: Result[] = [];
  for (const bytes of E2E_PAYLOAD_BYTES) {
    log(`peer: graphile-worker end to end, ${bytes}-byte payloads`);
    const p = await e2e(bytes);
    sized.push({
      row: "6p", bench: `End to end, ${E2E_JOBS.toLocaleString("en-US")} preloaded noop jobs, ${bytes.toLocaleString("en-US")}-byte payloads`, subject,
      pair: `payload ${bytes}`, result: e2eText(p.jobsPerS, p.totalMs), value: p.jobsPerS, notes: `${TUNED_TEXT}; preloaded with addJobs; ${p.notes}`,
    });
  }
  log("peer: graphile-worker latency");
  const lat = await peerLatencyRows(subject, `workerUtils.addJob() to the task's first line, same process; ${TUNED_TEXT}`, latency);
  return [
    {
      row: "6", bench: `End to end, ${E2E_JOBS.toLocaleString("en-US")} preloaded noop jobs`, subject,
      result: e2eText(e.jobsPerS, e.totalMs), value: e.jobsPerS, notes: `${TUNED_TEXT}; preloaded with addJobs; ${e.notes}`,
    },
    ...sized,
    ...lat,
  ];
}

if (import.meta.main) {
  for (const r of await main()) emit(r);
}
