// pushback.test.ts: targets that push back, against a real webhook target on both stores: a 429/503
// with Retry-After (seconds or an HTTP date) delays the job without using an attempt, capped by the
// backoff cap and at most max_throttles times; overloaded answers halve the type's concurrency and
// successes bring it back (AIMD); a breaker stops a failing target for its cool-down, then probes once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parseTypesConfig } from "../src/config/types-file.ts";
import { registryFromTypes } from "../src/handlers/from-config.ts";
import { TargetBusyError, ThrottledError } from "../src/index.ts";
import { retryAfterMs } from "../src/handlers/retry-after.ts";
import { createWebhookHandler } from "../src/handlers/webhook.ts";
import type { TypePolicy } from "../src/handlers/handler.ts";
import { STORE_KINDS, call, startQueue, startQueueWith, storeSite, type TestQueue } from "./support/queues.ts";
import { startPushyTarget, type PushyTarget } from "./support/pushy-target.ts";
import { waitFor } from "./support/wait.ts";

/** A webhook type "hook" posting to `target`, with this policy. */
function hook(target: PushyTarget, policy: Partial<TypePolicy> = {}) {
  return { hook: { handler: createWebhookHandler({ url: target.url }), policy } };
}

/** GET /jobs/:id's body, or null once the job is gone (completed). */
async function view(q: TestQueue, id: number) {
  const res = await call(q, "GET", `/jobs/${id}`);
  return res.status === 404 ? null : res.body;
}
const deliveriesOf = (t: PushyTarget, id: number) => t.deliveries.filter((d) => d.id === String(id));

test("Retry-After is read as delta-seconds or an HTTP date; a past date is no wait, anything else says nothing", () => {
  const now = Date.parse("Wed, 02 Dec 2026 10:00:00 GMT");
  expect(retryAfterMs("2", now)).toBe(2000);
  expect(retryAfterMs(" 120 ", now)).toBe(120_000);
  expect(retryAfterMs("0", now)).toBe(0);
  expect(retryAfterMs("Wed, 02 Dec 2026 10:00:30 GMT", now)).toBe(30_000);
  expect(retryAfterMs("Wednesday, 02-Dec-26 10:01:00 GMT", now)).toBe(60_000);
  expect(retryAfterMs("Wed, 02 Dec 2026 09:00:00 GMT", now)).toBe(0);
  for (const junk of [null, "", "soon", "1.5", "-3", "2026-12-02", "Wed, 99 Foo 2026"]) expect(retryAfterMs(junk, now)).toBeNull();
});

