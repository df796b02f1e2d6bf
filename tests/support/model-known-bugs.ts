// model-known-bugs.ts (test support): store bugs the model-based test found and that are not fixed
// yet, each with the rule that excuses it in the regular runs and its shrunk counterexample. The
// quick run (tests/store.model.test.ts) replays each one as a todo test; delete an entry once its
// todo passes (`bun test --todo tests/store.model.test.ts`).
import type { Rules } from "./model-run.ts";
import type { JobSpec, Step } from "./model-steps.ts";

/** What the store contract says, with nothing excused. */
export const STRICT: Rules = { sameJobTwice: true, fullTypesInWindow: false };

export interface KnownBug {
  what: string;
  /** The rule that excuses it in the regular runs until it is fixed. */
  excuse: Partial<Rules>;
  /** fast-check's shrunk counterexample (made plainer by hand where it kept noise). */
  shrunk: Step[];
}

const plainJob: JobSpec = { type: "a", priority: 0, maxAttempts: 1, delayMs: 0, timeoutMs: null, key: null, leased: false };

export const KNOWN_BUGS: Record<"sqlite" | "postgres", KnownBug[]> = {
  // Found at seed 3 (1,500 runs): SQLite's claimNext takes its window of the oldest due rows
  // before it leaves out the types at their limit, so 10 × limit older jobs of a full type hide
  // every other type's due jobs (claimNextTx in src/store/sqlite.ts; PostgreSQL filters first).
  sqlite: [{
    what: "claimNext with caps leaves types at their limit out of the window, so they cannot hide other types' due jobs",
    excuse: { fullTypesInWindow: true },
    shrunk: [
      { op: "submit", node: 0, keyed: false, jobs: Array.from({ length: 10 }, () => plainJob) },
      { op: "tick", ms: 1_000 },
      { op: "submit", node: 0, keyed: false, jobs: [{ ...plainJob, type: "b" }] },
      { op: "claimNext", node: 0, limit: 1, agingMs: 1_000, caps: { a: 0, b: null } },
    ],
  }],
  // Found at seed 20261127 (the 8th run): PostgreSQL's fenced batch moves tell which refs took
  // effect by job id alone (tookEffect in src/store/postgres.ts), so a stale attempt named beside
  // the running attempt of the same job reports true too: extendLeases, complete,
  // completeCancelled, retry and bury all do.
  postgres: [{
    what: "a batch naming a stale attempt beside the running attempt of the same job reports each claim's own fate",
    excuse: { sameJobTwice: false },
    shrunk: [
      { op: "submit", node: 0, keyed: false, jobs: [plainJob] },
      { op: "claim", node: 0, picks: [{ n: 0, any: false }], leaseMs: 10_000 },
      { op: "extend", node: 0, picks: [{ from: "live", n: 0, shift: 0 }, { from: "live", n: 0, shift: 1 }], byMs: 10_000 },
    ],
  }],
};

/** The rules a regular run of `store` plays by: strict, but for its known bugs. */
export function rulesFor(store: "sqlite" | "postgres"): Rules {
  return Object.assign({ ...STRICT }, ...KNOWN_BUGS[store].map((b) => b.excuse));
}
