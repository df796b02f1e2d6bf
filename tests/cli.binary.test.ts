// cli.binary.test.ts: the compiled executable's command line: --help, --version, bad settings
// (one clear line, exit 2), migrate, and running from a directory with nothing beside it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import pkg from "../package.json" with { type: "json" };
import { ensureBinary, startBinary } from "./support/binary.ts";
import { createTestDatabase } from "./support/pg.ts";

let bin: string;
let db: { url: string; drop: () => Promise<void> };
const emptyDir = mkdtempSync(join(tmpdir(), "jq-cli-"));

beforeAll(async () => {
  bin = await ensureBinary();
  db = await createTestDatabase("jq_cli");
});
afterAll(async () => {
  await db.drop();
});

async function run(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn([bin, ...args], { cwd: emptyDir, env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

test("--help lists every option with its environment variable and exits 0", async () => {
  const r = await run(["--help"]);
  expect(r.code).toBe(0);
  for (const env of ["PORT", "HOST", "DATABASE_URL", "JOBQUEUE_CONFIG", "JOBQUEUE_WORKERS", "JOBQUEUE_LEASE_MS", "JOBQUEUE_AGING_MS", "JOBQUEUE_SHUTDOWN_GRACE_MS", "JOBQUEUE_NODE_ID", "JOBQUEUE_LOG_LEVEL"]) {
    expect(r.stdout).toContain(env);
  }
  // The types file's keys, flow control's included.
  for (const key of ["rate = ", "key_concurrency", "key_rate", "max_throttles", "breaker", "concurrency", "backoff"]) expect(r.stdout).toContain(key);
  // The store commands, with their flags.
  for (const usage of ["jobqueue backup <file> [--url <url>]", "jobqueue backup <file> --db <path>", "jobqueue move-to-postgres --from <path>"]) {
    expect(r.stdout).toContain(usage);
  }
});

test("--version prints the package version, the commit it was built from and its target", async () => {
  const r = await run(["--version"]);
  expect(r.code).toBe(0);
  // tests/version.binary.test.ts checks the commit and target a build fixes; this binary may be older.
  const version = pkg.version.replaceAll(".", "\\.");
  expect(r.stdout).toMatch(new RegExp(`^jobqueue ${version} \\(commit ([0-9a-f]{7,}(-dirty)?|unknown), ${process.platform}-${process.arch}(-musl)?\\)\\n$`));
});

test("a bad setting stops start-up with one clear line and exit code 2", async () => {
  const r = await run([], { JOBQUEUE_WORKERS: "lots", DATABASE_URL: db.url });
  expect(r.code).toBe(2);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(r.stderr).toContain("JOBQUEUE_WORKERS");
  const flag = await run(["--lease-ms", "-5"], { DATABASE_URL: db.url });
  expect(flag.code).toBe(2);
  expect(flag.stderr).toContain("--lease-ms");
});

test("a broken job types file stops start-up with exit code 2 naming the key", async () => {
  const path = join(emptyDir, "bad.toml");
  await Bun.write(path, '[types.x]\nurl = "ftp://nope"\n');
  const r = await run(["--config", path], { DATABASE_URL: db.url });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("types.x.url");
});

test("migrate creates the tables from the migrations inside the binary, run from an empty directory", async () => {
  const r = await run(["migrate"], { DATABASE_URL: db.url, JOBQUEUE_LOG_LEVEL: "error" });
  expect(r.code).toBe(0);
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const tables = (await sql<{ t: string }[]>`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`).map((r) => r.t);
  await sql.end();
  expect(tables).toEqual(expect.arrayContaining(["dead_jobs", "idempotency_keys", "inflight_jobs", "jobqueue_migrations", "jobqueue_nodes", "pending_jobs"]));
  // Twice is harmless.
  expect((await run(["migrate"], { DATABASE_URL: db.url, JOBQUEUE_LOG_LEVEL: "error" })).code).toBe(0);
});

test("without DATABASE_URL it runs on the embedded store, and a second process on the same file is refused with a clear message", async () => {
  const dbPath = join(emptyDir, "nested", "dir", "jobs.db");
  const first = await startBinary(["--port", "0", "--node-id", "one"], { JOBQUEUE_DB: dbPath }, emptyDir);
  try {
    expect(first.logs.find((l) => l.msg === "store selected")).toMatchObject({ store: "sqlite", location: dbPath });
    const second = await run(["--port", "0", "--node-id", "two"], { JOBQUEUE_DB: dbPath });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain("in use by another jobqueue process");
  } finally {
    first.proc.kill("SIGTERM");
    expect(await first.exited).toBe(0);
  }
  // Once the first one is gone the file is free again.
  const third = await startBinary(["--port", "0", "--node-id", "three"], { DATABASE_URL: `sqlite://${dbPath}` }, emptyDir);
  third.proc.kill("SIGTERM");
  expect(await third.exited).toBe(0);
});
