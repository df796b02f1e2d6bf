// lib.ts (bench): what every benchmark shares: throwaway databases and store targets, starting the
// jobqueue binary, paced sending, percentiles, the machine line and the result line format.
// Measures nothing by itself and keeps no state between calls.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import postgres from "postgres";
import { wrkVersion } from "./wrk.ts";

export const ROOT = join(import.meta.dir, "..");
/** run.ts hands its children a snapshot copy, so a rebuild mid-run cannot mix two binaries. */
export const BINARY = process.env.JOBQUEUE_BENCH_BINARY ?? join(ROOT, "dist", "jobqueue");
export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

// ---- results --------------------------------------------------------------------------------

/** One row of the final table. `met` is undefined when the row has no target. */
export interface Result {
  row: string;
  bench: string;
  subject: string;
  result: string;
  target?: string;
  met?: boolean;
  notes?: string;
  /** The headline number (e.g. jobs/s), for targets that compare rows. */
  value?: number;
  /** Rows compared with each other (jobqueue and graphile-worker with the same payloads) share it. */
  pair?: string;
}

const RESULT_PREFIX = "@@result ";

/** A benchmark run as a child process hands its rows to run.ts on stdout with this prefix. */
export function emit(result: Result): void {
  process.stdout.write(RESULT_PREFIX + JSON.stringify(result) + "\n");
}

export function parseResultLine(line: string): Result | null {
  return line.startsWith(RESULT_PREFIX) ? (JSON.parse(line.slice(RESULT_PREFIX.length)) as Result) : null;
}

/** Progress for the person watching; stderr so it never mixes with results. */
export function log(msg: string): void {
  process.stderr.write(`  ${msg}\n`);
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");
export const fmtMs = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));

// ---- PostgreSQL -----------------------------------------------------------------------------

export interface BenchDb {
  name: string;
  url: string;
  /** A small admin-free client on the bench database (for preloads and checks). */
  sql: postgres.Sql;
  drop(): Promise<void>;
}

/** CREATE DATABASE jqbench_<label>_<random>; drop() closes the client and drops it WITH (FORCE). */
export async function createDb(label: string): Promise<BenchDb> {
  const name = `jqbench_${label}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  return {
    name, url, sql,
    async drop() {
      await sql.end({ timeout: 5 });
      const a = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
      // Pools that were closed without waiting (node-postgres) disconnect a moment later; a FORCE
      // drop before that makes their idle clients emit an unhandled error in this process.
      await waitFor(async () => {
        const [r] = await a<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${name}`;
        return r?.n === 0;
      }, 3000, 20).catch(() => {});
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

/**
 * The next transaction id of the cluster. Its growth over a window counts write transactions
 * (each one that writes takes an id; reads take none), at once and without stats-collector lag.
 * Cluster-wide: other databases' writes in the same window count too.
 */
export async function nextXid(db: BenchDb): Promise<number> {
  const [r] = await db.sql<{ x: string }[]>`SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x`;
  return Number(r?.x ?? 0);
}

// ---- where a jobqueue binary keeps its jobs ---------------------------------------------------

/** PostgreSQL (a fresh database) or the embedded SQLite store (a fresh file). */
export interface StoreTarget {
  kind: "postgres" | "sqlite";
  env: Record<string, string>;
  args: string[];
  db?: BenchDb;
  cleanup(): Promise<void>;
}

