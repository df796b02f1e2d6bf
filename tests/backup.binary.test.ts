// backup.binary.test.ts: `jobqueue backup` with the compiled binary against a real server on the
// embedded store under a steady submit/complete load (a noop type and a slow webhook type, so jobs
// are pending and running): the copy holds every job acknowledged before the backup began, each
// once; a new server on the restored file serves them (ids, idempotency keys) and runs them to
// completion. And the refusals: a second process on the live file, `backup --db` while a server
// holds it, a server on PostgreSQL.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, startBinary, type RunningBinary } from "./support/binary.ts";
import { createTestDatabase } from "./support/pg.ts";
import { startReceiver, type Receiver } from "./support/receiver.ts";
import { waitFor } from "./support/wait.ts";

const TOKEN = "backup-test-token-0123456789";
const NODE = "backup-node";
const auth = { authorization: `Bearer ${TOKEN}` };

let bin: string;
let receiver: Receiver;
const dir = mkdtempSync(join(tmpdir(), "jq-backup-bin-"));
const configPath = join(dir, "jobs.toml");

beforeAll(async () => {
  bin = await ensureBinary();
  receiver = startReceiver({ slowMs: 150 });
  writeFileSync(configPath, `[types.noop]\nbuiltin = "noop"\n\n[types.slow]\nurl = "${receiver.url}"\ntimeout = "10s"\n`);
});
afterAll(() => {
  receiver?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function run(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn([bin, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

const serverEnv = (db: string, workers: number) => ({
  PORT: "0", JOBQUEUE_DB: db, JOBQUEUE_CONFIG: configPath, JOBQUEUE_TOKEN: TOKEN, JOBQUEUE_NODE_ID: NODE,
  JOBQUEUE_KEEP_COMPLETED: "1h", JOBQUEUE_WORKERS: String(workers), JOBQUEUE_SQLITE_SYNCHRONOUS: "NORMAL",
});

interface Ack { key: string; id: string; at: number }

/** Producers submitting one job per request, each with its own idempotency key, until stopped. */
function startLoad(url: string, producers: number) {
  const acks: Ack[] = [];
  let stopped = false;
  let n = 0;
  const loop = async () => {
    while (!stopped) {
      const i = n++;
      const key = `job-${i}`;
      const res = await fetch(`${url}/submit`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth },
        body: JSON.stringify({ type: i % 3 === 0 ? "slow" : "noop", payload: { mode: "slow", i }, idempotencyKey: key }),
      });
      const body = (await res.json()) as { id: string };
      if (res.status === 202) acks.push({ key, id: body.id, at: performance.now() });
    }
  };
  const loops = Array.from({ length: producers }, loop);
  return { acks, stop: async () => {
    stopped = true;
    await Promise.all(loops);
  } };
}

/** Every job id in a store file, from all four tables (a job is in exactly one). */
function idsIn(path: string): { ids: number[]; keys: Map<string, number> } {
  const db = new Database(path, { readonly: true });
  try {
    const ids = db.query<{ id: number }, []>(`
      SELECT id FROM pending_jobs UNION ALL SELECT id FROM inflight_jobs UNION ALL
      SELECT id FROM dead_jobs UNION ALL SELECT id FROM completed_jobs`).all().map((r) => r.id);
    const keys = new Map(db.query<{ key: string; job_id: number }, []>("SELECT key, job_id FROM idempotency_keys").all().map((r) => [r.key, r.job_id]));
    return { ids, keys };
  } finally {
    db.close();
  }
}

describe("jobqueue backup against a server on the embedded store", () => {
  const liveDb = join(dir, "live", "jobs.db");
  const backupFile = join(dir, "backups", "copy.db");
  let live: RunningBinary;
  let ackedBefore: Ack[] = [];
  let everyAck: Ack[] = [];

  beforeAll(async () => {
    live = await startBinary([], serverEnv(liveDb, 4), dir);
  });
  afterAll(() => {
    live?.proc.kill("SIGKILL");
  });

  test("a backup taken under load holds every job acknowledged before it began, each once", async () => {
    const load = startLoad(live.url, 4);
    await waitFor(() => load.acks.length >= 300 && receiver.slowInProgress > 0, { what: "300 acknowledged submits with slow jobs running" });
    const startedAt = performance.now();
    const backup = await run(["backup", backupFile, "--url", live.url], { JOBQUEUE_TOKEN: TOKEN });
    const endedAt = performance.now();
    // The load went on through the backup and after it.
    const acksAtEnd = load.acks.length;
    await waitFor(() => load.acks.length >= acksAtEnd + 50, { what: "50 more acknowledged submits after the backup" });
    await load.stop();
    expect(backup.stderr).toBe("");
    expect(backup.code).toBe(0);
    everyAck = load.acks;
    ackedBefore = load.acks.filter((a) => a.at < startedAt);
    expect(ackedBefore.length).toBeGreaterThanOrEqual(300);
    expect(load.acks.some((a) => a.at > startedAt && a.at < endedAt)).toBe(true);

    const summary = JSON.parse(backup.stdout) as { file: string; bytes: number; schemaVersion: number; jobs: Record<string, number> };
    expect(summary.file).toBe(backupFile);
    expect(summary.schemaVersion).toBeGreaterThanOrEqual(18);
    // Some jobs were still waiting or running when the copy was made.
    expect(summary.jobs.pending! + summary.jobs.inflight!).toBeGreaterThan(0);
    // Written atomically: the file, and nothing else left beside it.
    expect(readdirSync(join(dir, "backups"))).toEqual(["copy.db"]);

    const { ids, keys } = idsIn(backupFile);
    expect(new Set(ids).size).toBe(ids.length);
    const present = new Set(ids);
    const missing = ackedBefore.filter((a) => !present.has(Number(a.id)) || keys.get(a.key) !== Number(a.id));
    expect(missing).toEqual([]);
  });

  test("while the server runs, its file stays locked: a second server and `backup --db` are refused", async () => {
    const second = await run(["--port", "0", "--node-id", "other"], { JOBQUEUE_DB: liveDb });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain("in use by another jobqueue process");
    const offline = await run(["backup", join(dir, "backups", "offline.db"), "--db", liveDb]);
    expect(offline.code).toBe(1);
    expect(offline.stderr).toContain("in use by another jobqueue process");
    expect(existsSync(join(dir, "backups", "offline.db"))).toBe(false);
  });

  test("a new server on the restored copy serves every job acknowledged before the backup, keeps their keys, and runs them to completion", async () => {
    const restoredDb = join(dir, "restored", "jobs.db");
    mkdirSync(join(dir, "restored"));
    copyFileSync(backupFile, restoredDb);
    const restored = await startBinary([], serverEnv(restoredDb, 32), dir);
    try {
      const get = async (id: string) => {
        const res = await fetch(`${restored.url}/jobs/${id}`, { headers: auth });
        return { status: res.status, body: (await res.json()) as { id: string; state: string } };
      };
      for (let i = 0; i < ackedBefore.length; i += 50) {
        const answers = await Promise.all(ackedBefore.slice(i, i + 50).map((a) => get(a.id)));
        expect(answers.filter((r) => r.status !== 200)).toEqual([]);
      }
      // The idempotency keys came along: submitting one again names the job that holds it.
      for (const a of ackedBefore.slice(0, 20)) {
        const res = await fetch(`${restored.url}/submit`, {
          method: "POST", headers: { "content-type": "application/json", ...auth },
          body: JSON.stringify({ type: "noop", idempotencyKey: a.key }),
        });
        expect({ status: res.status, body: await res.json() }).toEqual({ status: 200, body: { id: a.id, duplicate: true } });
      }
      // It runs what was waiting or running (the same node id takes its running jobs back at once).
      await waitFor(async () => {
        const stats = (await (await fetch(`${restored.url}/stats`, { headers: auth })).json()) as { jobs: Record<string, number> };
        return stats.jobs.pending === 0 && stats.jobs.scheduled === 0 && stats.jobs.inflight === 0;
      }, { what: "the restored server to run every job", timeoutMs: 30_000 });
      for (let i = 0; i < ackedBefore.length; i += 50) {
        const answers = await Promise.all(ackedBefore.slice(i, i + 50).map((a) => get(a.id)));
        expect(answers.filter((r) => r.body.state !== "completed").map((r) => r.body)).toEqual([]);
      }
      // New jobs get ids the copy never handed out.
      const fresh = await fetch(`${restored.url}/submit`, {
        method: "POST", headers: { "content-type": "application/json", ...auth }, body: JSON.stringify({ type: "noop" }),
      });
      const maxBefore = Math.max(...idsIn(backupFile).ids);
      expect(Number(((await fresh.json()) as { id: string }).id)).toBeGreaterThan(maxBefore);
    } finally {
      restored.proc.kill("SIGTERM");
      expect(await restored.exited).toBe(0);
    }
  });

  test("once the server stops, `backup --db` copies its file with every job it acknowledged", async () => {
    live.proc.kill("SIGTERM");
    expect(await live.exited).toBe(0);
    const out = join(dir, "backups", "offline.db");
    const r = await run(["backup", out, "--db", liveDb]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const { ids, keys } = idsIn(out);
    expect(new Set(ids).size).toBe(ids.length);
    const present = new Set(ids);
    expect(everyAck.filter((a) => !present.has(Number(a.id)) || keys.get(a.key) !== Number(a.id))).toEqual([]);
  });
});

describe("jobqueue backup refusals", () => {
  test("a server on PostgreSQL answers 409 and the command says to use pg_dump, writing nothing", async () => {
    const db = await createTestDatabase("jq_backup");
    const server = await startBinary([], { PORT: "0", DATABASE_URL: db.url, JOBQUEUE_TOKEN: TOKEN, JOBQUEUE_NODE_ID: "pg-backup" }, dir);
    try {
      const out = join(dir, "pg", "copy.db");
      const r = await run(["backup", out, "--url", server.url], { JOBQUEUE_TOKEN: TOKEN });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("409 backup_unsupported");
      expect(r.stderr).toContain("pg_dump");
      expect(existsSync(out)).toBe(false);
    } finally {
      server.proc.kill("SIGTERM");
      await server.exited;
      await db.drop();
    }
  });

  test("bad arguments exit 2 with one line; a missing store file exits 1", async () => {
    const noFile = await run(["backup"]);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr.trim().split("\n")).toHaveLength(1);
    const both = await run(["backup", "x.db", "--db", "a.db", "--url", "http://127.0.0.1:1"]);
    expect(both.code).toBe(2);
    const missing = await run(["backup", "x.db", "--db", join(dir, "nope.db")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no such file");
    expect(existsSync(join(dir, "nope.db"))).toBe(false);
  });
});
