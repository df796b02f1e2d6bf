// nodes.ts (bench): several jobqueue processes on one PostgreSQL (row 10): 50,000 noop jobs
// preloaded, then 1, 2 or 3 nodes started together and the time until all are completed. On this
// 2-core machine the nodes share the cores with PostgreSQL, so more nodes mostly add contention:
// the row shows the work is shared (each node's share) rather than scale-out.
import { E2E_JOBS, e2eText, preload } from "./e2e.ts";
import { NOOP_TYPES, type Result, counter, emit, fmtInt, log, newStoreTarget, startJobqueue, typesFile, waitFor } from "./lib.ts";

async function run(nodes: number): Promise<Result> {
  const target = await newStoreTarget("postgres", `nodes${nodes}`);
  try {
    await preload(target, E2E_JOBS);
    const t0 = performance.now();
    const servers = await Promise.all(Array.from({ length: nodes }, (_, k) =>
      startJobqueue({ target, types: typesFile(NOOP_TYPES), args: ["--workers", "256"], env: { JOBQUEUE_NODE_ID: `bench-node-${k}` } })));
    try {
      const done = async () => (await Promise.all(servers.map((s) => counter(s.url, "jobqueue_jobs_completed_total", 'type="noop"'))));
      let shares: number[] = [];
      await waitFor(async () => {
        shares = await done();
        return shares.reduce((a, b) => a + b, 0) >= E2E_JOBS;
      }, 300_000, 10);
      const ms = performance.now() - t0;
      return {
        row: "10", bench: `Several nodes, ${fmtInt(E2E_JOBS)} preloaded noop jobs`, subject: `jobqueue × ${nodes} (PostgreSQL, --workers 256 each)`,
        result: e2eText((E2E_JOBS * 1000) / ms, ms), value: (E2E_JOBS * 1000) / ms,
        notes: `jobs completed per node: ${shares.map(fmtInt).join(" / ")}; timed from the first spawn to the last completion; 2 cores shared by every node and PostgreSQL`,
      };
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  } finally {
    await target.cleanup();
  }
}

export async function main(): Promise<Result[]> {
  const results: Result[] = [];
  for (const n of [1, 2, 3]) {
    log(`nodes: ${n} jobqueue process(es) on one PostgreSQL`);
    results.push(await run(n));
  }
  return results;
}

if (import.meta.main) {
  for (const r of await main()) emit(r);
}