for (const kind of STORE_KINDS) {
  describe(`Retry-After from a target on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => {
      await site.drop();
    });

    test("a 429 with Retry-After: 2 brings the job back at least 2 s later, on the same attempt, its throttle counted", async () => {
      const target = startPushyTarget((n) => (n === 1 ? { status: 429, headers: { "retry-after": "2" } } : { status: 200 }));
      const q = await startQueue(site.open(), hook(target, { backoff: { capMs: 60_000 } }));
      try {
        const { body } = await call(q, "POST", "/submit", { type: "hook" });
        const waiting = await waitFor(async () => {
          const v = await view(q, body.id);
          return v.state === "scheduled" && v;
        }, { what: "the job waiting after the 429" });
        expect(waiting).toMatchObject({ attempts: 0, throttles: 1 });
        expect(waiting.lastError).toContain("webhook answered 429");
        await waitFor(() => target.deliveries.length === 2, { what: "the second delivery" });
        const [first, second] = target.deliveries;
        expect(second!.at - first!.at).toBeGreaterThanOrEqual(2000);
        expect([first!.attempt, second!.attempt]).toEqual([1, 1]);
        await waitFor(async () => (await view(q, body.id)) === null, { what: "the job completed" });
        expect(q.metrics.counterValue("jobqueue_throttled_total", { type: "hook" })).toBe(1);
        expect(q.metrics.counterValue("jobqueue_throttle_delay_seconds_total", { type: "hook" })).toBe(2);
        expect(q.metrics.counterValue("jobqueue_jobs_failed_total")).toBe(0);
      } finally {
        await q.shutdown(1000);
        target.stop();
      }
    });

    test("a 503 with Retry-After as an HTTP date waits until that date", async () => {
      let until = 0;
      const target = startPushyTarget((n) => {
        if (n > 1) return { status: 200 };
        // HTTP dates have whole seconds: three seconds ahead, cut to the second, is more than two ahead.
        const date = new Date(Date.now() + 3000).toUTCString();
        until = Date.parse(date);
        return { status: 503, headers: { "retry-after": date } };
      });
      const q = await startQueue(site.open(), hook(target, { backoff: { capMs: 60_000 } }));
      try {
        const { body } = await call(q, "POST", "/submit", { type: "hook" });
        await waitFor(() => target.deliveries.length === 2, { what: "the second delivery" });
        const [first, second] = target.deliveries;
        expect(until - first!.at).toBeGreaterThan(2000);
        expect(second!.at).toBeGreaterThanOrEqual(until);
        expect(second!.attempt).toBe(1);
        await waitFor(async () => (await view(q, body.id)) === null, { what: "the job completed" });
      } finally {
        await q.shutdown(1000);
        target.stop();
      }
    });

    test("a Retry-After longer than the type's backoff cap waits only the cap", async () => {
      const target = startPushyTarget((n) => (n === 1 ? { status: 429, headers: { "retry-after": "3600" } } : { status: 200 }));
      const q = await startQueue(site.open(), hook(target, { backoff: { capMs: 300 } }));
      try {
        const { body } = await call(q, "POST", "/submit", { type: "hook" });
        await waitFor(async () => (await view(q, body.id)) === null, { what: "the job completed" });
        expect(target.deliveries.map((d) => d.attempt)).toEqual([1, 1]);
        expect(target.deliveries[1]!.at - target.deliveries[0]!.at).toBeGreaterThanOrEqual(300);
        expect(q.metrics.counterValue("jobqueue_throttle_delay_seconds_total", { type: "hook" })).toBe(0.3);
      } finally {
        await q.shutdown(1000);
        target.stop();
      }
    });

    test("past max_throttles a pushback uses an attempt like any failure, and the job may die of it", async () => {
      const target = startPushyTarget(() => ({ status: 429, headers: { "retry-after": "0" } }));
      const q = await startQueue(site.open(), hook(target, { maxAttempts: 2, flow: { maxThrottles: 2 } }));
      try {
        const { body } = await call(q, "POST", "/submit", { type: "hook" });
        const dead = await waitFor(async () => {
          const v = await view(q, body.id);
          return v.state === "dead" && v;
        }, { what: "the job dead" });
        // Two throttles on attempt 1, then the third 429 is attempt 1's failure and attempt 2's ends it.
        expect(target.deliveries.map((d) => d.attempt)).toEqual([1, 1, 1, 2]);
        expect(dead).toMatchObject({ attempts: 2, throttles: 2 });
        expect(dead.lastError).toContain("webhook answered 429");
        expect(q.metrics.counterValue("jobqueue_throttled_total", { type: "hook" })).toBe(2);
        expect(q.metrics.counterValue("jobqueue_jobs_failed_total", { type: "hook" })).toBe(2);
      } finally {
        await q.shutdown(1000);
        target.stop();
      }
    });

    test("a library handler throwing ThrottledError waits without using its attempt, and TargetBusyError is a failure", async () => {
      const seen: Array<[number, number]> = [];
      const q = await startQueue(site.open(), {
        lib: (job) => {
          seen.push([job.id, job.attempt]);
          const runs = seen.filter(([id]) => id === job.id).length;
          if (runs === 1) throw new ThrottledError(50, "the API asked for a pause");
          if (runs === 2) throw new TargetBusyError("the API is overloaded");
        },
      });
      try {
        const { body } = await call(q, "POST", "/submit", { type: "lib" });
        await waitFor(async () => (await view(q, body.id)) === null, { what: "the job completed" });
        expect(seen.map(([, attempt]) => attempt)).toEqual([1, 1, 2]);
        expect(q.metrics.counterValue("jobqueue_throttled_total", { type: "lib" })).toBe(1);
        expect(q.metrics.counterValue("jobqueue_jobs_retried_total", { type: "lib" })).toBe(1);
      } finally {
        await q.shutdown(1000);
      }
    });

    test("a 429 whose Retry-After is not a number or a date is an ordinary failure", async () => {
      const target = startPushyTarget((n) => (n === 1 ? { status: 429, headers: { "retry-after": "soon" } } : { status: 200 }));
      const q = await startQueue(site.open(), hook(target));
      try {
        const { body } = await call(q, "POST", "/submit", { type: "hook" });
        await waitFor(async () => (await view(q, body.id)) === null, { what: "the job completed" });
        expect(target.deliveries.map((d) => d.attempt)).toEqual([1, 2]);
        expect(q.metrics.counterValue("jobqueue_throttled_total", { type: "hook" })).toBe(0);
        expect(q.metrics.counterValue("jobqueue_jobs_retried_total", { type: "hook" })).toBe(1);
      } finally {
        await q.shutdown(1000);
        target.stop();
      }
    });
  });
}

describe("adaptive concurrency toward a target", () => {
  let site: Awaited<ReturnType<typeof storeSite>>;
  beforeAll(async () => {
    site = await storeSite("postgres");
  });
  afterAll(async () => {
    await site.drop();
  });

  test("503s halve how many jobs run at once toward the target, and successes bring it back to the type's concurrency", async () => {
    let busy = true;
    const target = startPushyTarget(() => (busy ? { status: 503, holdMs: 50 } : { status: 200, holdMs: 20 }));
    const q = await startQueue(site.open(), hook(target, { concurrency: 8, maxAttempts: 100 }), { workers: 16 });
    try {
      expect(q.pool.flowStatus("hook")).toEqual({ effectiveConcurrency: 8, breaker: "closed" });
      // Every configured type's pushback series is there from the start.
      const fresh = q.metrics.render();
      for (const line of [
        'jobqueue_throttled_total{type="hook"} 0', 'jobqueue_throttle_delay_seconds_total{type="hook"} 0',
        'jobqueue_breaker_state{type="hook"} 0', 'jobqueue_effective_concurrency{type="hook"} 8',
      ]) expect(fresh).toContain(line);
      const { body } = await call(q, "POST", "/submit", { jobs: Array.from({ length: 200 }, () => ({ type: "hook" })) });
      await waitFor(() => target.most === 8, { what: "eight requests at once" });
      const seen = new Set<number>();
      await waitFor(() => {
        seen.add(q.pool.flowStatus("hook").effectiveConcurrency);
        return q.pool.flowStatus("hook").effectiveConcurrency === 1;
      }, { what: "concurrency cut to one", intervalMs: 1 });
      expect([...seen].every((c) => [1, 2, 4, 8].includes(c))).toBe(true);
      // Once the requests sent before the last cut are answered, the target sees one at a time.
      await waitFor(() => target.current <= 1, { what: "earlier requests answered" });
      target.resetMost();
      const before = target.deliveries.length;
      await waitFor(() => target.deliveries.length >= before + 5, { what: "five more requests" });
      expect(target.most).toBe(1);
      busy = false;
      await waitFor(() => q.pool.flowStatus("hook").effectiveConcurrency === 8, { what: "concurrency back to eight" });
      await waitFor(() => q.metrics.counterValue("jobqueue_jobs_completed_total") === 200, { what: "all jobs done" });
      expect(body.ids).toHaveLength(200);
      expect(target.most).toBeGreaterThan(1);
      expect(q.metrics.counterValue("jobqueue_jobs_dead_total")).toBe(0);
    } finally {
      await q.shutdown(1000);
      target.stop();
    }
  });
});

for (const kind of STORE_KINDS) {
  describe(`a breaker toward a failing target on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => {
      await site.drop();
    });

    test("three failures in a row stop deliveries for the cool-down, then one probe at a time until one succeeds; waiting jobs keep their attempts", async () => {
      const target = startPushyTarget((n) => (n <= 4 ? { status: 500 } : { status: 200 }));
      const types = parseTypesConfig(
        `[types.hook]\nurl = "${target.url}"\nconcurrency = 1\nmax_attempts = 10\nbreaker = { failures = 3, cool = "1s" }\n`,
        "toml",
        { timeoutMs: 5000, maxAttempts: 5 },
      );
      const q = await startQueueWith(site.open(), registryFromTypes(types, { timeoutMs: 5000, maxAttempts: 5, priority: 0 }));
      try {
        const { body } = await call(q, "POST", "/submit", { jobs: Array.from({ length: 5 }, () => ({ type: "hook" })) });
        await waitFor(() => q.pool.flowStatus("hook").breaker === "open", { what: "the breaker open" });
        const open = q.pool.flowStatus("hook");
        expect(Date.parse(open.breakerOpenUntil!)).toBeGreaterThan(target.deliveries[2]!.at);
        expect(q.pool.whyShut("hook")).toBe("breaker_open");
        await waitFor(() => target.deliveries.length >= 5, { what: "the second probe" });
        const [, , third, probe1, probe2] = target.deliveries;
        // Nothing between the third failure and the end of the cool-down, then one probe; it failed
        // (reopened for another cool-down), and the next one succeeded.
        expect(probe1!.at - third!.at).toBeGreaterThanOrEqual(1000);
        expect(probe2!.at - probe1!.at).toBeGreaterThanOrEqual(1000);
        await waitFor(async () => (await Promise.all(body.ids.map((id: number) => view(q, id)))).every((v) => v === null), { what: "all jobs done" });
        expect(q.pool.flowStatus("hook")).toEqual({ effectiveConcurrency: 1, breaker: "closed" });
        // Every attempt a job used was a request the target saw: none was burnt waiting.
        for (const id of body.ids as number[]) {
          const attempts = deliveriesOf(target, id).map((d) => d.attempt);
          expect(attempts).toEqual(attempts.map((_, i) => i + 1));
        }
        expect(target.deliveries.length).toBe(4 + 5);
      } finally {
        await q.shutdown(1000);
        target.stop();
      }
    });
  });
}

