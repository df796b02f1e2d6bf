// pause.binary.test.ts: a pause holds across nodes and restarts, on the compiled binary: two nodes
// on one PostgreSQL database deliver webhooks to a receiver run by the test; a type paused through
// one node starts nowhere (not on the node its jobs were submitted to, not on the other, not after
// both restart) while other types run, and runs everywhere once resumed. A job of the paused type
// whose ttl passes meanwhile is dead-lettered as expired, and a retry runs it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBinary, type RunningBinary } from "./support/binary.ts";
import { createTestDatabase } from "./support/pg.ts";
import { startReceiver, type Receiver } from "./support/receiver.ts";
import { waitFor } from "./support/wait.ts";

let db: { url: string; drop: () => Promise<void> };
let receiver: Receiver;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase("jq_pause_bin");
  receiver = startReceiver();
  dir = mkdtempSync(join(tmpdir(), "jq-pause-bin-"));
});

afterAll(async () => {
  receiver?.stop();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function post(node: RunningBinary, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${node.url}${path}`, {
    method: "POST",
    ...(body !== undefined && { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

const get = async (node: RunningBinary, path: string): Promise<any> => (await fetch(`${node.url}${path}`)).json();

async function stop(node: RunningBinary): Promise<void> {
  node.proc.kill("SIGTERM");
  expect(await node.exited).toBe(0);
}

test("a type paused through one node starts on no node, before and after both restart, and runs everywhere once resumed", async () => {
  const config = join(dir, "jobs.toml");
  writeFileSync(config, `[types.held]\nurl = "${receiver.url}"\n\n[types.other]\nurl = "${receiver.url}"\n`);
  const env = (id: string) => ({ DATABASE_URL: db.url, PORT: "0", JOBQUEUE_CONFIG: config, JOBQUEUE_NODE_ID: id, JOBQUEUE_WORKERS: "4" });
  const ok = { mode: "ok" };
  let a = await startBinary([], env("pause-a"));
  let b = await startBinary([], env("pause-b"));
  try {
    expect(await post(a, "/types/held/pause")).toEqual({ status: 200, body: { type: "held", paused: true } });
    // Submitted to the other node at once, with idle workers on both: none may start.
    const held = (await post(b, "/submit", { jobs: Array.from({ length: 5 }, () => ({ type: "held", payload: ok })) })).body.ids as string[];
    held.push((await post(a, "/submit", { type: "held", payload: ok })).body.id);
    const expiring = (await post(b, "/submit", { type: "held", payload: ok, ttlMs: 300 })).body.id as string;
    const others = [(await post(b, "/submit", { type: "other", payload: ok })).body.id, (await post(a, "/submit", { type: "other", payload: ok })).body.id];
    await waitFor(() => others.every((id) => receiver.deliveries.get(id)?.succeeded), { what: "the other type's jobs delivered" });
    // The expiring job leaves by the maintenance sweep of either node; the rest still wait.
    const dead = await waitFor(async () => {
      const v = await get(b, `/jobs/${expiring}`);
      return v.state === "dead" ? v : null;
    }, { what: "the job with a short ttl expired" });
    expect(dead).toMatchObject({ lastError: "expired", attempts: 0 });
    expect(held.filter((id) => receiver.deliveries.has(id))).toEqual([]);
    expect(receiver.deliveries.has(expiring)).toBe(false);
    const typesOnB = (await get(b, "/types")).types;
    expect(typesOnB.find((t: { type: string }) => t.type === "held")).toMatchObject({ paused: true, running: 0, waiting: 6 });

    await Promise.all([stop(a), stop(b)]);
    a = await startBinary([], env("pause-a"));
    b = await startBinary([], env("pause-b"));
    expect((await get(a, "/types")).types.find((t: { type: string }) => t.type === "held")).toMatchObject({ paused: true, waiting: 6 });
    const later = [(await post(a, "/submit", { type: "other", payload: ok })).body.id, (await post(b, "/submit", { type: "other", payload: ok })).body.id];
    await waitFor(() => later.every((id) => receiver.deliveries.get(id)?.succeeded), { what: "the other type's jobs delivered after the restart" });
    expect(held.filter((id) => receiver.deliveries.has(id))).toEqual([]);

    expect(await post(b, "/types/held/resume")).toEqual({ status: 200, body: { type: "held", paused: false } });
    await waitFor(() => held.every((id) => receiver.deliveries.get(id)?.succeeded), { what: "every held job delivered once resumed" });
    expect(held.map((id) => receiver.deliveries.get(id)!.attempts.length)).toEqual(held.map(() => 1));
    expect(receiver.deliveries.has(expiring)).toBe(false);
    expect(await post(a, `/dead/${expiring}/retry`)).toEqual({ status: 200, body: { id: expiring } });
    await waitFor(() => receiver.deliveries.get(expiring)?.succeeded, { what: "the expired job ran once retried" });
  } finally {
    for (const node of [a, b]) if (node.proc.exitCode === null) node.proc.kill("SIGTERM");
    await Promise.all([a.exited, b.exited]);
  }
});
