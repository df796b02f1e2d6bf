// sigterm.fault.ts: SIGTERM under load with long-running jobs, on each store. The process must
// exit 0 within its grace period while the long jobs are still running, hand those jobs straight
// back to pending (not after a lease, the interrupted attempt not counted), and run them after a
// restart. Run by `make test-faults`.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBinary } from "../support/binary.ts";
import { createTestDatabase } from "../support/pg.ts";
import { postgresProbe, sqliteProbe, type StoreProbe } from "../support/probe.ts";
import { drained } from "../support/producer.ts";
import { startReceiver, type Receiver } from "../support/receiver.ts";
import { waitFor } from "../support/wait.ts";

let db: { url: string; drop: () => Promise<void> };
let receiver: Receiver;
beforeAll(async () => {
  db = await createTestDatabase("jq_sigterm");
  receiver = startReceiver();
});
afterAll(async () => {
  receiver?.stop();
  await db?.drop();
});

async function submit(url: string, mode: string, n: number): Promise<string[]> {
  const res = await fetch(`${url}/submit`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jobs: Array.from({ length: n }, (_, i) => ({ type: "hook", payload: { mode, i } })) }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { ids: string[] }).ids;
}

for (const [storeName, makeProbe] of [
  ["postgres", (): StoreProbe => postgresProbe(db.url)],
  ["sqlite", (): StoreProbe => sqliteProbe(join(mkdtempSync(join(tmpdir(), "jq-sigterm-")), "jobs.db"))],
] as const) {
  test(`${storeName}: SIGTERM with long jobs running exits in its grace period and hands them straight back`, async () => {
    receiver.reset();
    receiver.setSlowMs(60_000); // far longer than the grace period
    const probe = makeProbe();
    const configPath = join(mkdtempSync(join(tmpdir(), "jq-sigterm-cfg-")), "jobs.toml");
    writeFileSync(configPath, `[types.hook]\nurl = "${receiver.url}"\ntimeout = "5m"\nmax_attempts = 3\n`);
    const env = {
      ...probe.env, PORT: "0", JOBQUEUE_CONFIG: configPath, JOBQUEUE_NODE_ID: "sigterm-node", JOBQUEUE_WORKERS: "8",
      JOBQUEUE_SHUTDOWN_GRACE_MS: "1500", JOBQUEUE_LEASE_MS: "600000",
    };
    let node = await startBinary([], env);
    const baseline = receiver.slowInProgress; // long deliveries an earlier case left hanging
    const slow = await submit(node.url, "slow", 8);
    const quick = await submit(node.url, "ok", 500);
    await waitFor(() => receiver.slowInProgress === baseline + 8, { what: "8 long jobs running" });

    node.proc.kill("SIGTERM");
    expect(await node.exited).toBe(0);
    // It left while the long deliveries were still in progress: it did not wait them out.
    expect(receiver.slowInProgress).toBe(baseline + 8);
    const log = node.logs.find((l) => l.msg === "stopped");
    expect(log).toMatchObject({ released: 8 });
    // Back in pending at once, the interrupted attempt not counted; nothing left in flight.
    expect(await probe.inflightIds()).toEqual(new Set());
    const pending = await probe.pendingRows();
    for (const id of slow) expect(pending.get(id), `slow job ${id}`).toMatchObject({ attempts: 0 });

    // After a restart they run (quickly now) and everything completes.
    receiver.setSlowMs(1);
    node = await startBinary([], env);
    try {
      await waitFor(() => slow.every((id) => receiver.deliveries.get(id)?.succeeded), { what: "long jobs done after restart" });
      await waitFor(() => drained(node.url), { what: "drained" });
    } finally {
      node.proc.kill("SIGTERM");
      expect(await node.exited).toBe(0);
    }
    expect(await probe.liveCount()).toBe(0);
    for (const id of quick) expect(receiver.deliveries.get(id)?.succeeded, `quick job ${id}`).toBe(true);
    for (const id of slow) expect(receiver.deliveries.get(id)!.attempts).toEqual([1, 1]); // attempt 1 aborted, then run again as attempt 1
  }, 120_000);
}
