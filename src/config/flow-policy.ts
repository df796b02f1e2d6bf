// flow-policy.ts: the flow-control settings a job type may carry in the types file (a start rate,
// per-key limits, pushback and breaker settings), their zod schemas and their parsed shapes. Pure:
// it enforces nothing (the stores hold the limits, the pool the adaptive parts).
import { z } from "zod";
import { durationMs } from "./duration.ts";

/** At most `limit` starts in any window of `perMs`, `burst` of them at once after a quiet spell. */
export interface RateLimit {
  limit: number;
  perMs: number;
  /** Starts allowed back to back after a quiet spell (at least 1). */
  burst: number;
}

/** After `failures` failures in a row toward one host, stop sending there for `coolMs`, then probe once. */
export interface BreakerPolicy {
  failures: number;
  coolMs: number;
}

/** The flow-control part of a type's policy; each field only present when the types file sets it. */
export interface FlowPolicy {
  /** Starts of the type, across every node sharing the store. */
  rate?: RateLimit;
  /** Jobs of one key running at once, across every node. */
  keyConcurrency?: number;
  /** Starts of one key's jobs, across every node. */
  keyRate?: RateLimit;
  /** Times a target may push back (429/503 with Retry-After) on one job without using an attempt. */
  maxThrottles?: number;
  breaker?: BreakerPolicy;
}

export const DEFAULT_MAX_THROTTLES = 20;
export const DEFAULT_BREAKER_COOL_MS = 30_000;
const MAX_RATE_LIMIT = 1_000_000;
const MAX_RATE_PER_MS = 24 * 60 * 60 * 1000;
const UNIT = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const RATE_EXPECTED = 'expected a rate like "100/m" (per s, m, h or d) or a table like { limit = 100, per = "1m", burst = 20 }';

/** "100/m" → { limit 100, perMs 60000 }; null when it is not one. */
export function parseRateText(s: string): { limit: number; perMs: number } | null {
  const m = /^\s*(\d{1,7})\s*\/\s*(s|m|h|d)\s*$/.exec(s);
  if (!m) return null;
  const limit = Number(m[1]);
  return limit >= 1 && limit <= MAX_RATE_LIMIT ? { limit, perMs: UNIT[m[2] as keyof typeof UNIT] } : null;
}

const intFrom = (min: number, max: number) => {
  const error = `expected an integer from ${min} to ${max}`;
  return z.number({ error }).int(error).min(min, error).max(max, error);
};

/** A duration from 1 ms to 24 h ("1m", "30s", or whole ms); `example` words the error. */
const dayOrLess = (example: string) => z
  .union([z.string(), z.number()], { error: `expected a duration like "${example}"` })
  .transform((v, ctx) => {
    const ms = durationMs(v);
    if (ms === null || ms < 1 || ms > MAX_RATE_PER_MS) {
      ctx.addIssue({ code: "custom", message: `expected a duration from 1ms to 24h, like "${example}"` });
      return z.NEVER;
    }
    return ms;
  });
const period = dayOrLess("1m");

const rateTable = z
  .object({ limit: intFrom(1, MAX_RATE_LIMIT), per: period, burst: intFrom(1, MAX_RATE_LIMIT).optional() })
  .strict()
  .transform((r): RateLimit => ({ limit: r.limit, perMs: r.per, burst: r.burst ?? 1 }));

/** `rate` / `key_rate`: "100/m", or { limit, per, burst }; a table's issues keep their own paths. */
export const rateSchema = z.unknown().transform((v, ctx): RateLimit => {
  if (typeof v === "string") {
    const r = parseRateText(v);
    if (r !== null) return { ...r, burst: 1 };
  } else if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    const r = rateTable.safeParse(v);
    if (r.success) return r.data;
    for (const issue of r.error.issues) ctx.addIssue({ ...issue } as Parameters<typeof ctx.addIssue>[0]);
    return z.NEVER;
  }
  ctx.addIssue({ code: "custom", message: RATE_EXPECTED });
  return z.NEVER;
});

const coolDown = dayOrLess("30s");