export async function newStoreTarget(kind: "postgres" | "sqlite", label: string): Promise<StoreTarget> {
  if (kind === "postgres") {
    const db = await createDb(label);
    return { kind, env: { DATABASE_URL: db.url }, args: [], db, cleanup: () => db.drop() };
  }
  const dir = mkdtempSync(join(tmpdir(), `jqbench-${label}-`));
  return {
    kind, env: {}, args: ["--db", join(dir, "jobqueue.db")],
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---- the jobqueue binary --------------------------------------------------------------------

export interface ServerProcess {
  proc: Subprocess<"ignore", "ignore", "pipe">;
  pid: number;
  url: string;
  /** performance.now() when spawned and when it logged "listening". */
  spawnedAt: number;
  listeningAt: number;
  /** Every JSON log line so far, parsed. */
  logs: Array<Record<string, unknown>>;
  /** SIGTERM, then wait for the exit code (SIGKILL after 30 s). */
  stop(): Promise<number>;
}

/** A job types file for `toml`; one file per distinct content, reused across runs. Returns its path. */
export function typesFile(toml: string): string {
  const dir = join(tmpdir(), "jqbench-types");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${new Bun.CryptoHasher("sha256").update(toml).digest("hex").slice(0, 16)}.toml`);
  writeFileSync(path, toml);
  return path;
}

export const NOOP_TYPES = `[types.noop]\nbuiltin = "noop"\n`;

/** Spawns a server that logs JSON lines on stderr and resolves once one says "listening". */
export async function spawnServer(cmd: string[], env: Record<string, string>): Promise<ServerProcess> {
  const spawnedAt = performance.now();
  const proc = Bun.spawn(cmd, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const logs: Array<Record<string, unknown>> = [];
  let onListening: (v: { url: string; at: number }) => void = () => {};
  const listening = new Promise<{ url: string; at: number }>((resolve) => (onListening = resolve));
  void (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stderr) {
      buf += decoder.decode(chunk, { stream: true });
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          entry = { raw: line };
        }
        logs.push(entry);
        if (entry.msg === "listening") onListening({ url: String(entry.url), at: performance.now() });
      }
    }
  })();
  const up = await Promise.race([
    listening,
    proc.exited.then((code) => {
      throw new Error(`${cmd[0]} exited with ${code} before listening: ${JSON.stringify(logs.slice(-3))}`);
    }),
  ]);
  return {
    proc, pid: proc.pid, url: up.url, spawnedAt, listeningAt: up.at, logs,
    async stop() {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
      const code = await proc.exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Starts dist/jobqueue on a store target with a types file; resolves once it is listening. */
export async function startJobqueue(opts: {
  target: StoreTarget;
  types: string;
  args?: string[];
  env?: Record<string, string>;
}): Promise<ServerProcess> {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run make build first`);
  return spawnServer([BINARY, ...opts.target.args, ...(opts.args ?? [])], {
    PORT: "0",
    JOBQUEUE_CONFIG: opts.types,
    JOBQUEUE_NODE_ID: "bench",
    JOBQUEUE_LOG_LEVEL: "info",
    ...opts.target.env,
    ...opts.env,
  });
}

/** Runs `dist/jobqueue migrate` against a target and waits for it. */
export async function migrate(target: StoreTarget): Promise<void> {
  const proc = Bun.spawn([BINARY, "migrate", ...target.args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...target.env },
    stdout: "ignore",
    stderr: "pipe",
  });
  if ((await proc.exited) !== 0) throw new Error(`jobqueue migrate failed: ${await new Response(proc.stderr).text()}`);
}

/** The sum of one counter's series whose label text contains `labelPart` (e.g. `type="noop"`). */
export async function counter(url: string, name: string, labelPart = ""): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== "{" && line[name.length] !== " ")) continue;
    if (labelPart && !line.includes(labelPart)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** A local server that accepts webhooks and never answers (until closed): holds a worker slot. */
export function holdingReceiver(): { url: string; close(): void } {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch: () => new Promise<Response>(() => {}),
  });
  return { url: `http://127.0.0.1:${server.port}/hold`, close: () => void server.stop(true) };
}

// ---- load generation ------------------------------------------------------------------------

/**
 * Calls `send(i)` for i = 0.. at a fixed rate for `durationMs` (open loop: a slow reply never
 * delays the next send). Sends due in the same millisecond go together.
 */
export async function paced(rate: number, durationMs: number, send: (i: number) => void): Promise<number> {
  const total = Math.floor((rate * durationMs) / 1000);
  const start = performance.now();
  let i = 0;
  while (i < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    while (i < due) send(i++);
    await Bun.sleep(1);
  }
  return total;
}

/** Polls `check` every `intervalMs` until it returns true; throws after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await Bun.sleep(intervalMs);
  }
}

// ---- statistics -----------------------------------------------------------------------------

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

// ---- the machine ----------------------------------------------------------------------------

export async function machineLine(): Promise<string> {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown CPU";
  const cores = cpuinfo.split("\n").filter((l) => l.startsWith("processor")).length;
  const node = Bun.spawnSync(["node", "--version"], { stdout: "pipe" }).stdout.toString().trim() || "missing";
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  const [pg] = await admin<{ v: string }[]>`SELECT current_setting('server_version') AS v`;
  await admin.end();
  const redis = Bun.spawnSync(["redis-cli", "-u", REDIS_URL, "info", "server"], { stdout: "pipe" }).stdout.toString();
  const redisVersion = /redis_version:(\S+)/.exec(redis)?.[1] ?? "missing";
  const memGb = Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) / 1024 / 1024;
  return `${model}, ${cores} cores, ${memGb.toFixed(0)} GiB · Linux · Bun ${Bun.version} · Node ${node} · ` +
    `PostgreSQL ${pg?.v ?? "?"} · Redis ${redisVersion} · wrk ${wrkVersion()}`;
}
