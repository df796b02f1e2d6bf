// backoff.ts: how long to wait before trying again: a failed attempt's retry (exponential, full jitter,
// randomness injected) and the pause before retrying a failing store call. Pure; no timers here.

export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

/** Delay before the next attempt after `attempt` failed (1-based): uniform in [0, min(cap, base·2^(attempt−1))]. */
export function backoffMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exp = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 52));
  return Math.floor(random() * exp);
}

/** Longest pause between retries of a store call that keeps failing. */
export const STORE_RETRY_CAP_MS = 2000;

/** The pause before retrying a store call after `failures` failures in a row: 50 ms doubling, at most STORE_RETRY_CAP_MS. */
export function storeRetryMs(failures: number): number {
  return Math.min(STORE_RETRY_CAP_MS, 50 * 2 ** Math.min(failures, 10));
}
