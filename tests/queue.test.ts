// queue.test.ts: a whole queue node in-process (library API) on a real PostgreSQL: submit over
// app.request(), handlers, retries, dead letters, timeouts, aging, the reaper and shutdown.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import type { Handler } from "../src/handlers/handler.ts";
import { createWebhookHandler } from "../src/handlers/webhook.ts";
import { PermanentError } from "../src/errors.ts";
import { createPostgresStore } from "../src/store/postgres/index.ts";
import { createTestDatabase, PG_ADMIN_URL } from "./support/pg.ts";
import { startQueue as startTestQueue, type TestQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

let db: { url: string; drop: () => Promise<void> };
beforeAll(async () => {
  db = await createTestDatabase("jq_queue");
});
afterAll(async () => {
  await db.drop();
});


function startQueue(handlers: Record<string, Handler>, over: Parameters<typeof startTestQueue>[2] = {}) {
  return startTestQueue(over.store ?? createPostgresStore({ url: db.url }), handlers, over);
}

async function post(q: TestQueue, body: unknown) {
  const res = await q.app.request("/submit", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function getJob(q: TestQueue, id: string) {
  const res = await q.app.request(`/jobs/${id}`);
  return { status: res.status, body: (await res.json()) as any };
}

describe("a queue node on PostgreSQL", () => {
  test("a submitted job runs with its payload and then is gone", async () => {
    const seen: unknown[] = [];
    const q = await startQueue({ hello: (job) => void seen.push({ payload: job.payload, attempt: job.attempt }) });
    const r = await post(q, { type: "hello", payload: { to: "world" } });
    expect(r.status).toBe(202);
    expect(r.body.id).toMatch(/^[0-9]+$/);
    await waitFor(() => seen.length === 1);
    expect(seen[0]).toEqual({ payload: { to: "world" }, attempt: 1 });
    await waitFor(async () => (await getJob(q, r.body.id)).status === 404, { what: "job removed" });
    // The row is gone once the move commits; the counter goes up when its answer comes back.
    await waitFor(() => q.metrics.counterValue("jobqueue_jobs_completed_total", { type: "hello" }) === 1, { what: "the completion counted" });
    expect(q.metrics.counterValue("jobqueue_jobs_submitted_total")).toBe(1);
    await q.shutdown(1000);
  });

  test("a failing job is retried with backoff and succeeds on a later attempt", async () => {
    const attempts: number[] = [];
    const q = await startQueue({
      flaky: (job) => {
        attempts.push(job.attempt);
        if (job.attempt < 3) throw new Error(`fail #${job.attempt}`);
      },
    });
    const r = await post(q, { type: "flaky", maxAttempts: 5 });
    await waitFor(() => q.metrics.counterValue("jobqueue_jobs_completed_total") === 1);
    expect(attempts).toEqual([1, 2, 3]);
    expect(q.metrics.counterValue("jobqueue_jobs_failed_total")).toBe(2);
    expect(q.metrics.counterValue("jobqueue_jobs_retried_total")).toBe(2);
    expect((await getJob(q, r.body.id)).status).toBe(404);
    await q.shutdown(1000);
  });

  test("a job that keeps failing is dead-lettered after maxAttempts with its last error", async () => {
    let runs = 0;
    const q = await startQueue({ broken: () => { runs++; throw new Error("always broken"); } });
    const r = await post(q, { type: "broken", maxAttempts: 2 });
    await waitFor(async () => (await getJob(q, r.body.id)).body.state === "dead", { what: "dead" });
    const view = (await getJob(q, r.body.id)).body;
    expect(view).toMatchObject({ state: "dead", attempts: 2, maxAttempts: 2, lastError: "always broken" });
    expect(runs).toBe(2);
    expect(q.metrics.counterValue("jobqueue_jobs_dead_total", { type: "broken" })).toBe(1);
    await q.shutdown(1000);
  });

  test("an error message with a NUL byte cannot wedge a job: it is retried and dead-lettered like any other", async () => {
    const q = await startQueue({ nul: () => { throw new Error("bad\u0000byte"); } });
    const r = await post(q, { type: "nul", maxAttempts: 2 });
    await waitFor(async () => (await getJob(q, r.body.id)).body.state === "dead", { what: "dead" });
    expect((await getJob(q, r.body.id)).body.lastError).toBe("bad\uFFFDbyte");
    await q.shutdown(1000);
  });

  test("webhook deliveries say who calls: User-Agent jobqueue/<version>, unless the type sets its own", async () => {
    const agents: string[] = [];
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) => (agents.push(req.headers.get("user-agent") ?? ""), new Response("ok")) });
    try {
      const url = `http://127.0.0.1:${server.port}/hook`;
      const q = await startQueue({
        plain: createWebhookHandler({ url }),
        own: createWebhookHandler({ url, headers: { "User-Agent": "billing-sync/2" } }),
      });
      try {
        await post(q, { jobs: [{ type: "plain" }, { type: "own" }] });
        await waitFor(() => agents.length === 2, { what: "both deliveries" });
        const { default: pkg } = await import("../package.json", { with: { type: "json" } });
        expect(agents.sort()).toEqual(["billing-sync/2", `jobqueue/${pkg.version}`]);
      } finally {
        await q.shutdown(1000);
      }
    } finally {
      server.stop(true);
    }
  });

  test("a webhook target that is down: each attempt fails, is retried with backoff, then the job is dead-lettered with the error", async () => {
    // Port 1 on loopback: nothing listens there, so every delivery is refused.
    const q = await startQueue({ down: createWebhookHandler({ url: "http://127.0.0.1:1/hook" }) });
    const r = await post(q, { jobs: [{ type: "down", maxAttempts: 3 }, { type: "down", maxAttempts: 3 }] });
    await waitFor(async () => (await Promise.all(r.body.ids.map((id: string) => getJob(q, id)))).every((j) => j.body.state === "dead"), { what: "both dead" });
    const view = (await getJob(q, r.body.ids[0])).body;
    expect(view).toMatchObject({ state: "dead", attempts: 3 });
    expect(view.lastError.length).toBeGreaterThan(0);
    expect(q.metrics.counterValue("jobqueue_jobs_failed_total", { type: "down" })).toBe(6);
    expect(q.metrics.counterValue("jobqueue_jobs_retried_total", { type: "down" })).toBe(4);
    expect(q.metrics.counterValue("jobqueue_jobs_dead_total", { type: "down" })).toBe(2);
    await q.shutdown(1000);
  });

  test("a permanent error goes straight to dead without a retry", async () => {
    let runs = 0;
    const q = await startQueue({ perm: () => { runs++; throw new PermanentError("bad input"); } });
    const r = await post(q, { type: "perm", maxAttempts: 5 });
    await waitFor(async () => (await getJob(q, r.body.id)).body.state === "dead");
    expect(runs).toBe(1);
    expect((await getJob(q, r.body.id)).body.lastError).toBe("bad input");
    await q.shutdown(1000);
  });

  test("a handler that ignores its signal is timed out, its slot freed, and the attempt counted as failed", async () => {
    let calls = 0;
    let sawAbort = false;
    const q = await startQueue({
      hang: (job, signal) => {
        calls++;
        signal.addEventListener("abort", () => (sawAbort = true));
        if (job.attempt === 1) return new Promise(() => {}); // never settles
      },
    }, { workers: 1 });
    const r = await post(q, { type: "hang", timeoutMs: 50, maxAttempts: 3 });
    await waitFor(() => q.metrics.counterValue("jobqueue_jobs_completed_total") === 1, { what: "second attempt completes" });
    expect(calls).toBe(2);
    expect(sawAbort).toBe(true);
    expect(q.metrics.counterValue("jobqueue_jobs_failed_total")).toBe(1);
    expect((await getJob(q, r.body.id)).status).toBe(404);
    await q.shutdown(1000);
  });

  test("a job scheduled with delayMs does not run before it is due", async () => {
    let ranAt = 0;
    const q = await startQueue({ later: () => void (ranAt = Date.now()) });
    const submittedAt = Date.now();
    const r = await post(q, { type: "later", delayMs: 300 });
    expect((await getJob(q, r.body.id)).body.state).toBe("scheduled");
    await waitFor(() => ranAt > 0);
    expect(ranAt).toBeGreaterThanOrEqual(submittedAt + 300);
    await q.shutdown(1000);
  });

  test("with one worker and a backlog, higher priority runs first and a long-waiting low-priority job overtakes newer high ones", async () => {
    const order: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let now = Date.now();
    const q = await startQueue({
      block: () => gate,
      rec: (job) => void order.push((job.payload as { name: string }).name),
    }, { workers: 1, agingMs: 1000, clock: () => now });
    // Occupy the only worker so a backlog builds up behind it.
    await post(q, { type: "block" });
    await waitFor(() => q.pool.busy === 1);
    // "old-low" (priority 0) is submitted, then the clock moves 10 s on: it has waited more than
    // the 5 levels the newer priority-5 jobs carry, so it beats them; "urgent" (20) beats all.
    await post(q, { type: "rec", payload: { name: "old-low" }, priority: 0 });
    now += 10_000;
    await post(q, { jobs: [
      { type: "rec", payload: { name: "new-high-1" }, priority: 5 },
      { type: "rec", payload: { name: "new-high-2" }, priority: 5 },
      { type: "rec", payload: { name: "urgent" }, priority: 20 },
      { type: "rec", payload: { name: "new-low" }, priority: 0 },
      // A backdated runAt earns nothing: it counts as submitted now.
      { type: "rec", payload: { name: "backdated" }, priority: 0, runAt: new Date(now - 3_600_000).toISOString() },
    ] });
    release();
    await waitFor(() => order.length === 6);
    expect(order).toEqual(["urgent", "old-low", "new-high-1", "new-high-2", "new-low", "backdated"]);
    await q.shutdown(1000);
  });

  test("a batch submit is all-or-nothing: one unknown type stores nothing", async () => {
    const q = await startQueue({ ok: () => {} });
    const before = q.metrics.counterValue("jobqueue_jobs_submitted_total");
    const r = await post(q, { jobs: [{ type: "ok" }, { type: "nope" }] });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain("jobs[1].type");
    expect(q.metrics.counterValue("jobqueue_jobs_submitted_total")).toBe(before);
    const ok = await post(q, { jobs: [{ type: "ok" }, { type: "ok" }] });
    expect(ok.status).toBe(202);
    expect(ok.body.ids).toHaveLength(2);
    await q.shutdown(1000);
  });

  test("a job whose lease expires is reaped and run again by this process without a restart", async () => {
    // Another node claimed the job and died: its lease runs out and our reaper brings it back.
    const store = createPostgresStore({ url: db.url });
    const seen: number[] = [];
    const q = await startQueue({ orphan: (job) => void seen.push(job.attempt) }, { store });
    const other = createPostgresStore({ url: db.url });
    const now = Date.now();
    const [id] = await other.insert([{ type: "orphan", payload: "null", priority: 0, maxAttempts: 3, runAt: now, timeoutMs: null }], now);
    (await other.claim([id!], "dead-node", now, -1000)).jobs; // its lease is already over
    await other.close();
    await waitFor(() => seen.length === 1, { what: "reaped job runs" });
    expect(seen).toEqual([2]);
    expect(q.metrics.counterValue("jobqueue_jobs_recovered_total")).toBeGreaterThanOrEqual(1);
    await q.shutdown(1000);
  });

  test("a due pending row the heap never saw (its commit's reply was lost) is picked up by an idle node", async () => {
    const seen: number[] = [];
    const q = await startQueue({ unseen: (job) => void seen.push(job.id) });
    const other = createPostgresStore({ url: db.url });
    const [id] = await other.insert([{ type: "unseen", payload: "null", priority: 0, maxAttempts: 3, runAt: Date.now(), timeoutMs: null }], Date.now());
    await other.close();
    await waitFor(() => seen.includes(id!), { what: "the unseen row runs" });
    // Found in the table by this idle node: claimed straight from it, or taken into its heap first.
    expect(q.metrics.counterValue("jobqueue_jobs_pulled_total") + q.metrics.counterValue("jobqueue_jobs_adopted_total")).toBeGreaterThanOrEqual(1);
    await q.shutdown(1000);
  });

  test("shutdown lets short jobs finish and hands jobs still running at the grace deadline back to pending at once", async () => {
    const store = createPostgresStore({ url: db.url });
    const verify = createPostgresStore({ url: db.url });
    let finished = 0;
    let openGate: () => void = () => {};
    const gate = new Promise<void>((r) => (openGate = r));
    const q = await startQueue({
      quick: async () => { await gate; finished++; },
      stuck: (_job, signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
    }, { store, workers: 4 });
    const quick = await post(q, { type: "quick" });
    const stuck = await post(q, { type: "stuck" });
    await waitFor(() => q.pool.busy === 2, { what: "both jobs running" });
    const stopping = q.shutdown(300);
    openGate(); // the quick job ends inside the grace period; the stuck one never does
    const result = await stopping;
    expect(result).toEqual({ finished: 1, released: 1 });
    expect(finished).toBe(1);
    expect(await verify.get(Number(quick.body.id), Date.now())).toBeNull();
    // Back in pending right away (not after a lease), the interrupted attempt not counted.
    expect(await verify.get(Number(stuck.body.id), Date.now())).toMatchObject({ state: "pending", attempts: 0 });
    // Submits are refused once stopping.
    expect((await post(q, { type: "quick" })).status).toBe(503);
    await verify.close();
  });

  test("a restarted node recovers its own interrupted jobs at start-up and runs them", async () => {
    const nodeId = "restarting-node";
    const seed = createPostgresStore({ url: db.url });
    const [id] = await seed.insert([{ type: "again", payload: '{"k":1}', priority: 0, maxAttempts: 3, runAt: Date.now(), timeoutMs: null }], Date.now());
    (await seed.claim([id!], nodeId, Date.now(), 600_000)).jobs; // a long lease: only recovery can bring it back soon
    await seed.close();
    const seen: number[] = [];
    const q = await startQueue({ again: (job) => void seen.push(job.attempt) }, { nodeId });
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual([2]);
    expect(q.metrics.counterValue("jobqueue_jobs_recovered_total", { reason: "restart" })).toBe(1);
    await q.shutdown(1000);
  });

  test("/ready reports ready once started, and /metrics gauges match the heaps", async () => {
    const q = await startQueue({ idle: () => {} });
    expect((await q.app.request("/ready")).status).toBe(200);
    await post(q, { type: "idle", delayMs: 3_600_000 });
    const text = await (await q.app.request("/metrics")).text();
    // Earlier tests' jobs of types this node has no handler for wait in its heap too (they are never run here).
    expect(q.scheduler.scheduledCount).toBeGreaterThanOrEqual(1);
    expect(text).toContain(`jobqueue_jobs_scheduled ${q.scheduler.scheduledCount}\n`);
    expect(text).toContain(`jobqueue_jobs_ready ${q.scheduler.readyCount}\n`);
    await q.shutdown(1000);
    expect((await q.app.request("/ready")).status).toBe(503);
  });
});

describe("when PostgreSQL goes away", () => {
  test("submits get 503 (never a 202 that was not committed), /ready says why, and work resumes when it returns", async () => {
    const own = await createTestDatabase("jq_outage");
    const name = new URL(own.url).pathname.slice(1);
    const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
    const ran: string[] = [];
    const q = await startTestQueue(createPostgresStore({ url: own.url, connectTimeoutS: 2 }), { j: (job) => void ran.push(String(job.id)) }, {
      nodeId: "outage", workers: 2,
    });
    try {
      const before = await post(q, { type: "j" });
      expect(before.status).toBe(202);
      await waitFor(() => ran.length === 1);

      await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await admin.unsafe(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`);
      const during = await post(q, { type: "j" });
      expect(during.status).toBe(503);
      // The statement met a connection the server had just cut: whether it arrived is unknown.
      expect(["unavailable", "outcome_unknown"]).toContain(during.body.error.code);
      const ready = await q.app.request("/ready");
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as any).error.message).toContain("unreachable");
      expect((await q.app.request("/health")).status).toBe(200);

      await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      const after = await waitFor(async () => {
        const r = await post(q, { type: "j" });
        return r.status === 202 ? r : null;
      }, { what: "submit accepted again" });
      await waitFor(() => ran.includes(after.body.id), { what: "job after the outage runs" });
      expect((await q.app.request("/ready")).status).toBe(200);
      // Exactly the acknowledged jobs exist: the refused one left nothing behind.
      const check = postgres(own.url, { max: 1, onnotice: () => {} });
      const [row] = await check<{ n: number }[]>`SELECT count(*)::int AS n FROM pending_jobs`;
      await check.end();
      expect(row!.n).toBe(0);
    } finally {
      await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.end();
      await q.shutdown(1000);
      await own.drop();
    }
  });
});

describe("/metrics", () => {
  test.skipIf(!Bun.which("promtool"))("the live exposition passes promtool check metrics", async () => {
    const q = await startQueue({ m: () => {}, bad: () => { throw new Error("x"); } });
    await post(q, { jobs: [{ type: "m" }, { type: "bad", maxAttempts: 1 }] });
    await waitFor(() => q.metrics.counterValue("jobqueue_jobs_dead_total") === 1 && q.metrics.counterValue("jobqueue_jobs_completed_total") === 1);
    const res = await q.app.request("/metrics");
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await res.text();
    for (const name of ["jobqueue_jobs_submitted_total", "jobqueue_jobs_completed_total", "jobqueue_jobs_failed_total", "jobqueue_jobs_retried_total",
      "jobqueue_jobs_dead_total", "jobqueue_jobs_recovered_total", "jobqueue_jobs_ready", "jobqueue_jobs_scheduled", "jobqueue_jobs_inflight",
      "jobqueue_workers_busy", "jobqueue_oldest_ready_age_seconds", "jobqueue_job_wait_seconds", "jobqueue_job_run_seconds"]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    const p = Bun.spawn(["promtool", "check", "metrics"], { stdin: new Blob([text]), stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect(`${out}${err}`.trim()).toBe("");
    expect(code).toBe(0);
    await q.shutdown(1000);
  });
});
