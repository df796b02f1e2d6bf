// pull.test.ts: workers that ask for jobs over HTTP (pull types): POST /claim long-polls and answers
// in the heap's order under the same flow control as any handler; complete, fail and heartbeat are
// fenced by the lease token (a claim that is gone answers 409 and changes nothing); an expired lease
// brings the job back for another worker; bad requests get a 4xx and change nothing. On both stores,
// through the real queue and its app.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Store } from "../src/store/store.ts";
import { STORE_KINDS, call, startQueue, storeSite, type TestQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

const submit = async (q: TestQueue, body: unknown): Promise<number> => {
  const res = await call(q, "POST", "/submit", body);
  expect(res.status).toBe(202);
  return Number(res.body.id);
};
const claim = (q: TestQueue, body: unknown) => call(q, "POST", "/claim", body);
const completed = (q: TestQueue, type: string) => q.metrics.counterValue("jobqueue_jobs_completed_total", { type });

for (const kind of STORE_KINDS) {
  describe(`pull workers on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    let store: Store;
    let q: TestQueue;
    beforeAll(async () => {
      site = await storeSite(kind);
      store = site.open();
      q = await startQueue(store, {
        pulled: { pull: true },
        other: { pull: true },
        single: { pull: true, policy: { concurrency: 1 } },
        once: { pull: true, policy: { maxAttempts: 1 } },
        local: () => {},
      }, { keepCompletedMs: 60_000, backoff: { baseMs: 1, capMs: 1 } });
    });
    afterAll(async () => {
      await q.shutdown(1000);
      await site.drop();
    });

    test("a claimed job comes with its payload as submitted and a lease; complete ends it with its result", async () => {
      const id = await submit(q, { type: "pulled", payload: { n: 1, s: "é" }, priority: 7, key: "k1" });
      const res = await claim(q, { types: ["pulled"], waitMs: 5000 });
      expect(res.status).toBe(200);
      expect(res.body.jobs).toHaveLength(1);
      const job = res.body.jobs[0];
      expect(job).toMatchObject({ id: String(id), type: "pulled", payload: { n: 1, s: "é" }, attempt: 1, maxAttempts: 3, priority: 7, key: "k1" });
      expect(Date.parse(job.leaseUntil)).toBeGreaterThan(Date.now());
      expect((await call(q, "GET", `/jobs/${id}`)).body).toMatchObject({ state: "inflight", waitingFor: null });
      const done = await call(q, "POST", `/jobs/${id}/complete`, { leaseToken: job.leaseToken, result: { ok: true } });
      expect(done).toEqual({ status: 200, body: { id: String(id), state: "completed" } });
      expect((await call(q, "GET", `/jobs/${id}`)).body).toMatchObject({ state: "completed", result: '{"ok":true}' });
      // The same claim again: gone, 409, nothing changes.
      const again = await call(q, "POST", `/jobs/${id}/complete`, { leaseToken: job.leaseToken });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe("lease_lost");
      expect((await call(q, "POST", `/jobs/${id}/heartbeat`, { leaseToken: job.leaseToken })).status).toBe(409);
      expect((await call(q, "POST", `/jobs/${id}/fail`, { leaseToken: job.leaseToken, error: "x" })).status).toBe(409);
      expect((await call(q, "GET", `/jobs/${id}`)).body.state).toBe("completed");
    });

    test("a long-poll waits for a job submitted after it began, and waitMs 0 answers at once with none", async () => {
      expect(await claim(q, { types: ["pulled"] })).toEqual({ status: 200, body: { jobs: [] } });
      const gauge = async (name: string) => Number((await q.api.metricsText()).match(new RegExp(`^${name}\\{type="pulled"\\} (\\d+)$`, "m"))?.[1]);
      const polling = claim(q, { types: ["pulled"], waitMs: 20_000 });
      await waitFor(async () => (await gauge("jobqueue_pull_polls_waiting")) === 1, { what: "the poll to wait" });
      const id = await submit(q, { type: "pulled", payload: { late: true } });
      const res = await polling;
      expect(res.body.jobs.map((j: { id: string }) => j.id)).toEqual([String(id)]);
      expect(await gauge("jobqueue_pull_polls_waiting")).toBe(0);
      expect(await gauge("jobqueue_pull_jobs_out")).toBe(1);
      const { leaseToken } = res.body.jobs[0];
      expect((await call(q, "POST", `/jobs/${id}/complete`, { leaseToken })).status).toBe(200);
      expect(await gauge("jobqueue_pull_jobs_out")).toBe(0);
    });

    test("jobs come most urgent first, at most max of them, and the rest wait for the next poll", async () => {
      const ids: Record<number, number> = {};
      for (const priority of [1, 50, 10, 90, 30]) ids[priority] = await submit(q, { type: "pulled", payload: {}, priority });
      const first = await claim(q, { types: ["pulled"], max: 3, waitMs: 5000 });
      expect(first.body.jobs.map((j: { priority: number }) => j.priority)).toEqual([90, 50, 30]);
      const second = await claim(q, { types: ["pulled"], max: 10, waitMs: 5000 });
      expect(second.body.jobs.map((j: { priority: number }) => j.priority)).toEqual([10, 1]);
      for (const j of [...first.body.jobs, ...second.body.jobs]) {
        expect((await call(q, "POST", `/jobs/${j.id}/complete`, { leaseToken: j.leaseToken })).status).toBe(200);
      }
    });

    test("a job nobody asks for waits for a worker (waitingFor awaiting_worker), and jobs run here are untouched", async () => {
      const id = await submit(q, { type: "other", payload: {} });
      const local = await submit(q, { type: "local", payload: {} });
      await waitFor(async () => (await call(q, "GET", `/jobs/${local}`)).body.state === "completed", { what: "the local job to complete" });
      expect((await call(q, "GET", `/jobs/${id}`)).body).toMatchObject({ state: "pending", waitingFor: "awaiting_worker" });
      const res = await claim(q, { types: ["other"], waitMs: 5000 });
      expect(res.body.jobs[0].id).toBe(String(id));
      expect((await call(q, "POST", `/jobs/${id}/complete`, { leaseToken: res.body.jobs[0].leaseToken })).status).toBe(200);
    });

    test("fail retries with backoff and a new attempt; the old token is fenced; retry false dead-letters at once", async () => {
      const id = await submit(q, { type: "pulled", payload: {} });
      const a1 = (await claim(q, { types: ["pulled"], waitMs: 5000 })).body.jobs[0];
      expect(await call(q, "POST", `/jobs/${id}/fail`, { leaseToken: a1.leaseToken, error: "boom" }))
        .toEqual({ status: 200, body: { id: String(id), state: "scheduled" } });
      const a2 = (await claim(q, { types: ["pulled"], waitMs: 5000 })).body.jobs[0];
      expect(a2).toMatchObject({ id: String(id), attempt: 2 });
      expect(a2.leaseToken).not.toBe(a1.leaseToken);
      expect((await call(q, "POST", `/jobs/${id}/complete`, { leaseToken: a1.leaseToken })).status).toBe(409);
      expect((await call(q, "GET", `/jobs/${id}`)).body).toMatchObject({ state: "inflight", attempts: 2, lastError: "boom" });
      expect(await call(q, "POST", `/jobs/${id}/fail`, { leaseToken: a2.leaseToken, error: "bad input", retry: false }))
        .toEqual({ status: 200, body: { id: String(id), state: "dead" } });
      expect((await call(q, "GET", `/jobs/${id}`)).body).toMatchObject({ state: "dead", attempts: 2, lastError: "bad input" });
    });

    test("a job out of attempts is dead after its last fail", async () => {
      const id = await submit(q, { type: "once", payload: {} });
      const a1 = (await claim(q, { types: ["once"], waitMs: 5000 })).body.jobs[0];
      expect((await call(q, "POST", `/jobs/${id}/fail`, { leaseToken: a1.leaseToken, error: "nope" })).body.state).toBe("dead");
    });

    test("a lease that runs out brings the job back for another worker, counting the attempt; the old token is fenced", async () => {
      const id = await submit(q, { type: "pulled", payload: {} });
      const a1 = (await claim(q, { types: ["pulled"], waitMs: 5000, leaseMs: 1000 })).body.jobs[0];
      // No heartbeat: the next worker's poll gets it once the lease is over.
      const a2 = (await claim(q, { types: ["pulled"], waitMs: 20_000 })).body.jobs[0];
      expect(a2).toMatchObject({ id: String(id), attempt: 2 });
      expect((await call(q, "POST", `/jobs/${id}/complete`, { leaseToken: a1.leaseToken })).status).toBe(409);
      expect((await call(q, "GET", `/jobs/${id}`)).body.lastError).toContain("lease expired");
      expect((await call(q, "POST", `/jobs/${id}/complete`, { leaseToken: a2.leaseToken })).status).toBe(200);
    });

    test("a heartbeat extends the lease in the store", async () => {
      const id = await submit(q, { type: "pulled", payload: {} });
      const job = (await claim(q, { types: ["pulled"], waitMs: 5000, leaseMs: 2000 })).body.jobs[0];
      const hb = await call(q, "POST", `/jobs/${id}/heartbeat`, { leaseToken: job.leaseToken, extendMs: 600_000 });
      expect(hb.status).toBe(200);
      const until = Date.parse(hb.body.leaseUntil);
      expect(until).toBeGreaterThan(Date.parse(job.leaseUntil));
      const row = await store.get(id, Date.now());
      expect(Math.abs(row!.leaseUntil! - until)).toBeLessThan(1); // PostgreSQL's clock has microseconds; the answer, milliseconds
      expect((await call(q, "POST", `/jobs/${id}/complete`, { leaseToken: job.leaseToken })).status).toBe(200);
    });

    test("a cancelled job's token answers 409", async () => {
      const id = await submit(q, { type: "pulled", payload: {} });
      const job = (await claim(q, { types: ["pulled"], waitMs: 5000 })).body.jobs[0];
      // Running remotely from this node: the cancel ends the attempt here and removes the row.
      expect([202, 204]).toContain((await call(q, "DELETE", `/jobs/${id}`)).status);
      await waitFor(async () => (await call(q, "GET", `/jobs/${id}`)).status === 404, { what: "the cancelled job to go" });
      expect((await call(q, "POST", `/jobs/${id}/complete`, { leaseToken: job.leaseToken })).status).toBe(409);
      expect((await call(q, "POST", `/jobs/${id}/heartbeat`, { leaseToken: job.leaseToken })).status).toBe(409);
    });

    test("a type's concurrency limits the jobs out to remote workers", async () => {
      const ids = [await submit(q, { type: "single", payload: {} }), await submit(q, { type: "single", payload: {} })];
      const first = (await claim(q, { types: ["single"], max: 5, waitMs: 5000 })).body.jobs;
      expect(first).toHaveLength(1);
      expect(await claim(q, { types: ["single"], max: 5 })).toEqual({ status: 200, body: { jobs: [] } });
      const polling = claim(q, { types: ["single"], max: 5, waitMs: 20_000 });
      expect((await call(q, "POST", `/jobs/${first[0].id}/complete`, { leaseToken: first[0].leaseToken })).status).toBe(200);
      const second = (await polling).body.jobs;
      expect(second.map((j: { id: string }) => Number(j.id)).concat(Number(first[0].id)).sort()).toEqual([...ids].sort());
      expect((await call(q, "POST", `/jobs/${second[0].id}/complete`, { leaseToken: second[0].leaseToken })).status).toBe(200);
    });

    test("a poll for several types gets at most max jobs; a job claimed beyond it goes back uncounted", async () => {
      const a = await submit(q, { type: "pulled", payload: {}, priority: 5 });
      const b = await submit(q, { type: "other", payload: {}, priority: 1 });
      const got = (await claim(q, { types: ["pulled", "other"], max: 1, waitMs: 5000 })).body.jobs;
      expect(got.map((j: { id: string }) => j.id)).toEqual([String(a)]);
      const next = (await claim(q, { types: ["other"], waitMs: 5000 })).body.jobs;
      expect(next[0]).toMatchObject({ id: String(b), attempt: 1 });
      for (const j of [...got, ...next]) expect((await call(q, "POST", `/jobs/${j.id}/complete`, { leaseToken: j.leaseToken })).status).toBe(200);
    });

    test("a poll whose client went away takes nothing", async () => {
      const abort = new AbortController();
      const gone = Promise.resolve(q.app.request("/claim", {
        method: "POST", headers: { "content-type": "application/json" }, signal: abort.signal,
        body: JSON.stringify({ types: ["other"], waitMs: 20_000 }),
      })).catch(() => null);
      abort.abort();
      await gone;
      const id = await submit(q, { type: "other", payload: {} });
      const job = (await claim(q, { types: ["other"], waitMs: 5000 })).body.jobs[0];
      expect(job).toMatchObject({ id: String(id), attempt: 1 });
      expect((await call(q, "POST", `/jobs/${id}/complete`, { leaseToken: job.leaseToken })).status).toBe(200);
    });

    test("bad requests get a 4xx naming the problem and change nothing", async () => {
      const before = completed(q, "pulled");
      const cases: [unknown, number, string][] = [
        [{ types: ["nope"] }, 400, 'unknown job type "nope"'],
        [{ types: ["local"] }, 400, "is not a pull type"],
        [{ types: [] }, 400, "types"],
        [{ types: ["pulled"], max: 0 }, 400, "max"],
        [{ types: ["pulled"], max: 101 }, 400, "max"],
        [{ types: ["pulled"], waitMs: 30_001 }, 400, "waitMs"],
        [{ types: ["pulled"], leaseMs: 10 }, 400, "leaseMs"],
        [{ types: ["pulled"], extra: 1 }, 400, "extra"],
      ];
      for (const [body, status, text] of cases) {
        const res = await claim(q, body);
        expect(res.status, JSON.stringify(body)).toBe(status);
        expect(res.body.error.message).toContain(text);
      }
      const raw = await q.app.request("/claim", { method: "POST", body: "{}" });
      expect(raw.status).toBe(415);
      const id = await submit(q, { type: "pulled", payload: {} });
      const job = (await claim(q, { types: ["pulled"], waitMs: 5000 })).body.jobs[0];
      for (const [body, code] of [
        [{ leaseToken: "not-a-token" }, "invalid_request"],
        [{}, "invalid_request"],
        [{ leaseToken: job.leaseToken, result: 1, more: 2 }, "invalid_request"],
      ] as const) {
        const res = await call(q, "POST", `/jobs/${id}/complete`, body);
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe(code);
      }
      // Another job's token in this job's path.
      const other = await call(q, "POST", `/jobs/${id + 1000}/complete`, { leaseToken: job.leaseToken });
      expect(other.status).toBe(400);
      expect((await call(q, "POST", "/jobs/abc/complete", { leaseToken: job.leaseToken })).status).toBe(400);
      expect((await call(q, "POST", `/jobs/${id}/fail`, { leaseToken: job.leaseToken })).status).toBe(400);
      expect((await call(q, "POST", `/jobs/${id}/heartbeat`, { leaseToken: job.leaseToken, extendMs: 5 })).status).toBe(400);
      expect((await call(q, "GET", `/jobs/${id}`)).body.state).toBe("inflight");
      expect(completed(q, "pulled")).toBe(before);
      expect((await call(q, "POST", `/jobs/${id}/complete`, { leaseToken: job.leaseToken })).status).toBe(200);
    });
  });
}

describe("pull workers at shutdown", () => {
  test("a waiting poll is answered when the queue stops, and new polls get 503", async () => {
    const site = await storeSite(STORE_KINDS[0]!);
    try {
      const q = await startQueue(site.open(), { pulled: { pull: true } });
      const polling = claim(q, { types: ["pulled"], waitMs: 30_000 });
      await waitFor(() => q.pool.remote.waitingFor("pulled") === 1, { what: "the poll to wait" });
      const stopping = q.shutdown(1000);
      expect(await polling).toEqual({ status: 200, body: { jobs: [] } });
      await stopping;
      expect((await claim(q, { types: ["pulled"] })).status).toBe(503);
    } finally {
      await site.drop();
    }
  });
});

describe("pull workers across nodes sharing PostgreSQL", () => {
  test("a poll on one node gets a job submitted on another, and the job's moves work on either node", async () => {
    const site = await storeSite("postgres");
    const a = await startQueue(site.open(), { pulled: { pull: true } });
    const b = await startQueue(site.open(), { pulled: { pull: true } });
    try {
      // The poll waits on a; the job is committed through b (into b's heap, where no poll waits).
      const polling = claim(a, { types: ["pulled"], waitMs: 20_000 });
      const id = await submit(b, { type: "pulled", payload: { from: "b" } });
      const job = (await polling).body.jobs[0];
      expect(job).toMatchObject({ id: String(id), payload: { from: "b" }, attempt: 1 });
      // Moves sent to the node that did not hand the job out are made there, fenced the same way.
      const beat = await call(b, "POST", `/jobs/${id}/heartbeat`, { leaseToken: job.leaseToken, extendMs: 60_000 });
      expect(beat.status).toBe(200);
      expect(await call(b, "POST", `/jobs/${id}/complete`, { leaseToken: job.leaseToken })).toEqual({ status: 200, body: { id: String(id), state: "completed" } });
      expect((await call(a, "POST", `/jobs/${id}/complete`, { leaseToken: job.leaseToken })).status).toBe(409);
      expect((await call(a, "GET", `/jobs/${id}`)).status).toBe(404);
      // The node that handed it out lets go of it too: its next poll gets the next job at once.
      const next = await submit(b, { type: "pulled", payload: {} });
      const again = (await claim(a, { types: ["pulled"], waitMs: 20_000 })).body.jobs[0];
      expect(again.id).toBe(String(next));
      expect((await call(a, "POST", `/jobs/${next}/complete`, { leaseToken: again.leaseToken })).status).toBe(200);
    } finally {
      await a.shutdown(1000);
      await b.shutdown(1000);
      await site.drop();
    }
  });
});
