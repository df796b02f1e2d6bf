// model-steps.ts (test support): random sequences of store operations for the model-based store
// test, as plain data. A step names jobs and claims by position ("the n-th pending job"), resolved
// against the model when it runs, so any shrunk or shortened sequence still means something.
import fc from "fast-check";

export const NODES = ["node-a", "node-b"] as const;
export const TYPES = ["a", "b"] as const;
export const KEYS = ["k0", "k1", "k2"] as const;

/** A job in a submit; `leased` jobs are born leased to the submitting node. */
export interface JobSpec {
  type: (typeof TYPES)[number];
  priority: number;
  maxAttempts: number;
  delayMs: number;
  timeoutMs: number | null;
  key: (typeof KEYS)[number] | null;
  leased: boolean;
  /** No attempt may start later than this long after the submit (NewJob.startBy), or none. */
  ttlMs: number | null;
}

/** A job by position: among those in the state the step works on, or (`any`) among every job ever submitted. */
export interface JobPick {
  n: number;
  any: boolean;
}

/**
 * A claim by position: among the attempts running now (`live`) or every claim ever handed out
 * (`history`), its attempt number then shifted (a shift makes it stale or from the future).
 */
export interface RefPick {
  from: "live" | "history";
  n: number;
  shift: number;
}

export type Step =
  | { op: "submit"; node: number; keyed: boolean; jobs: JobSpec[] }
  | { op: "claim"; node: number; picks: JobPick[]; leaseMs: number }
  | { op: "claimNext"; node: number; limit: number; agingMs: number; caps: { a: number | null; b: number | null } | null }
  | { op: "peekUrgent"; node: number; limit: number; agingMs: number }
  /** keepMs: null completes without a record; else the record expires keepMs after it finished. */
  | { op: "complete"; picks: RefPick[]; keepMs: number | null; result: string | null }
  | { op: "fail"; picks: RefPick[]; delayMs: number; permanent: boolean }
  | { op: "throttle"; picks: RefPick[]; delayMs: number }
  | { op: "cancelPending"; picks: JobPick[] }
  | { op: "cancelRunning"; picks: RefPick[] }
  | { op: "extend"; node: number; picks: RefPick[]; byMs: number }
  | { op: "tick"; ms: number }
  | { op: "reap"; limit: number }
  | { op: "release"; node: number; picks: RefPick[] }
  /** keep: jobs by position among the node's running attempts (or, `any`, among every job). */
  | { op: "releaseStrays"; node: number; keep: JobPick[] }
  | { op: "retryDead"; picks: JobPick[] }
  | { op: "retryDeadOfType"; type: (typeof TYPES)[number]; limit: number; asOfOffsetMs: number }
  | { op: "deleteDead"; picks: JobPick[] }
  | { op: "deleteDeadOfType"; type: (typeof TYPES)[number]; limit: number }
  /** Prune as of the model's clock shifted by atOffsetMs; legacyKeepMs only concerns records without an expiry (none here). */
  | { op: "prune"; atOffsetMs: number; limit: number; legacyKeepMs: number }
  | { op: "restart"; node: number }
  /** Pause (or resume) a type on every node. */
  | { op: "pause"; node: number; type: (typeof TYPES)[number]; paused: boolean }
  /** The reaper's sweep of pending jobs past their deadline. */
  | { op: "expire"; limit: number };

/** The lease a claim takes; ticks are sized around it so leases expire now and then. */
export const LEASE_MS = 10_000;

// constantFrom shrinks towards its first value: the plainest case comes first.
const node = fc.constantFrom(0, 1);
const type = fc.constantFrom(...TYPES);
const jobSpec: fc.Arbitrary<JobSpec> = fc.record({
  type,
  priority: fc.nat(3),
  maxAttempts: fc.integer({ min: 1, max: 3 }),
  delayMs: fc.constantFrom(0, 0, 0, 1_000, 20_000),
  timeoutMs: fc.constantFrom(null, 5_000),
  key: fc.constantFrom(null, null, ...KEYS),
  leased: fc.constantFrom(false, false, true),
  ttlMs: fc.constantFrom(null, null, null, 1_000, 20_000),
});
const jobPick: fc.Arbitrary<JobPick> = fc.record({ n: fc.nat(99), any: fc.constantFrom(false, false, false, true) });
const refPick: fc.Arbitrary<RefPick> = fc.record({
  from: fc.constantFrom("live", "live", "live", "history"),
  n: fc.nat(99),
  shift: fc.constantFrom(0, 0, 0, 0, -1, 1),
});
const picks = <T>(arb: fc.Arbitrary<T>, max: number) => fc.array(arb, { minLength: 1, maxLength: max });
const limit = fc.constantFrom(100, 1, 2);
// 60 s of aging per priority step outweighs the 20 s delays; 0 orders by run time alone.
const agingMs = fc.constantFrom(1_000, 0, 60_000);

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("submit" as const), node, keyed: fc.boolean(), jobs: picks(jobSpec, 4) }) },
  // Now and then a burst: long queues for claimNext and peekUrgent to cut, more rows of a capped type than its room.
  { weight: 1, arbitrary: fc.record({ op: fc.constant("submit" as const), node, keyed: fc.boolean(), jobs: fc.array(jobSpec, { minLength: 8, maxLength: 30 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("claim" as const), node, picks: picks(jobPick, 4), leaseMs: fc.constantFrom(LEASE_MS, 1_000) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("claimNext" as const), node, limit: fc.constantFrom(1, 2, 3, 0), agingMs,
      caps: fc.option(fc.record({ a: fc.option(fc.nat(2)), b: fc.option(fc.nat(2)) }), { freq: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("peekUrgent" as const), node, limit: fc.constantFrom(1, 2, 3, 0, 100), agingMs }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("complete" as const), picks: picks(refPick, 3), keepMs: fc.constantFrom(null, null, null, 0, 1_000, 3_600_000), result: fc.constantFrom(null, "ok") }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("fail" as const), picks: picks(refPick, 3), delayMs: fc.constantFrom(0, 1_000, 20_000), permanent: fc.constantFrom(false, false, true) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("throttle" as const), picks: picks(refPick, 3), delayMs: fc.constantFrom(0, 2_000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("cancelPending" as const), picks: picks(jobPick, 3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("cancelRunning" as const), picks: picks(refPick, 2) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("extend" as const), node, picks: picks(refPick, 3), byMs: fc.constantFrom(LEASE_MS, 60_000) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("tick" as const), ms: fc.constantFrom(1_000, 1, LEASE_MS, 30_000) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("reap" as const), limit }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("release" as const), node, picks: picks(refPick, 3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("releaseStrays" as const), node, keep: fc.array(jobPick, { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("retryDead" as const), picks: picks(jobPick, 3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("retryDeadOfType" as const), type, limit, asOfOffsetMs: fc.constantFrom(0, -1_000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("deleteDead" as const), picks: picks(jobPick, 3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("deleteDeadOfType" as const), type, limit }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("prune" as const), atOffsetMs: fc.constantFrom(0, -1, 1_000, 3_600_000), limit, legacyKeepMs: fc.constantFrom(0, 1_000, 86_400_000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("restart" as const), node }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("pause" as const), node, type, paused: fc.constantFrom(true, false) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("expire" as const), limit }) },
);

/** A sequence of 1 to `maxSteps` steps. */
export function steps(maxSteps: number): fc.Arbitrary<Step[]> {
  return fc.array(step, { minLength: 1, maxLength: maxSteps, size: "max" });
}
