// e2e.binary.test.ts: the compiled binary on each store (PostgreSQL, embedded SQLite) with a
// webhook receiver run by the test: 2,000 jobs over real HTTP, some flaky and some always failing,
// a kill -9 mid-run and a restart; every acknowledged job must be accounted for.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import postgres from "postgres";
import { startBinary, type RunningBinary } from "./support/binary.ts";
import { createTestDatabase } from "./support/pg.ts";
import { waitFor } from "./support/wait.ts";

type Mode = "ok" | "flaky" | "fail";
const TOTAL = 2000;
const MAX_ATTEMPTS = 3;

let db: { url: string; drop: () => Promise<void> };
let receiver: ReturnType<typeof Bun.serve>;
/** id → attempts delivered (in arrival order) and whether one was answered 2xx. */
const deliveries = new Map<string, { attempts: number[]; succeeded: boolean; mode: Mode }>();
let deliveredCount = 0;

beforeAll(async () => {
  db = await createTestDatabase("jq_e2e");
  receiver = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = (await req.json()) as { id: string; type: string; payload: { mode: Mode }; attempt: number; maxAttempts: number };
      expect(req.headers.get("x-job-id")).toBe(body.id);
      expect(Number(req.headers.get("x-job-attempt"))).toBe(body.attempt);
      const d = deliveries.get(body.id) ?? { attempts: [], succeeded: false, mode: body.payload.mode };
      deliveries.set(body.id, d);
      d.attempts.push(body.attempt);
      deliveredCount++;
      const ok = body.payload.mode === "ok" || (body.payload.mode === "flaky" && body.attempt > 2);
      if (ok) d.succeeded = true;
      await Bun.sleep(1); // let a backlog build so the kill lands mid-run
      return new Response(ok ? "ok" : "nope", { status: ok ? 200 : 500 });
    },
  });
});

afterAll(async () => {
  receiver?.stop(true);
  await db?.drop();
});

function modeFor(i: number): Mode {
  if (i % 10 === 3) return "flaky";
  if (i % 50 === 7) return "fail";
  return "ok";
}

