// job-types.ts: the operators' view of the job types this node runs (each one's policy, whether it is
// paused, how many of its jobs run and wait) and pausing and resuming them. The paused set lives in
// the store, shared by every node; this keeps the pool's copy of it current. No SQL here; store
// faults propagate as they are (the HTTP app answers them with 503).
import { notFound } from "../errors.ts";
import { tokensLeft } from "../store/flow-plan.ts";
import { claimRate } from "../config/flow-policy.ts";
import type { HandlerRegistry, TypePolicy } from "../handlers/handler.ts";
import type { Admin, Pauses } from "../store/store.ts";
import type { Clock } from "../clock.ts";

/** A type's policy as GET /types shows it: the types file's settings, flow control's flattened in. */
export interface TypePolicyView {
  timeoutMs: number;
  maxAttempts: number;
  priority: number;
  concurrency?: number;
  backoff?: TypePolicy["backoff"];
  rate?: { limit: number; perMs: number; burst: number };
  keyConcurrency?: number;
  keyRate?: { limit: number; perMs: number; burst: number };
  maxThrottles?: number;
  breaker?: { failures: number; coolMs: number };
}

export interface TypeView {
  type: string;
  paused: boolean;
  /** false for a type with jobs in the store but no handler here (dropped by a reload, or another node's). */
  registered: boolean;
  /** null when not registered here. */
  policy: TypePolicyView | null;
  /** Jobs of the type running now, on every node sharing the store. */
  running: number;
  /** Jobs of the type not started yet (due or scheduled), on every node sharing the store. */
  waiting: number;
  /** With a rate: starts it allows right now, back to back (its burst when it has been quiet). */
  tokens?: number;
}

export interface JobTypes {
  /** Every registered type, and every other type with jobs in the store, by name. */
  list(): Promise<TypeView[]>;
  /** Pause a registered type everywhere (idempotent); 404 not_found for an unknown type. */
  pause(type: string): Promise<{ type: string; paused: boolean }>;
  /** Resume a type (idempotent); 404 not_found for a type neither registered nor paused. */
  resume(type: string): Promise<{ type: string; paused: boolean }>;
  /** Read the paused set from the store and hand it to the pool (start-up, each maintenance tick, a NOTIFY). */
  refresh(): Promise<ReadonlySet<string>>;
}

export interface JobTypesDeps {
  store: Pick<Pauses, "pauseType" | "resumeType" | "pausedTypes" | "rateBuckets"> & Pick<Admin, "stats">;
  registry: Pick<HandlerRegistry, "get" | "types">;
  clock: Clock;
  /** The paused types as the store holds them now: the pool shuts them (and opens the rest). */
  onPaused: (types: ReadonlySet<string>) => void;
}

/** The policy fields GET /types shows (never the handler, a URL or a secret). */
export function policyView(p: TypePolicy): TypePolicyView {
  const f = p.flow ?? {};
  return {
    timeoutMs: p.timeoutMs,
    maxAttempts: p.maxAttempts,
    priority: p.priority,
    ...(p.concurrency !== undefined && { concurrency: p.concurrency }),
    ...(p.backoff !== undefined && { backoff: p.backoff }),
    ...(f.rate !== undefined && { rate: { ...f.rate } }),
    ...(f.keyConcurrency !== undefined && { keyConcurrency: f.keyConcurrency }),
    ...(f.keyRate !== undefined && { keyRate: { ...f.keyRate } }),
    ...(f.maxThrottles !== undefined && { maxThrottles: f.maxThrottles }),
    ...(f.breaker !== undefined && { breaker: { ...f.breaker } }),
  };
}

/** A type name as an error message quotes it: JSON-escaped, at most 100 characters. */
const quoted = (type: string) => JSON.stringify(type.length > 100 ? `${type.slice(0, 100)}…` : type);

export function createJobTypes(deps: JobTypesDeps): JobTypes {
  const { store, registry, clock } = deps;
  /** Reads of the paused set are numbered, so a slow one never overwrites a newer answer. */
  let issued = 0;
  let applied = 0;

  async function refresh(): Promise<ReadonlySet<string>> {
    const seq = ++issued;
    const paused = new Set(await store.pausedTypes());
    if (seq > applied) {
      applied = seq;
      deps.onPaused(paused);
    }
    return paused;
  }

  return {
    async list() {
      const [paused, stats, buckets] = await Promise.all([store.pausedTypes(), store.stats(clock()), store.rateBuckets()]);
      const pausedSet = new Set(paused);
      const counts = new Map(stats.types.map((t) => [t.type, t]));
      const bucketOf = new Map(buckets.map((b) => [b.type, b]));
      const now = buckets[0]?.now ?? clock();
      // Types with jobs but no handler here (a reload dropped them, or another node runs them) are
      // listed too: their jobs wait, and an operator can see them and delete them.
      const stray = [...counts.keys()].filter((t) => registry.get(t) === undefined && ((counts.get(t)!.pending ?? 0) + (counts.get(t)!.scheduled ?? 0) + (counts.get(t)!.inflight ?? 0)) > 0);
      return [...registry.types(), ...stray].sort().map((type): TypeView => {
        const c = counts.get(type);
        const own = registry.get(type);
        // The rate as claims weigh it (a type that claims ahead has a smaller burst there).
        const rate = own?.flow === undefined ? undefined : claimRate(own.flow);
        return {
          type,
          paused: pausedSet.has(type),
          registered: own !== undefined,
          policy: own === undefined ? null : policyView(own),
          running: c?.inflight ?? 0,
          waiting: (c?.pending ?? 0) + (c?.scheduled ?? 0),
          ...(rate !== undefined && { tokens: tokensLeft(rate, bucketOf.get(type)?.tat, now) }),
        };
      });
    },

    async pause(type) {
      if (registry.get(type) === undefined) throw notFound(`no job type ${quoted(type)} is registered`);
      await store.pauseType(type, clock());
      await refresh();
      return { type, paused: true };
    },

    async resume(type) {
      const was = await store.resumeType(type);
      if (!was && registry.get(type) === undefined) throw notFound(`no job type ${quoted(type)} is registered`);
      await refresh();
      return { type, paused: false };
    },

    refresh,
  };
}
