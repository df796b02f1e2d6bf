// backoff.test.ts: exponential back-off with full jitter stays inside its bounds.
import { expect, test } from "bun:test";
import { STORE_RETRY_CAP_MS, backoffMs, storeRetryMs } from "../src/queue/backoff.ts";

const policy = { baseMs: 1000, capMs: 3_600_000 };

test("the delay ceiling doubles per attempt from the base", () => {
  const almostOne = () => 0.999999999;
  expect(backoffMs(1, policy, almostOne)).toBe(999);
  expect(backoffMs(2, policy, almostOne)).toBe(1999);
  expect(backoffMs(5, policy, almostOne)).toBe(15999);
});

test("full jitter: a zero draw gives no delay, and delays never exceed the cap", () => {
  expect(backoffMs(3, policy, () => 0)).toBe(0);
  for (let attempt = 1; attempt <= 100; attempt++) {
    const d = backoffMs(attempt, policy, Math.random);
    expect(d).toBeGreaterThanOrEqual(0);
    expect(d).toBeLessThanOrEqual(policy.capMs);
  }
  expect(backoffMs(1000, policy, () => 0.5)).toBe(1_800_000);
});

test("random draws spread over the whole window", () => {
  const samples = Array.from({ length: 2000 }, () => backoffMs(4, policy));
  expect(Math.min(...samples)).toBeLessThan(1000);
  expect(Math.max(...samples)).toBeGreaterThan(7000);
  expect(Math.max(...samples)).toBeLessThanOrEqual(8000);
});

test("a failing store call is retried after 50 ms, doubling with each failure in a row, never past the cap", () => {
  expect([0, 1, 2, 3].map(storeRetryMs)).toEqual([50, 100, 200, 400]);
  expect(storeRetryMs(6)).toBe(STORE_RETRY_CAP_MS);
  expect(storeRetryMs(1000)).toBe(STORE_RETRY_CAP_MS);
});