/** Submits job numbers `todo` over HTTP; returns those not acknowledged (to submit again). */
async function submitAll(url: string, todo: number[], acked: Map<string, Mode>, concurrency = 16): Promise<number[]> {
  const queue = [...todo];
  const unacked: number[] = [];
  const worker = async () => {
    while (queue.length > 0) {
      const i = queue.shift()!;
      const mode = modeFor(i);
      try {
        const res = await fetch(`${url}/submit`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ type: "hook", payload: { mode, i }, priority: Math.floor(Math.random() * 101) }),
        });
        if (res.status === 202) acked.set(((await res.json()) as { id: string }).id, mode);
        else {
          unacked.push(i);
          await res.body?.cancel();
        }
      } catch {
        // The server was killed under this request: not acknowledged, so nothing is promised.
        unacked.push(i);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return unacked;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** Reads the store's tables while no server holds them (SQLite is locked by its server). */
interface StoreProbe {
  env: Record<string, string>;
  inflightIds(): Promise<Set<string>>;
  deadRows(): Promise<Map<string, { attempts: number; last_error: string }>>;
  liveCount(): Promise<number>;
}

function postgresProbe(): StoreProbe {
  const q = async <T,>(fn: (sql: postgres.Sql) => Promise<T>) => {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try { return await fn(sql); } finally { await sql.end(); }
  };
  return {
    env: { DATABASE_URL: db.url },
    inflightIds: () => q(async (sql) => new Set((await sql<{ id: string }[]>`SELECT id::text FROM inflight_jobs`).map((r) => r.id))),
    deadRows: () => q(async (sql) => new Map((await sql<{ id: string; attempts: number; last_error: string }[]>`SELECT id::text, attempts, last_error FROM dead_jobs`).map((r) => [r.id, r]))),
    liveCount: () => q(async (sql) => Number((await sql<{ n: string }[]>`SELECT (SELECT count(*) FROM pending_jobs) + (SELECT count(*) FROM inflight_jobs) AS n`)[0]!.n)),
  };
}

function sqliteProbe(path: string): StoreProbe {
  const q = <T,>(fn: (d: Database) => T): Promise<T> => {
    const d = new Database(path, { readonly: true });
    try { return Promise.resolve(fn(d)); } finally { d.close(true); }
  };
  return {
    env: { JOBQUEUE_DB: path },
    inflightIds: () => q((d) => new Set(d.query<{ id: number }, []>("SELECT id FROM inflight_jobs").all().map((r) => String(r.id)))),
    deadRows: () => q((d) => new Map(d.query<{ id: number; attempts: number; last_error: string }, []>("SELECT id, attempts, last_error FROM dead_jobs").all().map((r) => [String(r.id), r]))),
    liveCount: () => q((d) => d.query<{ n: number }, []>("SELECT (SELECT count(*) FROM pending_jobs) + (SELECT count(*) FROM inflight_jobs) AS n").get()!.n),
  };
}

async function gauge(url: string, name: string): Promise<number> {
  return (await scrape(url)).get(name) ?? NaN;
}

for (const [storeName, makeProbe] of [
  ["postgres", () => postgresProbe()],
  ["sqlite", () => sqliteProbe(join(mkdtempSync(join(tmpdir(), "jq-e2e-db-")), "jobs.db"))],
] as const) {
  test(`${storeName}: kill -9 mid-run and restart: every acknowledged job is delivered and settled as configured`, async () => {
    deliveries.clear();
    deliveredCount = 0;
    const probe = makeProbe();
    const dir = mkdtempSync(join(tmpdir(), "jq-e2e-"));
    const configPath = join(dir, "jobs.toml");
    writeFileSync(configPath, `[types.hook]\nurl = "http://127.0.0.1:${receiver.port}/hook"\ntimeout = "5s"\nmax_attempts = ${MAX_ATTEMPTS}\n`);
    const env = {
      ...probe.env, PORT: "0", JOBQUEUE_CONFIG: configPath, JOBQUEUE_NODE_ID: "e2e-node",
      JOBQUEUE_WORKERS: "8", JOBQUEUE_BACKOFF_BASE_MS: "20", JOBQUEUE_BACKOFF_CAP_MS: "100", JOBQUEUE_LOG_LEVEL: "info",
    };
    const acked = new Map<string, Mode>();

    let node: RunningBinary = await startBinary([], env);
    // Phase 1: submit the first 1,200 and kill -9 once ~300 deliveries happened, submits still flowing.
    const submitting = submitAll(node.url, range(0, 1200), acked);
    await waitFor(() => deliveredCount >= 300, { what: "300 deliveries" });
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
      await waitFor(async () => {
        const m = await scrape(node.url);
        return m.get("jobqueue_jobs_ready") === 0 && m.get("jobqueue_jobs_scheduled") === 0 && m.get("jobqueue_jobs_inflight") === 0;
      }, { timeoutMs: 60_000, what: "queue drained" });

      // /metrics agrees with what happened after the restart.
      const m = await scrape(node.url);
      expect(m.get("jobqueue_workers_busy")).toBe(0);
      expect(m.get('jobqueue_jobs_submitted_total{type="hook"}')).toBe(acked.size - ackedBeforeKill);
      expect(m.get('jobqueue_jobs_dead_total{type="hook"}') ?? 0).toBeGreaterThan(0);
      expect(await gauge(node.url, "jobqueue_oldest_ready_age_seconds")).toBe(0);
      deadAfterRestart = m.get('jobqueue_jobs_dead_total{type="hook"}') ?? 0;
    } finally {
      node.proc.kill("SIGTERM");
      expect(await node.exited).toBe(0);
    }

    expect(await probe.liveCount()).toBe(0);
    const dead = await probe.deadRows();
    expect(deadAfterRestart).toBeLessThanOrEqual(dead.size);
    let retriedThenDone = 0, deadLettered = 0;
    for (const [id, mode] of acked) {
      const d = deliveries.get(id);
      expect(d, `acknowledged job ${id} was never delivered`).toBeDefined();
      expect(Math.max(...d!.attempts)).toBeLessThanOrEqual(MAX_ATTEMPTS);
      if (inflightAtKill.has(id)) continue;
      if (mode === "fail") {
        expect(d!.succeeded).toBe(false);
        expect(dead.get(id), `failing job ${id} not dead-lettered`).toMatchObject({ attempts: MAX_ATTEMPTS });
        expect(dead.get(id)!.last_error).toContain("webhook answered 500");
        deadLettered++;
      } else {
        expect(d!.succeeded, `job ${id} (${mode}) never succeeded`).toBe(true);
        expect(dead.has(id)).toBe(false);
        if (mode === "flaky") {
          expect(d!.attempts).toContain(3);
          retriedThenDone++;
        }
      }
    }
    const twice = [...deliveries].filter(([, d]) => d.mode === "ok" && d.attempts.length > 1).map(([id]) => id);
    console.log(`e2e ${storeName}: acked=${acked.size} (before kill ${ackedBeforeKill}) flaky-then-done=${retriedThenDone} dead=${deadLettered} inflight-at-kill=${inflightAtKill.size} ok-delivered-twice=${twice.length} deliveries=${deliveredCount}`);
    expect(acked.size).toBe(TOTAL);
    expect(inflightAtKill.size).toBeLessThanOrEqual(8 * 2);
    // Only jobs in flight at the kill may be delivered twice.
    for (const id of twice) expect(inflightAtKill.has(id), `job ${id} delivered twice but was not in flight at the kill`).toBe(true);
  }, 120_000);
}
