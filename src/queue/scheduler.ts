// scheduler.ts: decides what runs next. Ready heaps keyed by readyAt − priority × agingMs (fixed
// at push, so aging never re-sorts), one per job type and flow-control key (a lane) so a type at its
// concurrency limit is skipped without scanning its backlog, and a scheduled heap keyed by runAt,
// moved over by one timer. The keys of one type take turns: its lanes with ready jobs form a ring,
// each pop takes the most urgent job of the lane in front and sends that lane to the back, and the
// type competes with other types by the urgency of that front job. A lane held back by flow control
// (its key at its limit) leaves the ring until its hold ends.
// A cache of pending_jobs: it never touches the store.
import { PriorityHeap } from "./heap.ts";
import type { Clock } from "../clock.ts";
import { agingKey, readyAtOf } from "../aging.ts";
import type { HoldReason } from "../store/rows.ts";

export interface SchedulerDeps {
  agingMs: number;
  clock: Clock;
  /** Called when jobs became ready (submit, retry due, timer). */
  onReady?: () => void;
}

/** A ready job taken off the heap for a claim. */
export interface ReadyEntry {
  id: number;
  type: string;
  /** The job's flow-control key, or null. */
  key: string | null;
  priority: number;
  /** When it became ready: its run time as it was added. */
  readyAt: number;
}

/**
 * What popReady fills: entries[0 .. length) are the jobs popped since the last clear(). The entry
 * objects stay and are refilled by later pops, so popping allocates nothing once a batch has grown to
 * its largest size; a caller must be done with an entry before it clears and pops again.
 */
export class ReadyBatch {
  readonly entries: ReadyEntry[] = [];
  length = 0;

  clear(): void {
    this.length = 0;
  }

  push(id: number, type: string, key: string | null, priority: number, readyAt: number): void {
    const e = this.entries[this.length];
    if (e === undefined) this.entries.push({ id, type, key, priority, readyAt });
    else {
      e.id = id;
      e.type = type;
      e.key = key;
      e.priority = priority;
      e.readyAt = readyAt;
    }
    this.length++;
  }
}

/** Room that several type codes share in one popReady (e.g. the slots free to start a job now). */
export interface SharedRoom {
  /** members[code]: the type draws on `left`. */
  members: boolean[];
  left: number;
}

/** At most this many distinct job types (codes fit the heap's 16-bit tags). */
const MAX_TYPES = 65_536;

/** setTimeout's ceiling; longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The ready jobs of one type and key. */
class Lane {
  readonly heap = new PriorityHeap(4);
  /** In its type's ring (it has ready jobs and is not held). */
  inRing = false;
  /** Held back by flow control until this moment (ms); 0 when not held. */
  heldUntil = 0;
  /** Why it is held. */
  heldFor: HoldReason = "key_concurrency";
  constructor(readonly key: string | null, readonly owner: TypeLanes) {}
}

/** One type's lanes, and the ring of those whose turn may come (a queue: front at `head`). */
class TypeLanes {
  readonly lanes = new Map<string | null, Lane>();
  ring: Lane[] = [];
  head = 0;
  /** Ready jobs in all lanes. */
  size = 0;
  constructor(readonly name: string) {}

  lane(key: string | null): Lane {
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = new Lane(key, this);
      this.lanes.set(key, lane);
    }
    return lane;
  }

  enqueue(lane: Lane): void {
    lane.inRing = true;
    this.ring.push(lane);
  }

  /** The lane whose turn it is, dropping from the front lanes that are empty or held. */
  front(now: number): Lane | undefined {
    while (this.head < this.ring.length) {
      const lane = this.ring[this.head]!;
      if (lane.heap.size > 0 && lane.heldUntil <= now) return lane;
      lane.inRing = false;
      this.head++;
      if (lane.heap.size === 0 && lane.heldUntil === 0) this.lanes.delete(lane.key);
    }
    this.compact();
    return undefined;
  }

  /** After a pop from the front lane: it goes to the back while it has jobs. */
  rotate(): void {
    // The only lane (a type without keys): it stays in front.
    if (this.ring.length - this.head === 1 && this.ring[this.head]!.heap.size > 0) return;
    const lane = this.ring[this.head++]!;
    if (lane.heap.size > 0) this.ring.push(lane);
    else {
      lane.inRing = false;
      if (lane.heldUntil === 0) this.lanes.delete(lane.key);
    }
    this.compact();
  }

  private compact(): void {
    if (this.head > 64 && this.head * 2 > this.ring.length) {
      this.ring = this.ring.slice(this.head);
      this.head = 0;
    }
  }
}

