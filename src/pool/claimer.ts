// claimer.ts: fills free slots with jobs: claims the heap's most urgent ready jobs by id, pulls due work
// straight from the store when the heap has nothing it may run, grants slots to leased inserts, and
// adopts the store's more urgent rows into the heap. It runs no handler and settles nothing.
import { StoreOutcomeUnknownError } from "../errors.ts";
import { ReadyBatch, type ReadyEntry, type Scheduler } from "../queue/scheduler.ts";
import type { ClaimedJob, HeldJob } from "../store/rows.ts";
import type { Gate } from "./gate.ts";
import type { JobMoves } from "../store/store.ts";
import type { Attempts } from "./attempt.ts";
import type { PoolModeSwitch } from "./mode.ts";
import type { WorkerEvents } from "./pool.ts";
import type { Slots } from "./slots.ts";
import type { Strays } from "./strays.ts";
import { agingKey } from "../aging.ts";
import { HOLD_RECHECK_MS } from "./gate.ts";
import { bucketName, type FlowLimits } from "../store/flow-plan.ts";
import type { Clock } from "../clock.ts";

export interface ClaimerDeps {
  store: Pick<JobMoves, "claim" | "claimNext" | "peekUrgent">;
  scheduler: Pick<Scheduler, "popReady" | "add" | "promoteDue" | "topReadyKey" | "holdKey" | "readyCount">;
  clock: Clock;
  owner: string;
  leaseMs: number;
  agingMs: number;
  /** Slots in the pool (adopt() looks at more rows for a bigger pool). */
  concurrency: number;
  events: Pick<WorkerEvents, "pulled" | "adopted" | "bornLeased" | "held" | "expired">;
  /** How the claim loop is scheduled after a pump (see pool.ts). */
  defer: (fn: () => void) => void;
  mode: Pick<PoolModeSwitch, "current" | "stopping" | "backOff" | "storeAnswered">;
  slots: Slots;
  gate: Pick<Gate, "held" | "paused">;
  /** The rate and per-key limits claims must weigh (types without any are absent). */
  limits: () => FlowLimits;
  strays: Pick<Strays, "owed" | "owe" | "requeue" | "maybeSweep">;
  /** Start attempts for claimed jobs; readyAtById gives heap jobs' ready times (for the wait metric). */
  start: Attempts["start"];
  /** A claim landed or failed: tell whoever waits on the pool. */
  notifyIdle: () => void;
}

/** Most store rows one adopt() looks at: this many times the pool's size, within the bounds below. */
const ADOPT_PER_WORKER = 4;
const ADOPT_MIN = 100;
const ADOPT_MAX = 1000;
/** Most jobs moved by one claim statement. */
const MAX_CLAIM_BATCH = 1000;
/**
 * Claim statements out at once, and the jobs a second one must be able to carry to go out while
 * the first is out (see pump). With one out, PostgreSQL expanding and sending a claim's 16 KiB
 * payloads and this process reading them left both at ~70 % of a core. Drains interleaved on one
 * database: 16 KiB payloads 13.7k -> 16.0k jobs/s (median of four), noop payloads within noise.
 */
const MAX_CLAIMS_OUT = 2;
const CLAIM_OVERLAP_MIN = 32;
/** A key held at its concurrency is asked again after this long, doubling while it stays full, up to the cap. */
const KEY_RECHECK_MAX_MS = 2000;
/** Keys whose recheck delays are remembered at most (a key whose jobs another node took is never cleared here). */
const KEY_RECHECK_KEPT = 10_000;

