// node-id.binary.test.ts: a node id belongs to one live process. On one PostgreSQL, a second binary
// started with a running node's id is refused (exit 2, the id named) and takes nothing from it; after
// kill -9 a restart with that id takes its jobs back at once; with --port 0 and no --node-id, two
// processes get ids of their own. (The embedded store's file lock already allows one process.)
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, startBinary } from "./support/binary.ts";
import { createTestDatabase } from "./support/pg.ts";
import { startReceiver, type Receiver } from "./support/receiver.ts";
import { waitFor } from "./support/wait.ts";

let db: { url: string; drop: () => Promise<void> };
let receiver: Receiver;
let env: Record<string, string>;
beforeAll(async () => {
  db = await createTestDatabase("jq_nodeid");
  receiver = startReceiver({ slowMs: 60_000 });
  const configPath = join(mkdtempSync(join(tmpdir(), "jq-nodeid-")), "jobs.toml");
  writeFileSync(configPath, `[types.hook]\nurl = "${receiver.url}"\ntimeout = "5m"\nmax_attempts = 3\n`);
  env = { DATABASE_URL: db.url, PORT: "0", JOBQUEUE_CONFIG: configPath, JOBQUEUE_LEASE_MS: "600000", JOBQUEUE_SHUTDOWN_GRACE_MS: "100" };
});
afterAll(async () => {
  receiver?.stop();
  await db?.drop();
});

async function inflight(): Promise<Array<{ id: string; owner: string; attempts: number }>> {
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    return await sql<{ id: string; owner: string; attempts: number }[]>`SELECT id::text, owner, attempts FROM inflight_jobs ORDER BY id`;
  } finally {
    await sql.end();
  }
}

test("a second live process with the same node id is refused and changes nothing; after kill -9 a restart takes the jobs back at once", async () => {
  const first = await startBinary([], { ...env, JOBQUEUE_NODE_ID: "worker-a" });
  const res = await fetch(`${first.url}/submit`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "hook", payload: { mode: "slow" } }),
  });
  const { id } = (await res.json()) as { id: string };
  await waitFor(() => receiver.slowInProgress === 1, { what: "the job running on the first process" });
  expect(await inflight()).toEqual([{ id, owner: "worker-a", attempts: 1 }]);

  const second = Bun.spawn([await ensureBinary()], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env, JOBQUEUE_NODE_ID: "worker-a" }, stdout: "ignore", stderr: "pipe",
  });
  expect(await second.exited).toBe(2);
  const stderr = await new Response(second.stderr).text();
  expect(stderr).toContain('node id \\"worker-a\\" is held by another live jobqueue process');
  // It took nothing: the job is still the first process's, on its first attempt, and ran once.
  expect(await inflight()).toEqual([{ id, owner: "worker-a", attempts: 1 }]);
  expect(receiver.deliveries.get(id)!.attempts).toEqual([1]);

  first.proc.kill("SIGKILL");
  await first.exited;
  const restarted = await startBinary([], { ...env, JOBQUEUE_NODE_ID: "worker-a" });
  try {
    // Taken back at start-up (the lease has ten minutes left) and delivered again at once.
    expect(restarted.logs.some((l) => l.msg === "recovered this node's interrupted jobs" && l.count === 1)).toBe(true);
    await waitFor(() => receiver.deliveries.get(id)!.attempts.length === 2, { what: "the job's second delivery" });
    expect(receiver.deliveries.get(id)!.attempts).toEqual([1, 2]);
  } finally {
    restarted.proc.kill("SIGKILL");
    await restarted.exited;
  }
});

test("with --port 0 and no --node-id, two processes on one database each get an id of their own", async () => {
  const a = await startBinary([], env);
  const b = await startBinary([], env);
  try {
    const ids = [a, b].map((n) => n.logs.find((l) => l.msg === "listening")!.node as string);
    expect(ids[0]).toMatch(/:0-\d+\./);
    expect(ids[1]).toMatch(/:0-\d+\./);
    expect(ids[0]).not.toBe(ids[1]);
  } finally {
    for (const n of [a, b]) n.proc.kill("SIGTERM");
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
  }
});
