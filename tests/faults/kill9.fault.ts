// kill9.fault.ts: kill -9 the compiled binary at random moments, 10 times, during a 20,000-job
// webhook run, on each store; restart it each time. Every acknowledged job must be delivered and
// settled; only jobs in flight at a kill may run twice. Run by `make test-faults`.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBinary, type RunningBinary } from "../support/binary.ts";
import { checkAccounting } from "../support/ledger.ts";
import { createTestDatabase } from "../support/pg.ts";
import { postgresProbe, sqliteProbe, type StoreProbe } from "../support/probe.ts";
import { drained, range, submitAll } from "../support/producer.ts";
import { startReceiver, type Mode, type Receiver } from "../support/receiver.ts";
import { waitFor } from "../support/wait.ts";

const TOTAL = 20_000;
const KILLS = 10;
const MAX_ATTEMPTS = 3;

let db: { url: string; drop: () => Promise<void> };
let receiver: Receiver;
beforeAll(async () => {
  db = await createTestDatabase("jq_kill9");
  receiver = startReceiver({ delayMs: 1 });
});
afterAll(async () => {
  receiver?.stop();
  await db?.drop();
});

for (const [storeName, makeProbe] of [
  ["postgres", (): StoreProbe => postgresProbe(db.url)],
  ["sqlite", (): StoreProbe => sqliteProbe(join(mkdtempSync(join(tmpdir(), "jq-kill9-")), "jobs.db"))],
] as const) {
  test(`${storeName}: ${KILLS} kill -9s during a ${TOTAL}-job run lose no acknowledged job`, async () => {
    receiver.reset();
    const probe = makeProbe();
    const configPath = join(mkdtempSync(join(tmpdir(), "jq-kill9-cfg-")), "jobs.toml");
    writeFileSync(configPath, `[types.hook]\nurl = "${receiver.url}"\ntimeout = "5s"\nmax_attempts = ${MAX_ATTEMPTS}\n`);
    const env = {
      ...probe.env, PORT: "0", JOBQUEUE_CONFIG: configPath, JOBQUEUE_NODE_ID: "kill9-node", JOBQUEUE_WORKERS: "16",
      JOBQUEUE_BACKOFF_BASE_MS: "20", JOBQUEUE_BACKOFF_CAP_MS: "200",
    };
    const acked = new Map<string, Mode>();
    const inflightAtKills = new Set<string>();
    let node: RunningBinary = await startBinary([], env);
    let alive = true;

    // The producer keeps submitting through the kills, resubmitting what was not acknowledged.
    const producing = (async () => {
      let todo = range(0, TOTAL);
      while (todo.length > 0) {
        await waitFor(() => alive, { timeoutMs: 60_000, what: "server back" });
        todo = await submitAll(node.url, todo, acked);
      }
    })();

    for (let k = 0; k < KILLS; k++) {
      await Bun.sleep(150 + Math.floor(Math.random() * 700)); // a random moment of the run, not a wait for a condition
      alive = false;
      node.proc.kill("SIGKILL");
      await node.exited;
      for (const id of await probe.inflightIds()) inflightAtKills.add(id);
      node = await startBinary([], env);
      alive = true;
    }
    try {
      await producing;
      await waitFor(() => drained(node.url), { timeoutMs: 240_000, what: "queue drained" });
    } finally {
      node.proc.kill("SIGTERM");
      expect(await node.exited).toBe(0);
    }
    expect(await probe.liveCount()).toBe(0);
    const counts = checkAccounting({ acked, deliveries: receiver.deliveries, dead: await probe.deadRows(), inflightAtKills, maxAttempts: MAX_ATTEMPTS });
    console.log(`kill9 ${storeName}: ${JSON.stringify(counts)}`);
    expect(acked.size).toBe(TOTAL);
  }, 600_000);
}
