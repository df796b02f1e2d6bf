// move-to-postgres.binary.test.ts: `jobqueue move-to-postgres` with the compiled binary: an embedded
// store holding every kind of job (pending, scheduled, keyed with a deadline and a throttle, dead with
// its history, a kept completion, running ones, a paused type's, a schedule's, a rate-limited type's)
// arrives in PostgreSQL job by job as the SQLite store showed it (running jobs pending, their attempt
// not counted but on record), with its keys, pauses, schedules and rate buckets, and new jobs get ids
// above every id the file handed out. Refused: a target that holds jobs, a file a server holds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { MOVED_WHILE_RUNNING } from "../src/ops/move-to-postgres.ts";
import type { JobView, NewJob } from "../src/store/rows.ts";
import { createPostgresStore } from "../src/store/postgres/index.ts";
import { createSqliteStore } from "../src/store/sqlite/index.ts";
import type { ScheduleState } from "../src/store/rows.ts";
import { ensureBinary, startBinary } from "./support/binary.ts";
import { createTestDatabase } from "./support/pg.ts";

const T = 1_700_000_000_000;
const NOW = T + 10_000;
const OWNER = "sqlite-node";
const dir = mkdtempSync(join(tmpdir(), "jq-move-"));
const file = join(dir, "jobs.db");

let bin: string;
let target: { url: string; drop: () => Promise<void> };

