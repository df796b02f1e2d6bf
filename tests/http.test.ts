// http.test.ts: the HTTP surface through app.request(), against recording in-memory AppDeps.
// Checks routes, status codes, the JSON error envelope, and that no rejected request reaches submit().
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HTTPException } from "hono/http-exception";
import { createApp, type AppDeps } from "../src/http/app.ts";
import { JobQueueError, unavailable } from "../src/errors.ts";
import type { Logger } from "../src/logger.ts";
import type { JobView, NewJob, Store } from "../src/store/store.ts";
import { DEAD_PAGE_MAX_BYTES } from "../src/http/api-schema.ts";
import { PermanentError } from "../src/errors.ts";
import type { JobQueue } from "../src/jobqueue.ts";
import { STORE_KINDS, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

const NOW = Date.parse("2030-01-01T00:00:00.000Z");
const DEFAULTS = { priority: 10, maxAttempts: 5 };
const KNOWN_TYPES = new Set(["noop", "email.send"]);

function harness(overrides: Partial<AppDeps> = {}) {
  const submitted: NewJob[][] = [];
  const logged: { msg: string; fields?: Record<string, unknown> }[] = [];
  const jobs = new Map<number, JobView>();
  const state = { accepting: true, notReadyReason: null as string | null, queued: 0 };
  let nextId = 1;
  const keys = new Map<string, number>();
  const record = (msg: string, fields?: Record<string, unknown>) => logged.push({ msg, fields });
  const deleteDeadOf = (type: string) => {
    const ids = [...jobs.values()].filter((j) => j.state === "dead" && j.type === type).map((j) => j.id);
    for (const id of ids) jobs.delete(id);
    return ids.length;
  };
  const logger: Logger = { debug: record, info: record, warn: record, error: record };
  const deps: AppDeps = {
    submit: async (batch) => {
      submitted.push(batch);
      // Idempotency keys as the stores keep them: the first job with a key holds it.
      return batch.map((j) => {
        const held = j.idempotencyKey === undefined ? undefined : keys.get(j.idempotencyKey);
        if (held !== undefined) return { id: held, duplicate: true };
        const id = nextId++;
        if (j.idempotencyKey !== undefined) keys.set(j.idempotencyKey, id);
        return { id, duplicate: false };
      });
    },
    typeDefaults: (type) => (KNOWN_TYPES.has(type) ? DEFAULTS : undefined),
    getJob: async (id) => jobs.get(id) ?? null,
    stats: async () => ({
      jobs: { pending: 1, scheduled: 0, inflight: 0, dead: 2, completed: 0 },
      types: { noop: { pending: 1, scheduled: 0, inflight: 0, dead: 2, completed: 0 } },
      oldestReadyAgeSeconds: 1.5,
      completedLastMinute: 7,
    }),
    cancel: async (id) => {
      const job = jobs.get(id);
      if (job === undefined) return "not_found";
      if (job.state === "dead") return "dead";
      if (job.state === "inflight") return job.owner === "here" ? "cancelling" : "elsewhere";
      jobs.delete(id);
      return "removed";
    },
    dead: {
      list: async ({ type, afterId, limit }) =>
        [...jobs.values()].filter((j) => j.state === "dead" && j.id > afterId && (type === undefined || j.type === type)).sort((a, b) => a.id - b.id).slice(0, limit),
      retry: async (id) => jobs.get(id)?.state === "dead" && jobs.delete(id),
      remove: async (id) => jobs.get(id)?.state === "dead" && jobs.delete(id),
      retryType: async (type) => deleteDeadOf(type),
      purgeType: async (type) => deleteDeadOf(type),
    },
    notReadyReason: async () => state.notReadyReason,
    accepting: () => state.accepting,
    metricsText: () => "jobqueue_jobs_submitted_total 3\n",
    metricsContentType: "text/plain; version=0.0.4; charset=utf-8",
    bodyLimitBytes: 1024 * 1024,
    queuedCount: () => state.queued,
    maxQueued: 1_000_000,
    clock: () => NOW,
    logger,
    ...overrides,
  };
  return { app: createApp(deps), submitted, logged, jobs, state };
}

type Harness = ReturnType<typeof harness>;

function post(h: Harness, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) {
  return h.app.request("/submit", {
    method: "POST",
    headers,
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
}

/** Asserts the JSON error envelope and that submit() never ran; returns the message. */
async function expectRejected(h: Harness, res: Response, status: number, code: string): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(h.submitted).toHaveLength(0);
  return body.error.message;
}

/** A valid single-job body of exactly `bytes` bytes. */
function jobBodyOfSize(bytes: number): string {
  const empty = JSON.stringify({ type: "noop", payload: "" });
  return JSON.stringify({ type: "noop", payload: "x".repeat(bytes - empty.length) });
}

describe("POST /submit", () => {
  test("a single job is committed with its type's defaults and answered with its id as a string", async () => {
    const h = harness();
    const res = await post(h, { type: "noop", payload: { to: "a@b.c", n: [1, 2] } });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ id: "1" });
    expect(h.submitted).toEqual([
      [{ type: "noop", payload: '{"to":"a@b.c","n":[1,2]}', priority: 10, maxAttempts: 5, runAt: NOW, timeoutMs: null }],
    ]);
  });

  test("a batch is committed in one submit call and answered with ids in order", async () => {
    const h = harness();
    const res = await post(h, {
      jobs: [
        { type: "noop", priority: 0, maxAttempts: 1, runAt: "2031-06-01T12:00:00+02:00", timeoutMs: 5000 },
        { type: "email.send", priority: 100, maxAttempts: 100, delayMs: 1500 },
        { type: "noop" },
      ],
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ ids: ["1", "2", "3"] });
    expect(h.submitted).toEqual([
      [
        { type: "noop", payload: "null", priority: 0, maxAttempts: 1, runAt: Date.parse("2031-06-01T10:00:00Z"), timeoutMs: 5000 },
        { type: "email.send", payload: "null", priority: 100, maxAttempts: 100, runAt: NOW + 1500, timeoutMs: null },
        { type: "noop", payload: "null", priority: 10, maxAttempts: 5, runAt: NOW, timeoutMs: null },
      ],
    ]);
  });

  test("a batch of one job still answers with a list of ids", async () => {
    const h = harness();
    const res = await post(h, { jobs: [{ type: "noop" }] });
    expect(await res.json()).toEqual({ ids: ["1"] });
  });

  test("a content-type with a charset parameter is accepted", async () => {
    const h = harness();
    const res = await post(h, { type: "noop" }, { "content-type": "Application/JSON; charset=utf-8" });
    expect(res.status).toBe(202);
  });

  test("a body without a JSON content-type is refused with 415", async () => {
    const h = harness();
    await expectRejected(h, await post(h, { type: "noop" }, { "content-type": "text/plain" }), 415, "unsupported_media_type");
    await expectRejected(h, await post(h, { type: "noop" }, {}), 415, "unsupported_media_type");
  });

  test("a body exactly at the size limit is accepted", async () => {
    const h = harness({ bodyLimitBytes: 1000 });
    expect((await post(h, jobBodyOfSize(1000))).status).toBe(202);
  });

  test("a body over the size limit with an honest content-length is refused with 413", async () => {
    const h = harness({ bodyLimitBytes: 1000 });
    const res = await post(h, jobBodyOfSize(1001), { "content-type": "application/json", "content-length": "1001" });
    await expectRejected(h, res, 413, "payload_too_large");
  });

  test("a body over the size limit behind a lying content-length is refused with 413", async () => {
    const h = harness({ bodyLimitBytes: 1000 });
    const res = await post(h, jobBodyOfSize(5000), { "content-type": "application/json", "content-length": "10" });
    await expectRejected(h, res, 413, "payload_too_large");
  });

  test("a streamed body over the size limit without a content-length is refused with 413", async () => {
    const h = harness({ bodyLimitBytes: 1000 });
    const bytes = new TextEncoder().encode(jobBodyOfSize(3000));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 256) controller.enqueue(bytes.subarray(i, i + 256));
        controller.close();
      },
    });
    const init = { method: "POST", headers: { "content-type": "application/json" }, body: stream, duplex: "half" };
    const res = await h.app.request("/submit", init as RequestInit);
    await expectRejected(h, res, 413, "payload_too_large");
  });

  test("malformed JSON is refused with 400 invalid_json", async () => {
    const h = harness();
    await expectRejected(h, await post(h, '{"type": "noop",'), 400, "invalid_json");
    await expectRejected(h, await post(h, ""), 400, "invalid_json");
  });

  test("a body that is not valid UTF-8 is refused with 400 invalid_json", async () => {
    const h = harness();
    const prefix = new TextEncoder().encode('{"type":"noop","payload":"');
    const bytes = new Uint8Array([...prefix, 0xff, 0xfe, 0x22, 0x7d]);
    await expectRejected(h, await post(h, bytes), 400, "invalid_json");
  });

  test("a body that is not a job object is refused with 400 invalid_request", async () => {
    const h = harness();
    expect(await expectRejected(h, await post(h, [{ type: "noop" }]), 400, "invalid_request")).toBe(
      "body: expected a JSON object",
    );
    await expectRejected(h, await post(h, "42"), 400, "invalid_request");
    await expectRejected(h, await post(h, "null"), 400, "invalid_request");
  });

  test("an unknown field is refused and named", async () => {
    const h = harness();
    const single = await expectRejected(h, await post(h, { type: "noop", url: "http://x" }), 400, "invalid_request");
    expect(single).toBe('body: unknown field "url"');
    const batch = await expectRejected(h, await post(h, { jobs: [{ type: "noop" }, { type: "noop", colour: 1 }] }), 400, "invalid_request");
    expect(batch).toBe('jobs[1]: unknown field "colour"');
    const top = await expectRejected(h, await post(h, { jobs: [{ type: "noop" }], extra: true }), 400, "invalid_request");
    expect(top).toBe('body: unknown field "extra"');
  });

  test("a batch of 1001 jobs is refused as a whole", async () => {
    const h = harness();
    const jobs = Array.from({ length: 1001 }, () => ({ type: "noop" }));
    expect(await expectRejected(h, await post(h, { jobs }), 400, "invalid_request")).toBe(
      "jobs: expected an array of 1 to 1000 jobs",
    );
  });

  test("a batch of 1000 jobs is accepted", async () => {
    const h = harness();
    const res = await post(h, { jobs: Array.from({ length: 1000 }, () => ({ type: "noop" })) });
    expect(res.status).toBe(202);
    expect(((await res.json()) as { ids: string[] }).ids).toHaveLength(1000);
  });

  test("an empty batch is refused", async () => {
    const h = harness();
    await expectRejected(h, await post(h, { jobs: [] }), 400, "invalid_request");
    await expectRejected(h, await post(h, { jobs: "noop" }), 400, "invalid_request");
  });

  test("one bad job fails the whole batch and the message names its path", async () => {
    const h = harness();
    const jobs = [{ type: "noop" }, { type: "noop" }, { type: "noop" }, { type: "noop", priority: 101 }];
    expect(await expectRejected(h, await post(h, { jobs }), 400, "invalid_request")).toBe(
      "jobs[3].priority: expected an integer from 0 to 100",
    );
  });

  test("a fractional or non-numeric priority is refused", async () => {
    const h = harness();
    expect(await expectRejected(h, await post(h, { type: "noop", priority: 1.5 }), 400, "invalid_request")).toBe(
      "priority: expected an integer from 0 to 100",
    );
    await expectRejected(h, await post(h, { type: "noop", priority: "5" }), 400, "invalid_request");
  });

  test("maxAttempts, delayMs and timeoutMs outside their ranges are refused", async () => {
    const h = harness();
    for (const job of [
      { maxAttempts: 0 },
      { maxAttempts: 101 },
      { delayMs: -1 },
      { delayMs: 366 * 24 * 3600 * 1000 },
      { timeoutMs: 0 },
      { timeoutMs: 86_400_001 },
    ]) {
      const message = await expectRejected(h, await post(h, { type: "noop", ...job }), 400, "invalid_request");
      expect(message).toStartWith(`${Object.keys(job)[0]}: expected an integer from`);
    }
  });

  test("runAt and delayMs together are refused", async () => {
    const h = harness();
    const res = await post(h, { type: "noop", runAt: "2030-01-01T00:00:00Z", delayMs: 10 });
    expect(await expectRejected(h, res, 400, "invalid_request")).toContain("runAt or delayMs, not both");
  });

  test("a runAt that is not an ISO date-time with a timezone is refused", async () => {
    const h = harness();
    for (const runAt of ["2030-01-01T00:00:00", "tomorrow", "2030-02-30T00:00:00Z", 1893456000000]) {
      const message = await expectRejected(h, await post(h, { type: "noop", runAt }), 400, "invalid_request");
      expect(message).toStartWith("runAt: ");
    }
  });

  test("a payload of exactly 256 KiB of JSON is accepted and one byte more is refused", async () => {
    const h = harness();
    const fits = "x".repeat(262_144 - 2);
    expect((await post(h, { type: "noop", payload: fits })).status).toBe(202);
    const h2 = harness();
    const message = await expectRejected(h2, await post(h2, { type: "noop", payload: fits + "x" }), 400, "invalid_request");
    expect(message).toBe("payload: must be at most 262144 bytes of JSON as sent");
  });

  test("a payload nested 128 deep is accepted and one level more is refused", async () => {
    const nested = (depth: number) => `{"type":"noop","payload":${"[".repeat(depth)}${"]".repeat(depth)}}`;
    expect((await post(harness(), nested(128))).status).toBe(202);
    const h = harness();
    const message = await expectRejected(h, await post(h, nested(129)), 400, "invalid_request");
    expect(message).toBe("payload: must not nest arrays and objects more than 128 deep");
  });

  test("a payload nested far too deeply to serialise is refused, not a 500", async () => {
    const h = harness();
    const depth = 200_000;
    const body = `{"type":"noop","payload":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
    await expectRejected(h, await post(h, body), 400, "invalid_request");
  });

  test("a missing or malformed type is refused", async () => {
    const h = harness();
    expect(await expectRejected(h, await post(h, { payload: 1 }), 400, "invalid_request")).toBe("type: is required");
    await expectRejected(h, await post(h, { type: "" }), 400, "invalid_request");
    await expectRejected(h, await post(h, { type: "a b" }), 400, "invalid_request");
    await expectRejected(h, await post(h, { type: "x".repeat(101) }), 400, "invalid_request");
    await expectRejected(h, await post(h, { type: 7 }), 400, "invalid_request");
  });

  test("an unknown job type is refused and named with its path", async () => {
    const h = harness();
    const single = await expectRejected(h, await post(h, { type: "x" }), 400, "invalid_request");
    expect(single).toBe('type: unknown job type "x"');
    const jobs = [{ type: "noop" }, { type: "email.send" }, { type: "x" }];
    const batch = await expectRejected(h, await post(h, { jobs }), 400, "invalid_request");
    expect(batch).toBe('jobs[2].type: unknown job type "x"');
  });

  test("while shutting down submits are refused with 503 shutting_down", async () => {
    const h = harness();
    h.state.accepting = false;
    await expectRejected(h, await post(h, { type: "noop" }), 503, "shutting_down");
  });

  test("a store that is unavailable surfaces as its own 503 with retry-after", async () => {
    const h = harness({ submit: () => Promise.reject(unavailable("database unreachable")) });
    const res = await post(h, { type: "noop" });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toEqual({ error: { code: "unavailable", message: "database unreachable" } });
  });

  test("an unexpected submit failure is a generic 500 that is logged but never shown", async () => {
    const h = harness({ submit: () => Promise.reject(new Error("password=hunter2 at db.internal:5432")) });
    const res = await post(h, { type: "noop" });
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: { code: "internal", message: "internal error" } });
    expect(text).not.toContain("hunter2");
    expect(h.logged).toHaveLength(1);
    const err = h.logged[0]?.fields?.err;
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).stack).toContain("hunter2");
  });
});

describe("idempotency keys", () => {
  test("a second submit with a held key answers 200 with the first job's id and duplicate: true", async () => {
    const h = harness();
    const first = await post(h, { type: "noop", idempotencyKey: "order-17" });
    expect(first.status).toBe(202);
    expect(await first.json()).toEqual({ id: "1" });
    expect(h.submitted[0]![0]!.idempotencyKey).toBe("order-17");
    const again = await post(h, { type: "noop", idempotencyKey: "order-17", payload: { other: true } });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ id: "1", duplicate: true });
  });

  test("a batch with keys answers with a duplicates list, and is a 200 only when every job was a duplicate", async () => {
    const h = harness();
    await post(h, { type: "noop", idempotencyKey: "a" });
    const mixed = await post(h, { jobs: [{ type: "noop", idempotencyKey: "a" }, { type: "noop" }, { type: "noop", idempotencyKey: "b" }, { type: "noop", idempotencyKey: "b" }] });
    expect(mixed.status).toBe(202);
    expect(await mixed.json()).toEqual({ ids: ["1", "2", "3", "3"], duplicates: [true, false, false, true] });
    const all = await post(h, { jobs: [{ type: "noop", idempotencyKey: "a" }, { type: "noop", idempotencyKey: "b" }] });
    expect(all.status).toBe(200);
    expect(await all.json()).toEqual({ ids: ["1", "3"], duplicates: [true, true] });
    // Without keys the answer keeps its plain shape.
    expect(await (await post(h, { jobs: [{ type: "noop" }] })).json()).toEqual({ ids: ["4"] });
  });

  test("a key must be a string of 1 to 200 characters without control characters", async () => {
    const h = harness();
    for (const bad of ["", "x".repeat(201), 7, null, "a\u0000b", "line\nbreak"]) {
      const message = await expectRejected(h, await post(h, { type: "noop", idempotencyKey: bad }), 400, "invalid_request");
      expect(message).toStartWith("idempotencyKey: ");
    }
    expect((await post(h, { type: "noop", idempotencyKey: "x".repeat(200) })).status).toBe(202);
    expect((await post(h, { type: "noop", idempotencyKey: "émoji 🚀 and spaces" })).status).toBe(202);
  });
});

describe("backpressure: --max-queued", () => {
  test("a submit that would take the queue past the cap is refused with 429 queue_full and retry-after", async () => {
    const h = harness({ maxQueued: 10 });
    h.state.queued = 10;
    const res = await post(h, { type: "noop" });
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await expectRejected(h, res, 429, "queue_full")).toContain("at most 10 jobs");
  });

  test("a submit that exactly fills the queue is accepted", async () => {
    const h = harness({ maxQueued: 10 });
    h.state.queued = 9;
    expect((await post(h, { type: "noop" })).status).toBe(202);
  });

  test("a batch that would overflow the cap is refused as a whole, even when a part of it would fit", async () => {
    const h = harness({ maxQueued: 10 });
    h.state.queued = 8;
    const jobs = [{ type: "noop" }, { type: "noop" }, { type: "noop" }];
    await expectRejected(h, await post(h, { jobs }), 429, "queue_full");
    expect((await post(h, { jobs: jobs.slice(1) })).status).toBe(202);
  });

  test("a cap of 0 means no limit", async () => {
    const h = harness({ maxQueued: 0 });
    h.state.queued = Number.MAX_SAFE_INTEGER;
    expect((await post(h, { type: "noop" })).status).toBe(202);
  });

  test("jobs of submits still waiting for their commit count against the cap", async () => {
    let release: () => void = () => {};
    let entered: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const committing = new Promise<void>((resolve) => (entered = resolve));
    const h = harness({
      maxQueued: 3,
      submit: async (batch) => {
        entered();
        await gate;
        return batch.map((_, i) => ({ id: i + 1, duplicate: false }));
      },
    });
    const first = post(h, { jobs: [{ type: "noop" }, { type: "noop" }, { type: "noop" }] });
    await committing;
    const second = await post(h, { type: "noop" });
    expect(second.status).toBe(429);
    release();
    expect((await first).status).toBe(202);
    expect((await post(h, { type: "noop" })).status).toBe(202);
  });

  test("a full queue refuses before reading the body, so even a malformed one gets 429", async () => {
    const h = harness({ maxQueued: 1 });
    h.state.queued = 1;
    await expectRejected(h, await post(h, "{not json"), 429, "queue_full");
  });
});

describe("GET /jobs/:id", () => {
  const view: JobView = {
    id: Number.MAX_SAFE_INTEGER,
    type: "noop",
    state: "dead",
    priority: 3,
    attempts: 2,
    maxAttempts: 2,
    runAt: NOW,
    createdAt: NOW - 1000,
    lastError: "boom",
    payload: '{"a":[1,"b"]}',
    owner: "node-1",
    leaseUntil: null,
    failedAt: NOW + 5,
  };

  test("a known job is shown with a string id, ISO times and its parsed payload", async () => {
    const h = harness();
    h.jobs.set(view.id, view);
    const res = await h.app.request("/jobs/9007199254740991");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      id: "9007199254740991",
      type: "noop",
      state: "dead",
      priority: 3,
      attempts: 2,
      maxAttempts: 2,
      runAt: "2030-01-01T00:00:00.000Z",
      createdAt: "2029-12-31T23:59:59.000Z",
      lastError: "boom",
      payload: { a: [1, "b"] },
      failedAt: "2030-01-01T00:00:00.005Z",
    });
  });

  test("an unknown job is a 404", async () => {
    const h = harness();
    await expectRejected(h, await h.app.request("/jobs/12"), 404, "not_found");
  });

  test("ids that are not positive safe integers are refused with 400 invalid_id", async () => {
    const h = harness();
    for (const id of ["0", "-1", "abc", "01", "1.5", "1e3", "99999999999999999999", "9007199254740992"]) {
      await expectRejected(h, await h.app.request(`/jobs/${id}`), 400, "invalid_id");
    }
  });

  test("a store failure while reading a job surfaces as its 503", async () => {
    const h = harness({ getJob: () => Promise.reject(unavailable("database unreachable")) });
    await expectRejected(h, await h.app.request("/jobs/1"), 503, "unavailable");
  });
});

describe("health, readiness and metrics", () => {
  test("health is always ok, even while shutting down", async () => {
    const h = harness();
    h.state.accepting = false;
    const res = await h.app.request("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  test("ready answers 200 when the deps report no reason", async () => {
    const h = harness();
    const res = await h.app.request("/ready");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ready" });
  });

  test("ready answers 503 not_ready with the reason", async () => {
    const h = harness();
    h.state.notReadyReason = "recovery in progress";
    const res = await h.app.request("/ready");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: { code: "not_ready", message: "recovery in progress" } });
  });

  test("ready fails while shutting down", async () => {
    const h = harness();
    h.state.accepting = false;
    await expectRejected(h, await h.app.request("/ready"), 503, "not_ready");
  });

  test("metrics are served as text with the configured content type", async () => {
    const h = harness();
    const res = await h.app.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await res.text()).toBe("jobqueue_jobs_submitted_total 3\n");
  });
});

describe("GET /stats", () => {
  test("answers with the counts, the oldest ready age and recent completions", async () => {
    const res = await harness().app.request("/stats");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      jobs: { pending: 1, scheduled: 0, inflight: 0, dead: 2, completed: 0 },
      types: { noop: { pending: 1, scheduled: 0, inflight: 0, dead: 2, completed: 0 } },
      oldestReadyAgeSeconds: 1.5,
      completedLastMinute: 7,
    });
  });

  test("a store failure is its 503", async () => {
    const h = harness({ stats: () => Promise.reject(unavailable("the job store is unavailable; retry later")) });
    await expectRejected(h, await h.app.request("/stats"), 503, "unavailable");
  });
});

describe("DELETE /jobs/:id", () => {
  const job = (id: number, state: JobView["state"], owner: string | null = null): JobView => ({
    id, type: "noop", state, priority: 0, attempts: 0, maxAttempts: 5, runAt: NOW, createdAt: NOW,
    lastError: null, payload: "null", owner, leaseUntil: null, failedAt: state === "dead" ? NOW : null,
  });
  const del = (h: Harness, id: number | string) => h.app.request(`/jobs/${id}`, { method: "DELETE" });

  test("a pending job is removed with 204, and a second cancel is a 404", async () => {
    const h = harness();
    h.jobs.set(3, job(3, "scheduled"));
    const res = await del(h, 3);
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    await expectRejected(h, await del(h, 3), 404, "not_found");
  });

  test("a job running here answers 202 cancelling; one running elsewhere is a 409", async () => {
    const h = harness();
    h.jobs.set(4, job(4, "inflight", "here"));
    h.jobs.set(5, job(5, "inflight", "another-node"));
    const res = await del(h, 4);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ id: "4", state: "cancelling" });
    await expectRejected(h, await del(h, 5), 409, "running_elsewhere");
  });

  test("a dead job is a 404 that points to DELETE /dead/:id", async () => {
    const h = harness();
    h.jobs.set(6, job(6, "dead"));
    expect(await expectRejected(h, await del(h, 6), 404, "not_found")).toContain("DELETE /dead/6");
    await expectRejected(h, await del(h, "0"), 400, "invalid_id");
  });
});

describe("dead letters", () => {
  const dead = (id: number, type = "noop"): JobView => ({
    id, type, state: "dead", priority: 0, attempts: 5, maxAttempts: 5, runAt: NOW, createdAt: NOW,
    lastError: "boom", payload: "null", owner: null, leaseUntil: null, failedAt: NOW,
  });
  const call = (h: Harness, path: string, method = "GET") => h.app.request(path, { method });

  test("GET /dead pages by id with a next cursor that is null on the last page", async () => {
    const h = harness();
    for (const id of [3, 1, 2, 4, 5]) h.jobs.set(id, dead(id, id % 2 ? "odd" : "even"));
    const first = (await (await call(h, "/dead?limit=2")).json()) as { jobs: { id: string }[]; next: string | null };
    expect(first.jobs.map((j) => j.id)).toEqual(["1", "2"]);
    expect(first.next).toBe("2");
    const second = (await (await call(h, "/dead?limit=2&after=2")).json()) as { jobs: { id: string }[]; next: string | null };
    expect(second.jobs.map((j) => j.id)).toEqual(["3", "4"]);
    const last = (await (await call(h, "/dead?limit=2&after=4")).json()) as { jobs: { id: string }[]; next: string | null };
    expect(last).toMatchObject({ next: null });
    expect(last.jobs.map((j) => j.id)).toEqual(["5"]);
    const odd = (await (await call(h, "/dead?type=odd")).json()) as { jobs: { id: string; state: string; failedAt: string }[]; next: null };
    expect(odd.jobs.map((j) => j.id)).toEqual(["1", "3", "5"]);
    expect(odd.jobs[0]).toMatchObject({ state: "dead", failedAt: "2030-01-01T00:00:00.000Z" });
    expect(odd.next).toBeNull();
  });

  test("GET /dead refuses a bad limit, cursor, type or unknown parameter, naming it", async () => {
    const h = harness();
    for (const [q, field] of [["limit=0", "limit"], ["limit=501", "limit"], ["limit=x", "limit"], ["after=-1", "after"], ["after=1.5", "after"], ["type=a%20b", "type"], ["color=red", "color"]] as const) {
      const message = await expectRejected(h, await call(h, `/dead?${q}`), 400, "invalid_request");
      expect(message).toContain(field);
    }
  });

  test("retrying or deleting one dead job answers 200 with its id or 204, and 404 when it is not dead", async () => {
    const h = harness();
    h.jobs.set(7, dead(7));
    h.jobs.set(8, dead(8));
    h.jobs.set(9, { ...dead(9), state: "pending", failedAt: null });
    const retried = await call(h, "/dead/7/retry", "POST");
    expect(retried.status).toBe(200);
    expect(await retried.json()).toEqual({ id: "7" });
    await expectRejected(h, await call(h, "/dead/7/retry", "POST"), 404, "not_found");
    await expectRejected(h, await call(h, "/dead/9/retry", "POST"), 404, "not_found");
    expect((await call(h, "/dead/8", "DELETE")).status).toBe(204);
    await expectRejected(h, await call(h, "/dead/8", "DELETE"), 404, "not_found");
    await expectRejected(h, await call(h, "/dead/9", "DELETE"), 404, "not_found");
    await expectRejected(h, await call(h, "/dead/x1", "DELETE"), 400, "invalid_id");
  });

  test("bulk retry and delete need a type and answer with how many jobs they moved", async () => {
    const h = harness();
    for (const id of [1, 2, 3]) h.jobs.set(id, dead(id, id === 3 ? "other" : "mail"));
    expect(await expectRejected(h, await call(h, "/dead/retry", "POST"), 400, "invalid_request")).toBe("type: is required");
    await expectRejected(h, await call(h, "/dead", "DELETE"), 400, "invalid_request");
    const retried = await call(h, "/dead/retry?type=mail", "POST");
    expect(retried.status).toBe(200);
    expect(await retried.json()).toEqual({ count: 2 });
    const purged = await call(h, "/dead?type=other", "DELETE");
    expect(await purged.json()).toEqual({ count: 1 });
    expect(await (await call(h, "/dead?type=other", "DELETE")).json()).toEqual({ count: 0 });
  });

  test("other methods on the dead-letter paths are 405s that say what is allowed", async () => {
    const h = harness();
    expect((await call(h, "/dead", "POST")).headers.get("allow")).toBe("GET, HEAD, DELETE");
    expect((await call(h, "/dead/retry", "GET")).headers.get("allow")).toBe("POST");
    expect((await call(h, "/dead/1", "GET")).headers.get("allow")).toBe("DELETE");
    expect((await call(h, "/dead/1/retry", "DELETE")).headers.get("allow")).toBe("POST");
  });
});

describe("routing and errors", () => {
  test("an unknown path is a JSON 404", async () => {
    const h = harness();
    await expectRejected(h, await h.app.request("/nope"), 404, "not_found");
    await expectRejected(h, await h.app.request("/jobs"), 404, "not_found");
  });

  test("a known path with the wrong method is a 405 with an Allow header", async () => {
    const h = harness();
    const get = await h.app.request("/submit");
    expect(get.headers.get("allow")).toBe("POST");
    await expectRejected(h, get, 405, "method_not_allowed");
    const patch = await h.app.request("/jobs/1", { method: "PATCH" });
    expect(patch.headers.get("allow")).toBe("GET, HEAD, DELETE");
    await expectRejected(h, patch, 405, "method_not_allowed");
    const put = await h.app.request("/health", { method: "PUT", body: "{}" });
    await expectRejected(h, put, 405, "method_not_allowed");
  });

  test("a thrown HTTPException becomes the JSON envelope with its status", async () => {
    const h = harness({ getJob: () => Promise.reject(new HTTPException(429, { message: "slow down" })) });
    const res = await h.app.request("/jobs/1");
    expect(res.status).toBe(429);
    expect(await res.json()).toEqual({ error: { code: "too_many_requests", message: "slow down" } });
  });

  test("a JobQueueError's own headers are sent with it", async () => {
    const h = harness({ getJob: () => Promise.reject(new JobQueueError("conflict", "no", 409, { "x-why": "because" })) });
    const res = await h.app.request("/jobs/1");
    expect(res.status).toBe(409);
    expect(res.headers.get("x-why")).toBe("because");
  });
});

describe.each(STORE_KINDS)("GET /dead on %s holds at most about 4 MiB of payload per page", (kind) => {
  const SIZE = 240_000;
  let site: Awaited<ReturnType<typeof storeSite>>;
  let store: Store;
  let q: JobQueue;
  beforeAll(async () => {
    site = await storeSite(kind);
    store = site.open();
    q = await startQueue(store, { big: () => { throw new PermanentError("no"); } });
  });
  afterAll(async () => {
    await q.shutdown(1000);
    await site.drop();
  });

  test("a page of large payloads stops at the byte bound, and `next` pages on from the last job shown", async () => {
    // 20 dead jobs of 240,002 payload bytes each: 17 fit in 4 MiB, 18 do not.
    const payloads = Array.from({ length: 20 }, (_, i) => JSON.stringify(String.fromCharCode(97 + i).repeat(SIZE)));
    const ids: string[] = [];
    for (let i = 0; i < payloads.length; i += 4) {
      const body = `{"jobs":[${payloads.slice(i, i + 4).map((p) => `{"type":"big","payload":${p}}`).join(",")}]}`;
      const res = await q.app.request("/submit", { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(res.status).toBe(202);
      ids.push(...((await res.json()) as { ids: string[] }).ids);
    }
    await waitFor(async () => (await store.counts()).dead === 20, { what: "20 dead jobs" });

    const get = async (path: string) => {
      const res = await q.app.request(path);
      expect(res.status).toBe(200);
      const text = await res.text();
      return { bytes: Buffer.byteLength(text), page: JSON.parse(text) as { jobs: { id: string; payload: string }[]; next: string | null } };
    };
    const first = await get("/dead");
    expect(first.page.jobs.map((j) => j.id)).toEqual(ids.slice(0, 17));
    expect(first.page.next).toBe(ids[16]!);
    expect(first.bytes).toBeLessThan(DEAD_PAGE_MAX_BYTES + 17 * 1000);
    const second = await get(`/dead?after=${first.page.next}`);
    expect(second.page.jobs.map((j) => j.id)).toEqual(ids.slice(17));
    expect(second.page.next).toBeNull();
    expect([...first.page.jobs, ...second.page.jobs].map((j) => JSON.stringify(j.payload))).toEqual(payloads);
    // The count limit still applies below the byte bound.
    const few = await get("/dead?type=big&limit=5");
    expect(few.page.jobs.map((j) => j.id)).toEqual(ids.slice(0, 5));
    expect(few.page.next).toBe(ids[4]!);
  }, 60_000);
});
