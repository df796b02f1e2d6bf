#!/usr/bin/env bun
// ab.ts (bench): row 4's drain (bench/e2e.ts jobqueueE2e: 50,000 preloaded noop jobs on PostgreSQL)
// for two or more checkouts, interleaved round by round, so a before/after comparison shares the
// machine's drift. Each checkout uses its own dist/jobqueue (build it there first).
// `bun bench/ab.ts /path/to/before /path/to/after [--rounds 4] [--workers 32]`
import { resolve } from "node:path";
const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args.splice(i, 2)[1]) : fallback;
};
const rounds = opt("--rounds", 4);
const workers = opt("--workers", 32);
if (args.length < 2) throw new Error("usage: bun bench/ab.ts <checkout> <checkout> [...] [--rounds N] [--workers N]");
const runs = await Promise.all(args.map(async (dir) => ({ dir, e2e: (await import(`${resolve(dir)}/bench/e2e.ts`)).jobqueueE2e, jobsPerS: [] as number[] })));
for (let r = 0; r < rounds; r++) {
  for (const run of runs) run.jobsPerS.push(Math.round((await run.e2e("postgres", workers)).jobsPerS));
}
const mean = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
for (const run of runs) console.log(`${run.dir}: ${run.jobsPerS.join(", ")} jobs/s (mean ${mean(run.jobsPerS)}) at --workers ${workers}`);