async function run(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn([bin, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

const job = (over: Partial<NewJob> = {}): NewJob => ({
  type: "email", payload: JSON.stringify({ to: "a@example.com", note: 'quotes " \\ and ü 🎉' }), priority: 5, maxAttempts: 3,
  runAt: T, timeoutMs: null, ...over,
});

/** What the file held, as the SQLite store showed it, and which ids are which. */
interface Built {
  views: Map<number, JobView>;
  ids: Record<"pending" | "scheduled" | "keyed" | "dead" | "completed" | "running" | "longRunning" | "paused" | "scheduledTick" | "rated" | "vanished", number>;
  claimedAt: Map<number, number>;
  schedules: ScheduleState[];
  bucket: { type: string; tat: number };
}

/** An embedded store with every kind of job, built through its own moves on a fake clock. */
async function buildStore(): Promise<Built> {
  const s = createSqliteStore({ path: file });
  await s.migrate();
  const add = async (j: NewJob, at = T) => (await s.add([j], at))[0]!.id;
  const claim = async (id: number, at: number, limits?: Parameters<typeof s.claim>[4]) => {
    const r = await s.claim([id], OWNER, at, 30_000, limits);
    expect(r.jobs.map((j) => j.id)).toEqual([id]);
    return r.jobs[0]!.attempts;
  };
  const claimedAt = new Map<number, number>();

  const pending = await add(job({ idempotencyKey: "pending-key" }));
  const scheduled = await add(job({ runAt: T + 3_600_000, timeoutMs: 5000, priority: 80 }));
  const keyed = await add(job({ type: "api", key: "tenant-a", startBy: T + 86_400_000, idempotencyKey: "keyed-key", trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }));
  await claim(keyed, T + 1000);
  expect(await s.throttle([{ id: keyed, attempt: 1, runAt: T + 60_000, error: "target asked to wait", end: { outcome: "throttled", endedAt: T + 1500, status: 429 } }])).toEqual([true]);

  const dead = await add(job({ type: "report", maxAttempts: 2 }));
  await claim(dead, T + 2000);
  await s.retry([{ id: dead, attempt: 1, runAt: T + 2500, error: "first failure", end: { outcome: "failed", endedAt: T + 2100, status: 500 } }]);
  await claim(dead, T + 3000);
  await s.bury([{ id: dead, attempt: 2, error: "second failure", end: { outcome: "failed", endedAt: T + 3100, exitCode: 3 } }], T + 3100);

  const completed = await add(job({ idempotencyKey: "done-key" }));
  await claim(completed, T + 4000);
  await s.complete([{ id: completed, attempt: 1, result: "sent", runMs: 42 }], { finishedAt: T + 4042, expiresAt: T + 86_400_000 });

  const running = await add(job({ type: "api", key: "tenant-b" }));
  await claim(running, T + 5000);
  claimedAt.set(running, T + 5000);

  // A running job with a full history: its interrupted attempt pushes the oldest record out.
  const longRunning = await add(job({ maxAttempts: 100 }));
  for (let i = 0; i < 20; i++) {
    await claim(longRunning, T + 6000 + i * 10);
    await s.retry([{ id: longRunning, attempt: i + 1, runAt: T + 6000, error: `failure ${i + 1}`, end: { outcome: "failed", endedAt: T + 6005 + i * 10 } }]);
  }
  await claim(longRunning, T + 6500);
  claimedAt.set(longRunning, T + 6500);

  await s.pauseType("paused-type", T + 7000);
  const paused = await add(job({ type: "paused-type" }));
  const scheduledTick = (await s.enqueueTick("nightly", T + 8000, job({ type: "report", payload: "{}" }), T + 8000))!;

  const rated = await add(job({ type: "rated" }));
  await claim(rated, T + 9000, new Map([["rated", { rate: { limit: 10, perMs: 60_000, burst: 1 } }]]));
  // Completed and not kept: gone from the file, but its id was handed out.
  await s.complete([{ id: rated, attempt: 1 }]);
  const vanished = await add(job());
  await claim(vanished, T + 9500);
  await s.complete([{ id: vanished, attempt: 1 }]);

  const ids = { pending, scheduled, keyed, dead, completed, running, longRunning, paused, scheduledTick, rated, vanished };
  const views = new Map<number, JobView>();
  for (const id of Object.values(ids)) {
    const view = await s.get(id, NOW);
    if (view !== null) views.set(id, view);
  }
  const schedules = await s.scheduleStates();
  const [bucket] = (await s.rateBuckets()).map(({ type, tat }) => ({ type, tat }));
  await s.close();
  return { views, ids, claimedAt, schedules, bucket: bucket! };
}

describe("jobqueue move-to-postgres", () => {
  let built: Built;
  beforeAll(async () => {
    bin = await ensureBinary();
    target = await createTestDatabase("jq_move");
    built = await buildStore();
  });
  afterAll(async () => {
    await target?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("moves every job as the embedded store showed it, running ones as pending with their attempt on record but not counted", async () => {
    const { ids, views } = built;
    expect(views.get(ids.pending)?.state).toBe("pending");
    expect(views.get(ids.scheduled)?.state).toBe("scheduled");
    expect(views.get(ids.keyed)).toMatchObject({ state: "scheduled", key: "tenant-a", startBy: T + 86_400_000, throttles: 1, attempts: 0, trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" });
    expect(views.get(ids.dead)).toMatchObject({ state: "dead", lastError: "second failure", attempts: 2 });
    expect(views.get(ids.dead)?.attemptHistory).toHaveLength(2);
    expect(views.get(ids.completed)).toMatchObject({ state: "completed", result: "sent" });
    expect(views.get(ids.running)?.state).toBe("inflight");
    expect(views.get(ids.longRunning)).toMatchObject({ state: "inflight", attempts: 21 });
    expect(views.get(ids.longRunning)?.attemptHistory).toHaveLength(20);
    expect(views.has(ids.rated) || views.has(ids.vanished)).toBe(false);

    const r = await run(["move-to-postgres", "--from", file, "--to", target.url]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toEqual({
      from: file,
      to: target.url,
      tables: {
        pending_jobs: 7, dead_jobs: 1, completed_jobs: 1, idempotency_keys: 3,
        // keyed 1 + dead 2 + longRunning 20 (the oldest pushed out by its interruption) + running's interruption 1
        job_attempts: 24,
        jobqueue_paused: 1, jobqueue_schedules: 1, jobqueue_buckets: 1,
      },
      runningMovedToPending: 2,
      nextId: ids.vanished + 1,
    });

    const pg = createPostgresStore({ url: target.url });
    try {
      for (const [name, id] of Object.entries(ids)) {
        const before = views.get(id);
        const after = await pg.get(id, NOW);
        if (before === undefined) {
          expect({ name, after }).toEqual({ name, after: null });
          continue;
        }
        if (before.state !== "inflight") {
          expect({ name, job: after }).toEqual({ name, job: before });
          continue;
        }
        const interrupted = {
          attempt: before.attempts, node: OWNER, startedAt: built.claimedAt.get(id)!, endedAt: expect.any(Number),
          outcome: "node_restarted" as const, status: null, exitCode: null, error: MOVED_WHILE_RUNNING,
        };
        expect({ name, job: after }).toEqual({
          name,
          job: {
            ...before, state: "pending", attempts: before.attempts - 1, owner: null, leaseUntil: null,
            attemptHistory: [...before.attemptHistory!, interrupted].slice(-20),
          },
        });
      }

      // Idempotency keys hold: of a pending job, and of a kept completed one.
      expect(await pg.add([job({ idempotencyKey: "pending-key" }), job({ idempotencyKey: "done-key" })], NOW))
        .toEqual([{ id: ids.pending, duplicate: true }, { id: ids.completed, duplicate: true }]);
      expect(await pg.pausedTypes()).toEqual(["paused-type"]);
      expect(await pg.scheduleStates()).toEqual(built.schedules);
      expect((await pg.rateBuckets()).map(({ type, tat }) => ({ type, tat }))).toEqual([built.bucket]);
      // The paused type's job stays held on PostgreSQL too.
      const held = await pg.claim([ids.paused], "pg-node", NOW, 30_000);
      expect(held.jobs).toEqual([]);
      expect(held.held.map((h) => [h.id, h.reason])).toEqual([[ids.paused, "paused"]]);
      // New jobs get ids above every id the file handed out, the vanished job's included.
      const [fresh] = await pg.add([job()], NOW);
      expect(fresh!.id).toBeGreaterThan(ids.vanished);
    } finally {
      await pg.close();
    }
  });

  test("a target that already holds jobs is refused, and left as it was", async () => {
    const sql = postgres(target.url, { max: 1, onnotice: () => {} });
    try {
      const count = async () => (await sql<{ n: number }[]>`SELECT (SELECT count(*) FROM pending_jobs)::int + (SELECT count(*) FROM job_attempts)::int AS n`)[0]!.n;
      const before = await count();
      const r = await run(["move-to-postgres", "--from", file], { DATABASE_URL: target.url });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("already holds rows in pending_jobs");
      expect(await count()).toBe(before);
    } finally {
      await sql.end();
    }
  });

  test("a file a running server holds is refused before the target is touched", async () => {
    const heldFile = join(dir, "held.db");
    copyFileSync(file, heldFile);
    const fresh = await createTestDatabase("jq_move_held");
    const server = await startBinary(["--port", "0", "--node-id", "holder"], { JOBQUEUE_DB: heldFile }, dir);
    try {
      const r = await run(["move-to-postgres", "--from", heldFile, "--to", fresh.url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("in use by another jobqueue process");
      expect(r.stderr).toContain("stop the server first");
      const sql = postgres(fresh.url, { max: 1, onnotice: () => {} });
      const [row] = await sql<{ t: string | null }[]>`SELECT to_regclass('pending_jobs')::text AS t`;
      await sql.end();
      expect(row!.t).toBeNull();
    } finally {
      server.proc.kill("SIGTERM");
      await server.exited;
      await fresh.drop();
    }
  });

  test("a file that is not a jobqueue database is refused and left as it was; bad arguments exit 2", async () => {
    const other = join(dir, "other.db");
    const db = new Database(other);
    db.run("CREATE TABLE notes (t TEXT)");
    db.close();
    const r = await run(["move-to-postgres", "--from", other, "--to", target.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not a jobqueue database");
    const check = new Database(other, { readonly: true });
    expect(check.query<{ journal_mode: string }, []>("PRAGMA journal_mode").get()!.journal_mode).toBe("delete");
    expect(check.query<{ name: string }, []>("SELECT name FROM sqlite_master").all().map((t) => t.name)).toEqual(["notes"]);
    check.close();

    for (const args of [["move-to-postgres", "--to", target.url], ["move-to-postgres", "--from", file], ["move-to-postgres", "--from", file, "--to", "mysql://x"]]) {
      const bad = await run(args);
      expect({ args, code: bad.code }).toEqual({ args, code: 2 });
      expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});
