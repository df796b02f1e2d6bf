// bullmq.ts (bench peer): BullMQ 6 on the local Redis, an in-memory reference (Redis here keeps no
// snapshot or AOF): end to end on 50,000 preloaded noop jobs and add→start latency at 1,000 jobs/s.
// Each run uses its own queue name and obliterates it afterwards.
import { Queue, Worker } from "bullmq";
import { E2E_JOBS, e2eText } from "../e2e.ts";
import { measureLatency, peerLatencyRows } from "../latency.ts";
import { REDIS_URL, type Result, emit, log, waitFor } from "../lib.ts";
import { cpuMeter, fmtCpu } from "../proc.ts";

const VERSION = "6.7.0";
const CONCURRENCY = 100;
const TUNED_TEXT = `Worker concurrency ${CONCURRENCY}, removeOnComplete, one Redis connection each for Queue and Worker`;

function connection() {
  const u = new URL(REDIS_URL);
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null };
}

const redisPids = (): number[] => {
  const r = Bun.spawnSync(["pidof", "redis-server"], { stdout: "pipe" });
  return r.stdout.toString().trim().split(/\s+/).filter(Boolean).map(Number);
};

export async function e2e(): Promise<{ jobsPerS: number; totalMs: number; notes: string }> {
  const name = `jqbench-e2e-${Math.random().toString(36).slice(2, 8)}`;
  const queue = new Queue(name, { connection: connection() });
  try {
    for (let b = 0; b < E2E_JOBS; b += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, E2E_JOBS - b) }, (_, i) => ({
        name: "noop", data: { n: b + i }, opts: { removeOnComplete: true },
      })));
    }
    let completed = 0;
    const meter = cpuMeter({ bench: () => [process.pid], redis: redisPids });
    meter.start();
    const t0 = performance.now();
    const worker = new Worker(name, async () => {}, { connection: connection(), concurrency: CONCURRENCY });
    worker.on("completed", () => void completed++);
    let doneAt = 0;
    await waitFor(() => {
      doneAt = performance.now();
      return completed >= E2E_JOBS;
    }, 600_000, 5);
    const cpu = meter.stop();
    await worker.close();
    const totalMs = doneAt - t0;
    return { jobsPerS: (E2E_JOBS * 1000) / totalMs, totalMs, notes: `timed from new Worker() to the last 'completed' event; ${fmtCpu(cpu)}` };
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

export async function latency(rate: number) {
  const name = `jqbench-lat-${Math.random().toString(36).slice(2, 8)}`;
  const queue = new Queue(name, { connection: connection() });
  let arriveRef: (key: string) => void = () => {};
  const worker = new Worker<{ i: number }>(name, async (job) => arriveRef(String(job.data.i)), {
    connection: connection(), concurrency: CONCURRENCY,
  });
  try {
    await worker.waitUntilReady();
    return await measureLatency(async (arrive) => {
      arriveRef = arrive;
      return async (i) => {
        await queue.add("lat", { i }, { removeOnComplete: true });
        return String(i);
      };
    }, rate);
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

export async function main(): Promise<Result[]> {
  const subject = `BullMQ ${VERSION} (Redis, in memory)`;
  log("peer: BullMQ end to end");
  const e = await e2e();
  log("peer: BullMQ latency");
  const lat = await peerLatencyRows(subject, `queue.add() to the processor's first line, same process; ${TUNED_TEXT}`, latency);
  return [
    {
      row: "6", bench: `End to end, ${E2E_JOBS.toLocaleString("en-US")} preloaded noop jobs`, subject,
      result: e2eText(e.jobsPerS, e.totalMs), value: e.jobsPerS, notes: `${TUNED_TEXT}; preloaded with addBulk; ${e.notes}`,
    },
    ...lat,
  ];
}

if (import.meta.main) {
  for (const r of await main()) emit(r);
}
