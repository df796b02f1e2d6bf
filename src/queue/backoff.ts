// backoff.ts: exponential back-off with full jitter for failed attempts. Pure; randomness injected.

export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

/** Delay before the next attempt after `attempt` failed (1-based): uniform in [0, min(cap, base·2^(attempt−1))]. */
export function backoffMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exp = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 52));
  return Math.floor(random() * exp);
}
