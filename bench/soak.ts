// soak.ts (bench): the endurance run. Starts the compiled binary, drives a steady load of noop
// jobs for a long time (default 10 minutes at 500 jobs/s), and prints one line per window: RSS,
// submit latency p50/p99, completions/s. Ends with RSS growth after warm-up (target ≤ 10 %).
// Usage: bun bench/soak.ts [--minutes 10] [--rate 500] [--store postgres|sqlite] [--binary dist/jobqueue]
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "500" },
    store: { type: "string", default: "postgres" },
    binary: { type: "string", default: join(import.meta.dir, "..", "dist", "jobqueue") },
  },
});
const MINUTES = Number(values.minutes);
const RATE = Number(values.rate);
const WINDOW_S = 10;
const WARMUP_S = 60;
const ADMIN = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const dir = mkdtempSync(join(tmpdir(), "jq-soak-"));
writeFileSync(join(dir, "jobs.toml"), '[types.noop]\nbuiltin = "noop"\n');
const env: Record<string, string> = { PATH: process.env.PATH ?? "", PORT: "0", JOBQUEUE_CONFIG: join(dir, "jobs.toml"), JOBQUEUE_NODE_ID: "soak" };
let dbName = "";
if (values.store === "postgres") {
  dbName = `jq_soak_${process.pid}`;
  const admin = postgres(ADMIN, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${dbName}`);
  await admin.end();
  env.DATABASE_URL = ADMIN.replace(/\/[^/]*$/, `/${dbName}`);
} else {
  env.JOBQUEUE_DB = join(dir, "jobs.db");
}

const proc = Bun.spawn([values.binary!], { env, stdout: "ignore", stderr: "pipe" });
const url = await new Promise<string>(async (resolve, reject) => {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of proc.stderr) {
    buf += decoder.decode(chunk);
    const m = /"msg":"listening","url":"([^"]+)"/.exec(buf);
    if (m) return resolve(m[1]!);
  }
  reject(new Error(`server exited: ${buf}`));
});

const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))![1]) / 1024;
async function completed(): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^jobqueue_jobs_completed_total\{type="noop"\} (\S+)$/m.exec(text)?.[1] ?? 0);
}
const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]! : NaN);

console.log(`soak: ${values.store}, ${RATE} jobs/s for ${MINUTES} min, windows of ${WINDOW_S} s (Bun ${Bun.version})`);
console.log("t(s)\trss MiB\tsubmit p50 ms\tsubmit p99 ms\tcompleted/s\terrors");
const rows: Array<{ t: number; rss: number; p50: number; p99: number; rate: number }> = [];
const start = performance.now();
const end = start + MINUTES * 60_000;
let sent = 0, errors = 0, lat: number[] = [], lastDone = await completed(), lastT = start;
const pending = new Set<Promise<void>>();
while (performance.now() < end) {
  const due = start + (sent * 1000) / RATE;
  const wait = due - performance.now();
  if (wait > 1) await Bun.sleep(wait);
  const t0 = performance.now();
  const p = fetch(`${url}/submit`, { method: "POST", headers: { "content-type": "application/json" }, body: `{"type":"noop","payload":{"n":${sent}}}` })
    .then(async (r) => { await r.arrayBuffer(); if (r.status !== 202) errors++; lat.push(performance.now() - t0); }, () => void errors++)
    .finally(() => pending.delete(p));
  pending.add(p);
  sent++;
  if (performance.now() - lastT >= WINDOW_S * 1000) {
    const now = performance.now();
    const done = await completed();
    const row = { t: Math.round((now - start) / 1000), rss: rssMiB(), p50: pct(lat, 0.5), p99: pct(lat, 0.99), rate: ((done - lastDone) * 1000) / (now - lastT) };
    rows.push(row);
    console.log(`${row.t}\t${row.rss.toFixed(1)}\t${row.p50.toFixed(2)}\t${row.p99.toFixed(2)}\t${row.rate.toFixed(0)}\t${errors}`);
    lat = [];
    lastDone = done;
    lastT = now;
  }
}
await Promise.all(pending);
proc.kill("SIGTERM");
await proc.exited;
if (dbName) {
  const admin = postgres(ADMIN, { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
}
const warm = rows.filter((r) => r.t >= WARMUP_S);
if (warm.length >= 2) {
  const first = warm[0]!, last = warm[warm.length - 1]!;
  const growth = ((last.rss - first.rss) / first.rss) * 100;
  const rates = warm.map((r) => r.rate);
  console.log(`RSS after warm-up: ${first.rss.toFixed(1)} → ${last.rss.toFixed(1)} MiB (${growth >= 0 ? "+" : ""}${growth.toFixed(1)} %, target ≤ +10 %); ` +
    `completed/s min ${Math.min(...rates).toFixed(0)} max ${Math.max(...rates).toFixed(0)}; submit p99 worst window ${Math.max(...warm.map((r) => r.p99)).toFixed(2)} ms; errors ${errors}`);
}