export function createClaimer(deps: ClaimerDeps) {
  const { store, scheduler, clock, owner, leaseMs, events, mode, slots, strays, notifyIdle } = deps;
  /** Claim loops running (at most MAX_CLAIMS_OUT); each has at most one claim out. */
  let claimLoops = 0;
  /** Set by pull(): the store may hold due work this heap does not (cleared when it has none). */
  let pullWanted = false;
  /** Claim statements out now, by sequence number (settled() waits for those out when it is called). */
  const claimsOut = new Set<number>();
  let claimSeq = 0;
  /** The jobs of a landed claim by id (filled and emptied without a pause between). */
  const batchById = new Map<number, ReadyEntry>();
  const got = new Set<number>();
  /** Keys held at their concurrency limit, and how long the last hold was (it doubles while they stay full). */
  const keyRecheck = new Map<string, number>();

  /** Claims (from the heap or the store) may go out: running (not backing off, sweeping or stopping), no strays owed. */
  function healthy(): boolean {
    return mode.current === "running" && !strays.owed;
  }

  /**
   * The heap holds jobs a claim may take: for a free slot here, or (pull types) for a waiting
   * remote worker's poll, which needs no slot.
   */
  function canClaim(): boolean {
    if (!healthy()) return false;
    if (slots.free > 0 && slots.worthClaiming && slots.claimableReady()) return true;
    return slots.hasRemote && slots.claimableReady("remote");
  }

  /** The store may hold jobs for a free slot (or a waiting poll) whose heap part has nothing claimable. */
  function pullPart(): "local" | "remote" | null {
    if (slots.free > 0 && !slots.claimableReady()) return "local";
    if (slots.hasRemote && slots.remoteWant() > 0 && !slots.claimableReady("remote")) return "remote";
    return null;
  }

  /** Only an otherwise idle node pulls: its own heap (what it may run of it) always comes first. */
  function canPull(): boolean {
    return pullWanted && healthy() && pullPart() !== null;
  }

  /**
   * A claim beside the one out is worth sending: it can carry CLAIM_OVERLAP_MIN jobs from the heap.
   * Smaller ones wait and leave together in the next claim (group commit): many small claims out
   * at once cut end-to-end throughput.
   */
  function canOverlap(): boolean {
    return canClaim() && Math.min(slots.free, scheduler.readyCount) >= CLAIM_OVERLAP_MIN;
  }

  /**
   * Claim ready jobs into free slots; called whenever either may have grown. A second claim goes
   * out while one is out only when it is big (canOverlap): the database then expands and sends one
   * claim's rows while this process reads the other's. Whichever lands first starts its jobs; jobs
   * that must wait for a slot take their places in line by the heap's order (attempt.ts), so a
   * claim that lands early only starts ahead the jobs the idle slots take at once.
   */
  function pump(): void {
    if (claimLoops === 0 ? !(canClaim() || canPull()) : claimLoops >= MAX_CLAIMS_OUT || !canOverlap()) return;
    claimLoops++;
    deps.defer(() => void claimLoop());
  }

  async function claimLoop(): Promise<void> {
    const batch = new ReadyBatch();
    try {
      for (;;) {
        // Beside another loop, only big claims: the last loop left takes the small ones.
        if (claimLoops > 1 ? canOverlap() : canClaim()) {
          batch.clear();
          let n = slots.free > 0 ? scheduler.popReady(Math.min(slots.free, MAX_CLAIM_BATCH), batch, slots.roomByCode(), slots.startNowRoom()) : 0;
          // Pull types' jobs for waiting polls, in the same claim (they need no slot).
          if (slots.hasRemote && n < MAX_CLAIM_BATCH) {
            n += scheduler.popReady(Math.min(slots.remoteWant(), MAX_CLAIM_BATCH - n), batch, slots.roomByCode("remote"));
          }
          if (n === 0) break;
          for (let i = 0; i < batch.length; i++) slots.occupy(batch.entries[i]!.type, 1);
          if (!(await claimBatch(batch))) break;
        } else if (claimLoops === 1 && canPull()) {
          const part = pullPart()!;
          const limit = Math.min(part === "local" ? slots.free : slots.remoteWant(), MAX_CLAIM_BATCH);
          if (!(await pullBatch(limit, part))) break;
        } else break;
      }
    } finally {
      claimLoops--;
    }
  }

  /** Claim due work straight from the store; false when the store failed. */
  async function pullBatch(limit: number, part: "local" | "remote"): Promise<boolean> {
    slots.hold(limit);
    const seq = ++claimSeq;
    claimsOut.add(seq);
    let claimed: ClaimedJob[];
    try {
      const caps = slots.caps(part);
      claimed = await store.claimNext(limit, owner, clock(), leaseMs, deps.agingMs, caps);
      mode.storeAnswered();
      // Short while some type was capped: that type's rows may still be there; pull again once it has room.
      if (claimed.length < limit && caps.length > 0) slots.watchRoom();
    } catch (err) {
      slots.unhold(limit);
      claimsOut.delete(seq);
      pullWanted = false; // the next maintenance tick or hint tries again
      if (err instanceof StoreOutcomeUnknownError) strays.owe();
      mode.backOff("pulling work from the store failed", err);
      notifyIdle();
      return false;
    }
    slots.unhold(limit);
    claimsOut.delete(seq);
    // Fewer than asked: nothing more is due out there for now.
    if (claimed.length < limit) pullWanted = false;
    if (claimed.length > 0) events.pulled(claimed.length);
    for (const job of claimed) slots.occupy(job.type, 1);
    deps.start(claimed, null);
    return true;
  }

  /**
   * Jobs the store held back go back to the heap as they were. A whole type's hold (paused, its
   * rate) shuts the type in the gate; a key's hold (its concurrency or rate) takes only that key's
   * lane out of its type's turns, so other keys go on.
   */
  function holdBack(held: readonly HeldJob[], entries: readonly ReadyEntry[], n: number): void {
    const ids = new Set(held.map((h) => h.id));
    const now = clock();
    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      if (!ids.delete(e.id)) continue;
      scheduler.add(e.id, e.priority, e.readyAt, now, e.type, e.key);
    }
    const typeWide: HeldJob[] = [];
    for (const h of held) {
      events.held?.(h.type, h.reason);
      if (h.perKey === undefined || h.key === null) {
        typeWide.push(h);
        continue;
      }
      let wait = h.retryInMs;
      if (wait === null) {
        // Nothing says when a running job of the key ends (it may run on another node): ask again, less often while it stays full.
        const name = bucketName(h.type, h.key);
        wait = Math.min(KEY_RECHECK_MAX_MS, (keyRecheck.get(name) ?? HOLD_RECHECK_MS / 2) * 2);
        if (keyRecheck.size >= KEY_RECHECK_KEPT) keyRecheck.clear();
        keyRecheck.set(name, wait);
      }
      scheduler.holdKey(h.type, h.key, now + wait, h.reason);
    }
    if (typeWide.length > 0) deps.gate.held(typeWide);
  }

  /** Jobs the claim found past their deadline are dead now (the store moved them): count them by type. */
  function countExpired(expired: readonly number[], entries: readonly ReadyEntry[], n: number): void {
    const ids = new Set(expired);
    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      if (ids.delete(e.id)) events.expired?.(e.type, 1);
    }
  }

  /**
   * One claim statement for the jobs in `batch`; false when the store failed (they went back to the
   * scheduler). The batch's entries are only read until this returns: the next pop refills them.
   */
  async function claimBatch(batch: ReadyBatch): Promise<boolean> {
    const n = batch.length;
    const entries = batch.entries;
    const ids = new Array<number>(n);
    for (let i = 0; i < n; i++) ids[i] = entries[i]!.id;
    slots.hold(n);
    const seq = ++claimSeq;
    claimsOut.add(seq);
    let claimed: ClaimedJob[];
    let held: HeldJob[];
    let expired: number[];
    const sentAt = clock();
    try {
      ({ jobs: claimed, held, expired } = await store.claim(ids, owner, sentAt, leaseMs, deps.limits()));
      mode.storeAnswered();
    } catch (err) {
      slots.unhold(n);
      claimsOut.delete(seq);
      // The rows are still pending or, when the answer was lost, perhaps leased to this node: put
      // the ids back, hand back any stray leases before the next claim, and pause.
      const lost = err instanceof StoreOutcomeUnknownError;
      if (lost) strays.owe();
      const now = clock();
      for (let i = 0; i < n; i++) {
        const e = entries[i]!;
        slots.occupy(e.type, -1);
        if (lost) strays.requeue(e.id);
        scheduler.add(e.id, e.priority, e.readyAt, now, e.type, e.key);
      }
      mode.backOff("claim failed", err);
      notifyIdle();
      return false;
    }
    slots.unhold(n);
    claimsOut.delete(seq);
    // Ids the claim did not return were taken elsewhere or cancelled: they hold no slot of their type.
    // Each returned row keeps one entry's slot: a second copy of its id in the batch (the heap can hold
    // one twice after a lost answer) gives its slot back like any id not returned. Held jobs go back to
    // the heap as they were, and the gate shuts their type until they may be tried again.
    if (held.length > 0) holdBack(held, entries, n);
    if (expired.length > 0) countExpired(expired, entries, n);
    for (const job of claimed) {
      got.add(job.id);
      if (keyRecheck.size > 0 && job.key !== null) keyRecheck.delete(bucketName(job.type, job.key));
    }
    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      batchById.set(e.id, e);
      if (got.has(e.id)) got.delete(e.id);
      else slots.occupy(e.type, -1);
    }
    got.clear();
    deps.start(claimed, batchById, sentAt);
    batchById.clear();
    return true;
  }

  return {
    pump,
    /** The number of the last claim sent (claims are numbered from 1). */
    get seq(): number {
      return claimSeq;
    },
    /** Whether a claim numbered up to `upTo` is still out. */
    outUpTo(upTo: number): boolean {
      for (const seq of claimsOut) if (seq <= upTo) return true;
      return false;
    },
    /** No claim or pull is out. */
    get quiet(): boolean {
      return claimsOut.size === 0;
    },
    /** The store may hold due work this heap does not: pull once the heap has nothing runnable (no pump). */
    wantPull(): void {
      pullWanted = true;
    },
    /**
     * Hint that the store may hold due jobs this heap does not (another node's backlog, a commit
     * whose reply was lost): once the heap is empty and slots are free, claim from the store.
     */
    pull(): void {
      pullWanted = true;
      pump();
    },
    /**
     * An insert's answer was lost: its rows may be pending without a heap entry here (pull them), or,
     * when it leased them to this node, inflight with nobody running them (hand them back first).
     */
    recheck(leased: boolean): void {
      pullWanted = true;
      if (leased) strays.owe();
      strays.maybeSweep();
      pump();
    },
    /**
     * Slots for jobs being submitted now that may start the moment their insert commits (the
     * insert leases them to this node): granted only while nothing claimable waits in the heap,
     * no pull is wanted and the store is healthy, so such a job never overtakes one already
     * queued here. result[i] says whether types[i]'s job got a slot; each granted slot must be
     * settled by startReserved() or unreserve().
     */
    reserve(types: string[]): boolean[] {
      const granted = types.map(() => false);
      if (!healthy() || pullWanted || slots.claimableReady() || (slots.hasRemote && slots.claimableReady("remote"))) return granted;
      for (let i = 0; i < types.length; i++) granted[i] = slots.reserve(types[i]!);
      return granted;
    },
    /** Run jobs whose insert leased them to this node (their slots were reserved). */
    startReserved(jobs: ClaimedJob[]): void {
      events.bornLeased?.(jobs.length);
      slots.unhold(jobs.length);
      deps.start(jobs, null);
    },
    /** Give back reserved slots whose jobs were not inserted (duplicates, a failed insert). */
    unreserve(types: string[]): void {
      if (types.length === 0) return;
      for (const type of types) slots.unreserve(type);
      notifyIdle();
      pump();
    },
    /**
     * Cluster-wide aging: take into this node's heap the store's due rows that are more urgent (by
     * the aging key) than anything it holds: another node's backlog, a dead node's, rows whose insert
     * answer was lost. They are claimed by id like any other entry, so one that another node takes
     * first is dropped. Run every maintenance tick, this bounds any due job's wait behind the node
     * it was submitted to by one tick. Nothing the heap holds is taken twice: its jobs are all at
     * least as urgent as its top, and only rows strictly more urgent are taken.
     */
    async adopt(): Promise<number> {
      if (mode.current === "new" || mode.stopping) return 0;
      const now = clock();
      scheduler.promoteDue(now); // due jobs still in the scheduled heap count as held
      // Jobs of a paused type start nowhere: they do not stand in others' way. (peekUrgent leaves
      // paused types out too; a type only held back for a while still counts, or the rows of it
      // that peekUrgent returns would be taken into the heap again every tick.)
      const top = scheduler.topReadyKey((type) => deps.gate.paused.has(type));
      const limit = Math.min(ADOPT_MAX, Math.max(ADOPT_MIN, ADOPT_PER_WORKER * deps.concurrency));
      const rows = await store.peekUrgent(now, deps.agingMs, limit);
      let adopted = 0;
      for (const e of rows) {
        if (agingKey(e.runAt, e.priority, deps.agingMs) >= top) break; // most urgent first: the rest are not either
        scheduler.add(e.id, e.priority, e.runAt, now, e.type, e.key);
        adopted++;
      }
      if (adopted > 0) {
        events.adopted?.(adopted);
        pump();
      }
      return adopted;
    },
  };
}

export type Claimer = ReturnType<typeof createClaimer>;
