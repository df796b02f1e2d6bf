// postgres-outage.fault.ts: the database goes away under load (fast stop, immediate stop, every
// connection terminated) on a private PostgreSQL cluster. The server must stay up, refuse submits
// with 503 while the database is gone (never a 202 that was not committed), say so on /ready,
// resume by itself once the database is back, and lose no acknowledged job.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { startBinary } from "../support/binary.ts";
import { checkAccounting } from "../support/ledger.ts";
import { createPrivateCluster, type PrivateCluster } from "../support/pg-cluster.ts";
import { postgresProbe } from "../support/probe.ts";
import { drained, range, submitAll } from "../support/producer.ts";
import { startReceiver, type Mode, type Receiver } from "../support/receiver.ts";
import { waitFor } from "../support/wait.ts";

const TOTAL = 8000;
const MAX_ATTEMPTS = 3;
let cluster: PrivateCluster;
let receiver: Receiver;
let url: string;

beforeAll(async () => {
  cluster = await createPrivateCluster();
  const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
  await admin`CREATE DATABASE jobqueue`;
  await admin.end();
  url = cluster.url.replace(/\/postgres$/, "/jobqueue");
  receiver = startReceiver({ delayMs: 1 });
});
afterAll(async () => {
  receiver?.stop();
  await cluster?.destroy();
});

test("fast and immediate stops and terminated connections: 503 meanwhile, work resumes, nothing acknowledged is lost", async () => {
  const configPath = join(mkdtempSync(join(tmpdir(), "jq-outage-")), "jobs.toml");
  writeFileSync(configPath, `[types.hook]\nurl = "${receiver.url}"\ntimeout = "5s"\nmax_attempts = ${MAX_ATTEMPTS}\n`);
  const node = await startBinary([], {
    DATABASE_URL: url, PORT: "0", JOBQUEUE_CONFIG: configPath, JOBQUEUE_NODE_ID: "outage-node", JOBQUEUE_WORKERS: "16",
    JOBQUEUE_BACKOFF_BASE_MS: "20", JOBQUEUE_BACKOFF_CAP_MS: "200",
  });
  const acked = new Map<string, Mode>();
  const statuses = new Map<number, number>();
  const count = (s: number) => statuses.set(s, (statuses.get(s) ?? 0) + 1);
  let producing = true;
  // The producer submits all through the outages and resubmits whatever was not acknowledged.
  const producer = (async () => {
    let todo = range(0, TOTAL);
    while (todo.length > 0) {
      todo = await submitAll(node.url, todo, acked, { concurrency: 8, onStatus: count });
      if (todo.length > 0) await Bun.sleep(50); // pace resubmission while the database is away
    }
    producing = false;
  })();
  const resumeTimes: Record<string, number> = {};

  async function outage(name: string, takeDown: () => Promise<void>, bringBack: () => Promise<void>) {
    await waitFor(() => acked.size >= 1000 * (Object.keys(resumeTimes).length + 1) || !producing, { timeoutMs: 60_000, what: `load before ${name}` });
    await takeDown();
    // While the database is gone: submits are refused with 503 and /ready says why; the process lives.
    const refused = await fetch(`${node.url}/submit`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "hook", payload: { mode: "ok", i: -1 } }) });
    expect(refused.status).toBe(503);
    // A submit sent on a connection the outage had just cut cannot know whether it arrived.
    expect(["unavailable", "outcome_unknown"]).toContain(((await refused.json()) as { error: { code: string } }).error.code);
    const ready = await fetch(`${node.url}/ready`);
    expect(ready.status).toBe(503);
    expect((await fetch(`${node.url}/health`)).status).toBe(200);
    const deliveredBefore = receiver.count;
    await bringBack();
    const back = Date.now();
    await waitFor(async () => (await fetch(`${node.url}/ready`)).status === 200, { timeoutMs: 30_000, what: `/ready after ${name}` });
    await waitFor(() => receiver.count > deliveredBefore || !producing, { timeoutMs: 30_000, what: `deliveries after ${name}` });
    resumeTimes[name] = Date.now() - back;
  }

  try {
    await outage("fast stop", () => cluster.stop("fast"), () => cluster.start());
    await outage("immediate stop", () => cluster.stop("immediate"), () => cluster.start());
    await outage("terminated connections", async () => {
      const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
      await admin`ALTER DATABASE jobqueue ALLOW_CONNECTIONS false`;
      await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'jobqueue'`;
      await admin.end();
    }, async () => {
      const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
      await admin`ALTER DATABASE jobqueue ALLOW_CONNECTIONS true`;
      await admin.end();
    });

    await producer;
    const probe = postgresProbe(url);
    // Drained both in this node's heap and in the tables: a row whose commit reply was lost in an
    // outage is found again by the maintenance loop.
    await waitFor(async () => (await drained(node.url)) && (await probe.liveCount()) === 0, { timeoutMs: 120_000, what: "queue drained" });
    expect(node.proc.exitCode).toBeNull(); // it stayed up through all three
  } finally {
    // Stopped whatever happened above (a failed step must not leave the node running), within a bound.
    node.proc.kill("SIGTERM");
    const code = await Promise.race([node.exited, Bun.sleep(60_000).then(() => (node.proc.kill("SIGKILL"), "still running 60 s after SIGTERM"))]);
    expect(code).toBe(0);
  }
  const probe = postgresProbe(url);
  expect(await probe.liveCount()).toBe(0);
  // No process died, and settles that failed in an outage are retried until they commit: no job
  // may be delivered twice.
  const counts = checkAccounting({ acked, deliveries: receiver.deliveries, dead: await probe.deadRows(), inflightAtKills: new Set(), maxAttempts: MAX_ATTEMPTS });
  const poolReplacements = node.logs.filter((l) => String(l.err ?? "").includes("pool was replaced")).length;
  console.log(`outage: ${JSON.stringify({ ...counts, statuses: Object.fromEntries(statuses), resumeMs: resumeTimes, poolReplacements })}`);
  expect(acked.size).toBe(TOTAL);
  expect([...statuses.keys()].every((s) => s === 202 || s === 503)).toBe(true);
}, 600_000);
