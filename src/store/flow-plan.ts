// flow-plan.ts: decides, inside a claim's transaction, which candidate jobs of rate- or key-limited
// types may start now. Pure: the stores fetch the candidates, the limits' state (rate buckets, running
// counts per key) and the clock, call planStarts, then write back the buckets and move the allowed
// rows, all in that one transaction, so every node sharing the store sees one set of limits.
//
// Rates are GCRA (the generic cell rate algorithm, a leaky bucket kept as one number): each bucket
// keeps the theoretical arrival time `tat` of its next start. With T = per / limit between starts and
// a tolerance τ = (burst − 1) · T, a start at `now` conforms when tat − now ≤ τ, and moves tat to
// max(tat, now) + T. So up to `burst` starts go back to back after a quiet spell, then one every T,
// and any window of length `per` holds at most limit + burst − 1 starts.
import type { RateLimit } from "../config/flow-policy.ts";
import type { HeldJob } from "./rows.ts";

/** The limits the store weighs for one job type (a type with none is not in the map). */
export interface FlowLimit {
  rate?: RateLimit;
  keyConcurrency?: number;
  keyRate?: RateLimit;
}
export type FlowLimits = ReadonlyMap<string, FlowLimit>;

/** A due pending job of a limited type that a claim asked for, in the order the claim gave. */
export interface Candidate {
  id: number;
  type: string;
  key: string | null;
}

/** The bucket of a type's own rate has key "" (a job's key is never empty). */
export const TYPE_BUCKET = "";

/** Buckets are named by type and key joined with a NUL (neither may contain one). */
export const bucketName = (type: string, key: string) => `${type}\u0000${key}`;

/** The buckets and per-key counts a set of candidates needs, sorted (locks are taken in this order). */
export function needs(candidates: readonly Candidate[], limits: FlowLimits): { buckets: [type: string, key: string][]; keys: [type: string, key: string][] } {
  const buckets = new Map<string, [string, string]>();
  const keys = new Map<string, [string, string]>();
  for (const c of candidates) {
    const l = limits.get(c.type);
    if (l === undefined) continue;
    if (l.rate !== undefined) buckets.set(bucketName(c.type, TYPE_BUCKET), [c.type, TYPE_BUCKET]);
    if (c.key === null) continue;
    // A key's row is taken for its concurrency too: it serialises claims of that key across nodes.
    if (l.keyRate !== undefined || l.keyConcurrency !== undefined) buckets.set(bucketName(c.type, c.key), [c.type, c.key]);
    if (l.keyConcurrency !== undefined) keys.set(bucketName(c.type, c.key), [c.type, c.key]);
  }
  const order = (a: [string, string], b: [string, string]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
  return { buckets: [...buckets.values()].sort(order), keys: [...keys.values()].sort(order) };
}

/** How long until a bucket at `tat` lets one more start through (0: now). */
function waitFor(tat: number, now: number, rate: RateLimit): number {
  const interval = rate.perMs / rate.limit;
  const tolerance = (rate.burst - 1) * interval;
  return Math.max(0, Math.max(tat, now) - tolerance - now);
}

/** Whether a start at `now` conforms (a float's rounding never denies a start that is due to the microsecond). */
const conforms = (tat: number, now: number, rate: RateLimit) => waitFor(tat, now, rate) <= 1e-3;

const advance = (tat: number, now: number, rate: RateLimit) => Math.max(tat, now) + rate.perMs / rate.limit;

export interface StartPlan {
  /** Candidates that may start now, in the order given. */
  allowed: number[];
  held: HeldJob[];
  /** Buckets whose tat moved: name → new tat. */
  tats: Map<string, number>;
}

/**
 * Walk the candidates in order: a job starts when its type's rate, its key's concurrency and its
 * key's rate all let it, and then uses them up; otherwise it is held with the reason and, for a
 * rate, the wait until the next start. `tats` are the buckets' current tats (a missing bucket is
 * full), `running` the jobs of each (type, key) running now, both by bucketName.
 */
export function planStarts(
  candidates: readonly Candidate[],
  limits: FlowLimits,
  tats: ReadonlyMap<string, number>,
  running: ReadonlyMap<string, number>,
  now: number,
): StartPlan {
  const tat = new Map(tats);
  const room = new Map<string, number>();
  const moved = new Map<string, number>();
  const allowed: number[] = [];
  const held: HeldJob[] = [];
  for (const c of candidates) {
    const l = limits.get(c.type);
    if (l === undefined) {
      allowed.push(c.id);
      continue;
    }
    const typeBucket = bucketName(c.type, TYPE_BUCKET);
    if (l.rate !== undefined && !conforms(tat.get(typeBucket) ?? -Infinity, now, l.rate)) {
      held.push({ id: c.id, type: c.type, key: c.key, reason: "rate_limit", retryInMs: Math.ceil(waitFor(tat.get(typeBucket)!, now, l.rate)) });
      continue;
    }
    const keyBucket = c.key === null ? null : bucketName(c.type, c.key);
    if (keyBucket !== null && l.keyConcurrency !== undefined) {
      const left = room.get(keyBucket) ?? l.keyConcurrency - (running.get(keyBucket) ?? 0);
      if (left <= 0) {
        room.set(keyBucket, left);
        held.push({ id: c.id, type: c.type, key: c.key, reason: "key_concurrency", retryInMs: null, perKey: true });
        continue;
      }
      room.set(keyBucket, left - 1);
    }
    if (keyBucket !== null && l.keyRate !== undefined) {
      const t = tat.get(keyBucket) ?? -Infinity;
      if (!conforms(t, now, l.keyRate)) {
        if (l.keyConcurrency !== undefined) room.set(keyBucket, room.get(keyBucket)! + 1);
        held.push({ id: c.id, type: c.type, key: c.key, reason: "rate_limit", retryInMs: Math.ceil(waitFor(t, now, l.keyRate)), perKey: true });
        continue;
      }
      const next = advance(t, now, l.keyRate);
      tat.set(keyBucket, next);
      moved.set(keyBucket, next);
    }
    if (l.rate !== undefined) {
      const next = advance(tat.get(typeBucket) ?? -Infinity, now, l.rate);
      tat.set(typeBucket, next);
      moved.set(typeBucket, next);
    }
    allowed.push(c.id);
  }
  return { allowed, held, tats: moved };
}

/** Starts a type's rate allows at `now` back to back, from its bucket's tat (undefined: full). */
export function tokensLeft(rate: RateLimit, tat: number | undefined, now: number): number {
  if (tat === undefined) return rate.burst;
  const interval = rate.perMs / rate.limit;
  const tolerance = (rate.burst - 1) * interval;
  const base = Math.max(tat, now);
  if (now + tolerance < base) return 0;
  return Math.min(rate.burst, Math.floor((now + tolerance - base) / interval + 1e-9) + 1);
}