describe("a half-open breaker", () => {
  let site: Awaited<ReturnType<typeof storeSite>>;
  beforeAll(async () => {
    site = await storeSite("sqlite");
  });
  afterAll(async () => {
    await site.drop();
  });

  test("lets exactly one job through while its probe is out, however many slots are free, then all of them", async () => {
    let failing = true;
    const target = startPushyTarget(() => (failing ? { status: 500 } : { status: 200, holdMs: 200 }));
    const q = await startQueue(site.open(), hook(target, { concurrency: 4, maxAttempts: 100, flow: { breaker: { failures: 3, coolMs: 300 } } }), { workers: 8 });
    try {
      const { body } = await call(q, "POST", "/submit", { jobs: Array.from({ length: 12 }, () => ({ type: "hook" })) });
      await waitFor(() => q.pool.flowStatus("hook").breaker === "open" && q.pool.inflight === 0 && target.current === 0, { what: "the breaker open, nothing out" });
      const scrape = q.metrics.render();
      expect(scrape).toContain('jobqueue_breaker_state{type="hook"} 1');
      expect(scrape).toContain('jobqueue_effective_concurrency{type="hook"} 4');
      failing = false;
      target.resetMost();
      const before = target.deliveries.length;
      await waitFor(() => target.deliveries.length > before, { what: "the probe" });
      expect(q.pool.flowStatus("hook").breaker).toBe("half_open");
      // The probe is held 200 ms: nothing else starts while it is out.
      await waitFor(() => target.deliveries.length > before + 1, { what: "deliveries after the probe" });
      expect(target.deliveries[before + 1]!.at - target.deliveries[before]!.at).toBeGreaterThanOrEqual(200);
      await waitFor(async () => (await Promise.all(body.ids.map((id: number) => view(q, id)))).every((v) => v === null), { what: "all jobs done" });
      expect(target.most).toBeGreaterThan(1);
      expect(q.pool.flowStatus("hook").breaker).toBe("closed");
    } finally {
      await q.shutdown(1000);
      target.stop();
    }
  });
});