/** The types-file keys of flow control, to spread into a type entry's schema. */
export const flowKeys = {
  rate: rateSchema.optional(),
  key_concurrency: intFrom(1, 10_000).optional(),
  key_rate: rateSchema.optional(),
  max_throttles: intFrom(0, 1000).optional(),
  breaker: z
    .object({ failures: intFrom(1, 10_000).optional(), cool: coolDown.optional() }, { error: 'expected a table like { failures = 10, cool = "30s" }' })
    .strict()
    .optional(),
};

type FlowKeys = { [K in keyof typeof flowKeys]?: z.output<(typeof flowKeys)[K]> };

/** The parsed flow keys of one type entry as a FlowPolicy (only what was set). */
export function toFlowPolicy(t: FlowKeys): FlowPolicy {
  return {
    ...(t.rate !== undefined && { rate: t.rate }),
    ...(t.key_concurrency !== undefined && { keyConcurrency: t.key_concurrency }),
    ...(t.key_rate !== undefined && { keyRate: t.key_rate }),
    ...(t.max_throttles !== undefined && { maxThrottles: t.max_throttles }),
    ...(t.breaker !== undefined && { breaker: { failures: t.breaker.failures ?? 10, coolMs: t.breaker.cool ?? DEFAULT_BREAKER_COOL_MS } }),
  };
}

/** Whether the store must weigh each start of the type (a rate or a per-key limit). */
export const isLimited = (p: FlowPolicy | undefined): boolean =>
  p !== undefined && (p.rate !== undefined || p.keyConcurrency !== undefined || p.keyRate !== undefined);

/** Whether a rate (the type's or its keys') weighs each start: such jobs must start when claimed, never wait locally. */
export const isRated = (p: FlowPolicy | undefined): boolean => p !== undefined && (p.rate !== undefined || p.keyRate !== undefined);

/**
 * How long after its claim was sent a rated job waiting for a worker may still start. The claims of a
 * type that claims ahead (claimsAhead) count each start as if it came this much later, so a job that
 * waited longer goes back to pending (without using an attempt) instead of starting.
 */
export const RATED_AHEAD_START_WITHIN_MS = 100;
/** The starts RATED_AHEAD_START_WITHIN_MS holds at `rate` (at least one), in integers: no float rounding. */
const aheadCut = (rate: RateLimit): number => Math.ceil((RATED_AHEAD_START_WITHIN_MS * rate.limit) / rate.perMs);

/**
 * Whether jobs of a type with a rate may be claimed ahead of a free worker, like unlimited types:
 * a type rate (no per-key limit) of at least one start per RATED_AHEAD_START_WITHIN_MS whose burst
 * holds at least ten times the starts of that span (a burst of a second's starts or more, as a cap
 * far above the usual load would have), so claiming ahead costs it at most a tenth of its burst. Its
 * claims weigh claimRate(rate), and those of its jobs that wait for a worker start within
 * RATED_AHEAD_START_WITHIN_MS of their claim's sending or go back (attempt.ts): no window then holds
 * more handler starts than `rate` allows, but for a claim answered later than that, whose jobs
 * start on its answer like any rated type's.
 */
export const claimsAhead = (p: FlowPolicy | undefined): boolean =>
  p?.rate !== undefined && p.keyRate === undefined && p.keyConcurrency === undefined &&
  // At least one start per RATED_AHEAD_START_WITHIN_MS: a slower rate gains nothing from it and
  // would lose a whole start (ceil) from its burst, and one more with every job that goes back.
  RATED_AHEAD_START_WITHIN_MS * p.rate.limit >= p.rate.perMs && aheadCut(p.rate) * 10 <= p.rate.burst;

/**
 * The rate a type's claims weigh: `rate` itself, or for a type that claims ahead the same spacing
 * with its burst less the starts RATED_AHEAD_START_WITHIN_MS holds. A start counted at the claim
 * and made up to that much later then lands where the configured bucket would have allowed it:
 * starts in any window [a, b] come from claims in [a − D, b], at most burst' + (b − a + D) / T of
 * them, and burst' ≤ burst − D / T.
 */
export function claimRate(p: FlowPolicy): RateLimit | undefined {
  const rate = p.rate;
  if (rate === undefined || !claimsAhead(p)) return rate;
  return { ...rate, burst: rate.burst - aheadCut(rate) };
}

/** "100/m, burst 20" for help, logs and GET /types. */
export function describeRate(r: RateLimit): string {
  return `${r.limit} per ${r.perMs} ms, burst ${r.burst}`;
}