export function createScheduler(deps: SchedulerDeps) {
  const { agingMs, clock } = deps;
  // Types are interned to small codes: types[code] holds that type's lanes.
  const codes = new Map<string, number>();
  const types: TypeLanes[] = [];
  let readyTotal = 0;
  const scheduled = new PriorityHeap(64);
  /** The keys of scheduled jobs that have one (the heap's tag carries only the type). */
  const scheduledKeys = new Map<number, string>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let timerAt = Infinity;
  let started = false;
  /** Lanes held back by flow control, and the timer that brings the earliest back. */
  const heldLanes = new Set<Lane>();
  let holdTimer: ReturnType<typeof setTimeout> | null = null;
  let holdTimerAt = Infinity;

  // The heap breaks equal keys by the lower stored priority, which for agingMs > 0 means the
  // earlier ready time. With agingMs = 0 equal keys mean equal ready times and priority plays no
  // part in the order, so store 0 and let the id break the tie.
  const tieByPriority = agingMs > 0;
  function pushReady(id: number, priority: number, readyAt: number, code: number, key: string | null): void {
    const t = types[code]!;
    const lane = t.lane(key);
    lane.heap.push(id, agingKey(readyAt, priority, agingMs), tieByPriority ? priority : 0);
    if (!lane.inRing && lane.heldUntil === 0) t.enqueue(lane);
    t.size++;
    readyTotal++;
  }

  function codeOf(type: string): number {
    let code = codes.get(type);
    if (code === undefined) {
      if (types.length >= MAX_TYPES) throw new Error(`more than ${MAX_TYPES} job types`);
      code = types.length;
      codes.set(type, code);
      types.push(new TypeLanes(type));
    }
    return code;
  }

  /** Whether heap a's top goes before heap b's top (the order one shared heap would give). */
  function before(a: PriorityHeap, b: PriorityHeap): boolean {
    const ak = a.peekKey(), bk = b.peekKey();
    if (ak !== bk) return ak < bk;
    const ap = a.peekPriority(), bp = b.peekPriority();
    if (ap !== bp) return ap < bp;
    return a.peekId() < b.peekId();
  }

  /** A lane's hold ended: back into its type's turns (at the back) if it has ready jobs. True when it did. */
  function unhold(lane: Lane): boolean {
    heldLanes.delete(lane);
    lane.heldUntil = 0;
    if (lane.heap.size > 0) {
      if (!lane.inRing) lane.owner.enqueue(lane);
      return true;
    }
    if (!lane.inRing) lane.owner.lanes.delete(lane.key);
    return false;
  }

  /** Bring back the lanes whose hold ended, and time the next; true when any came back with jobs. */
  function releaseHolds(now: number): boolean {
    let next = Infinity;
    let back = false;
    for (const lane of heldLanes) {
      if (lane.heldUntil <= now) back = unhold(lane) || back;
      else next = Math.min(next, lane.heldUntil);
    }
    armHolds(next);
    return back;
  }

  function armHolds(next: number): void {
    if (next === holdTimerAt && holdTimer) return;
    if (holdTimer) clearTimeout(holdTimer);
    holdTimer = null;
    holdTimerAt = next;
    if (next === Infinity) return;
    holdTimer = setTimeout(() => {
      holdTimer = null;
      holdTimerAt = Infinity;
      if (releaseHolds(clock())) deps.onReady?.();
    }, Math.min(MAX_TIMER_MS, Math.max(0, next - clock())));
  }

  function promoteDue(now: number): number {
    let moved = 0;
    while (scheduled.size > 0 && scheduled.peekKey() <= now) {
      const id = scheduled.pop();
      pushReady(id, scheduled.lastPriority, scheduled.lastKey, scheduled.lastTag, takeScheduledKey(id));
      moved++;
    }
    if (moved > 0) deps.onReady?.();
    return moved;
  }

  function arm(): void {
    if (!started) return;
    const next = scheduled.peekKey();
    if (next === timerAt && timer) return;
    if (timer) clearTimeout(timer);
    timer = null;
    timerAt = next;
    if (next === Infinity) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, next - clock()));
    timer = setTimeout(() => {
      timer = null;
      timerAt = Infinity;
      promoteDue(clock());
      arm();
    }, delay);
  }

  return {
    /** Place a pending job of `type` (and flow-control `key`): ready now, or scheduled until runAt. */
    add(id: number, priority: number, runAt: number, now: number, type = "", key: string | null = null): void {
      const code = codeOf(type);
      if (runAt <= now) {
        pushReady(id, priority, runAt, code, key);
        deps.onReady?.();
      } else {
        scheduled.push(id, runAt, priority, code);
        if (key !== null) scheduledKeys.set(id, key);
        if (runAt < timerAt) arm();
      }
    },
    /**
     * Pop up to `max` ready jobs onto `out`; returns how many. Across types the most urgent goes
     * first; within a type the keys take turns (the lane in front gives its most urgent job and goes
     * to the back). With `room`, at most room[code] jobs of each type code (see typeName) are taken
     * (the counts are used up in place; a missing entry means no limit), and a type with none left
     * is skipped, its jobs kept in order. With `shared`, the type codes it marks also draw on one
     * count between them (used up in place the same way).
     */
    popReady(max: number, out: ReadyBatch, room?: number[], shared?: SharedRoom): number {
      const now = clock();
      promoteDueQuiet(now);
      if (holdTimerAt <= now) releaseHolds(now);
      let n = 0;
      while (n < max && readyTotal > 0) {
        let best = -1;
        let bestLane: Lane | undefined;
        for (let code = 0; code < types.length; code++) {
          const t = types[code]!;
          if (t.size === 0 || (room !== undefined && (room[code] ?? Infinity) <= 0)) continue;
          if (shared !== undefined && shared.members[code] === true && shared.left <= 0) continue;
          const lane = t.front(now);
          if (lane === undefined) continue;
          if (bestLane === undefined || before(lane.heap, bestLane.heap)) {
            best = code;
            bestLane = lane;
          }
        }
        if (bestLane === undefined) break;
        const t = types[best]!;
        const heap = bestLane.heap;
        const id = heap.pop();
        t.size--;
        readyTotal--;
        t.rotate();
        if (room?.[best] !== undefined) room[best] = room[best]! - 1;
        if (shared !== undefined && shared.members[best] === true) shared.left--;
        out.push(id, t.name, bestLane.key, heap.lastPriority, readyAtOf(heap.lastKey, heap.lastPriority, agingMs));
        n++;
      }
      return n;
    },
    /**
     * Hold back one key's ready jobs of a type until `until` (ms): flow control said the key is at
     * its limit. Its lane leaves the ring; other keys and types go on. A later hold extends it.
     */
    holdKey(type: string, key: string, until: number, reason: HoldReason = "key_concurrency"): void {
      const t = types[codeOf(type)]!;
      const lane = t.lane(key);
      if (until <= lane.heldUntil) return;
      lane.heldUntil = until;
      lane.heldFor = reason;
      heldLanes.add(lane);
      if (until < holdTimerAt) armHolds(until);
    },
    /** End a key's hold now (one of its jobs finished here, so it may have room again). */
    releaseKey(type: string, key: string): void {
      const code = codes.get(type);
      const lane = code === undefined ? undefined : types[code]!.lanes.get(key);
      if (lane === undefined || lane.heldUntil === 0) return;
      if (unhold(lane)) deps.onReady?.();
    },
    /** Why a key of a type is held back now, or null (for explaining a job's wait). */
    keyHeld(type: string, key: string): HoldReason | null {
      const code = codes.get(type);
      const lane = code === undefined ? undefined : types[code]!.lanes.get(key);
      return lane !== undefined && lane.heldUntil > clock() ? lane.heldFor : null;
    },
    /**
     * Forget a job that left pending_jobs without being popped (a cancel committed), so it neither
     * counts toward the gauges and --max-queued nor costs a claim. An O(n) scan of the heaps, for rare
     * removals; false when this node does not hold the job.
     */
    remove(id: number): boolean {
      for (const t of types) {
        for (const lane of t.lanes.values()) {
          if (lane.heap.remove(id)) {
            t.size--;
            readyTotal--;
            return true;
          }
        }
      }
      if (!scheduled.remove(id)) return false;
      scheduledKeys.delete(id);
      arm();
      return true;
    },
    /** The type a code (an index of popReady's room) stands for. */
    typeName(code: number): string {
      return types[code]?.name ?? "";
    },
    /** Codes run from 0 to typeCount − 1. */
    get typeCount(): number {
      return types.length;
    },
    /**
     * The smallest key among ready jobs (readyAt − priority × agingMs), or Infinity when none is
     * ready; types `skip` names (those that may not start now) are left out.
     */
    topReadyKey(skip?: (type: string) => boolean): number {
      let top = Infinity;
      for (const t of types) {
        if (t.size === 0 || skip?.(t.name)) continue;
        for (const lane of t.lanes.values()) if (lane.heap.size > 0) top = Math.min(top, lane.heap.peekKey());
      }
      return top;
    },
    /** Ready jobs of one type. */
    readyOf(type: string): number {
      const code = codes.get(type);
      return code === undefined ? 0 : types[code]!.size;
    },
    promoteDue,
    start(): void {
      started = true;
      promoteDue(clock());
      arm();
    },
    stop(): void {
      started = false;
      if (timer) clearTimeout(timer);
      timer = null;
      timerAt = Infinity;
      if (holdTimer) clearTimeout(holdTimer);
      holdTimer = null;
      holdTimerAt = Infinity;
    },
    get readyCount(): number {
      return readyTotal;
    },
    get scheduledCount(): number {
      return scheduled.size;
    },
    /** The earliest ready time among ready jobs (O(n) scan; for gauges), or null. */
    oldestReadyAt(): number | null {
      if (readyTotal === 0) return null;
      let oldest = Infinity;
      for (const t of types) {
        for (const lane of t.lanes.values()) {
          lane.heap.forEachKeyPriority((key, priority) => {
            const at = readyAtOf(key, priority, agingMs);
            if (at < oldest) oldest = at;
          });
        }
      }
      return oldest;
    },
    nextRunAt(): number | null {
      return scheduled.size === 0 ? null : scheduled.peekKey();
    },
    clear(): void {
      for (const t of types) {
        t.lanes.clear();
        t.ring = [];
        t.head = 0;
        t.size = 0;
      }
      heldLanes.clear();
      readyTotal = 0;
      scheduled.clear();
      scheduledKeys.clear();
    },
  };

  function takeScheduledKey(id: number): string | null {
    if (scheduledKeys.size === 0) return null;
    const key = scheduledKeys.get(id);
    if (key === undefined) return null;
    scheduledKeys.delete(id);
    return key;
  }

  /** promoteDue without the onReady call (used from inside a pop, where the caller is pumping). */
  function promoteDueQuiet(now: number): void {
    while (scheduled.size > 0 && scheduled.peekKey() <= now) {
      const id = scheduled.pop();
      pushReady(id, scheduled.lastPriority, scheduled.lastKey, scheduled.lastTag, takeScheduledKey(id));
    }
  }
}

export type Scheduler = ReturnType<typeof createScheduler>;
