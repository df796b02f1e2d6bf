// scheduler.ts: decides what runs next. Ready heaps keyed by readyAt − priority × agingMs (fixed
// at push, so aging never re-sorts), one per job type so a type at its concurrency limit is skipped
// without scanning its backlog, and a scheduled heap keyed by runAt, moved over by one timer.
// A cache of pending_jobs: it never touches the store.
import { PriorityHeap } from "./heap.ts";
import type { Clock } from "../clock.ts";
import { agingKey, readyAtOf } from "../aging.ts";

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

  push(id: number, type: string, priority: number, readyAt: number): void {
    const e = this.entries[this.length];
    if (e === undefined) this.entries.push({ id, type, priority, readyAt });
    else {
      e.id = id;
      e.type = type;
      e.priority = priority;
      e.readyAt = readyAt;
    }
    this.length++;
  }
}

/** At most this many distinct job types (codes fit the heap's 16-bit tags). */
const MAX_TYPES = 65_536;

/** setTimeout's ceiling; longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function createScheduler(deps: SchedulerDeps) {
  const { agingMs, clock } = deps;
  // Types are interned to small codes: ready[code] is that type's ready heap.
  const codes = new Map<string, number>();
  const names: string[] = [];
  const ready: PriorityHeap[] = [];
  let readyTotal = 0;
  const scheduled = new PriorityHeap(64);
  let timer: ReturnType<typeof setTimeout> | null = null;
  let timerAt = Infinity;
  let started = false;

  // The heap breaks equal keys by the lower stored priority, which for agingMs > 0 means the
  // earlier ready time. With agingMs = 0 equal keys mean equal ready times and priority plays no
  // part in the order, so store 0 and let the id break the tie.
  const tieByPriority = agingMs > 0;
  function pushReady(id: number, priority: number, readyAt: number, code: number): void {
    ready[code]!.push(id, agingKey(readyAt, priority, agingMs), tieByPriority ? priority : 0);
    readyTotal++;
  }

  function codeOf(type: string): number {
    let code = codes.get(type);
    if (code === undefined) {
      if (names.length >= MAX_TYPES) throw new Error(`more than ${MAX_TYPES} job types`);
      code = names.length;
      codes.set(type, code);
      names.push(type);
      ready.push(new PriorityHeap(64));
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

  function promoteDue(now: number): number {
    let moved = 0;
    while (scheduled.size > 0 && scheduled.peekKey() <= now) {
      const id = scheduled.pop();
      pushReady(id, scheduled.lastPriority, scheduled.lastKey, scheduled.lastTag);
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
    /** Place a pending job of `type`: ready now, or scheduled until runAt. */
    add(id: number, priority: number, runAt: number, now: number, type = ""): void {
      const code = codeOf(type);
      if (runAt <= now) {
        pushReady(id, priority, runAt, code);
        deps.onReady?.();
      } else {
        scheduled.push(id, runAt, priority, code);
        if (runAt < timerAt) arm();
      }
    },
    /**
     * Pop up to `max` ready jobs (most urgent first) onto `out`; returns how many. With `room`, at
     * most room[code] jobs of each type code (see typeName) are taken (the counts are used up in
     * place; a missing entry means no limit), and a type with none left is skipped, its jobs kept in order.
     */
    popReady(max: number, out: ReadyBatch, room?: number[]): number {
      promoteDueQuiet(clock());
      let n = 0;
      while (n < max && readyTotal > 0) {
        let best = -1;
        for (let code = 0; code < ready.length; code++) {
          const heap = ready[code]!;
          if (heap.size === 0 || (room !== undefined && (room[code] ?? Infinity) <= 0)) continue;
          if (best === -1 || before(heap, ready[best]!)) best = code;
        }
        if (best === -1) break;
        const heap = ready[best]!;
        const id = heap.pop();
        readyTotal--;
        if (room?.[best] !== undefined) room[best] = room[best]! - 1;
        out.push(id, names[best]!, heap.lastPriority, readyAtOf(heap.lastKey, heap.lastPriority, agingMs));
        n++;
      }
      return n;
    },
    /**
     * Forget a job that left pending_jobs without being popped (a cancel committed), so it neither
     * counts toward the gauges and --max-queued nor costs a claim. An O(n) scan of the heaps, for rare
     * removals; false when this node does not hold the job.
     */
    remove(id: number): boolean {
      for (const heap of ready) {
        if (heap.remove(id)) {
          readyTotal--;
          return true;
        }
      }
      if (!scheduled.remove(id)) return false;
      arm();
      return true;
    },
    /** The type a code (an index of popReady's room) stands for. */
    typeName(code: number): string {
      return names[code] ?? "";
    },
    /** Codes run from 0 to typeCount − 1. */
    get typeCount(): number {
      return names.length;
    },
    /**
     * The smallest key among ready jobs (readyAt − priority × agingMs), or Infinity when none is
     * ready; types `skip` names (those that may not start now) are left out.
     */
    topReadyKey(skip?: (type: string) => boolean): number {
      let top = Infinity;
      for (let code = 0; code < ready.length; code++) {
        const heap = ready[code]!;
        if (heap.size > 0 && !skip?.(names[code]!)) top = Math.min(top, heap.peekKey());
      }
      return top;
    },
    /** Ready jobs of one type. */
    readyOf(type: string): number {
      const code = codes.get(type);
      return code === undefined ? 0 : ready[code]!.size;
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
      for (const heap of ready) {
        heap.forEachKeyPriority((key, priority) => {
          const at = readyAtOf(key, priority, agingMs);
          if (at < oldest) oldest = at;
        });
      }
      return oldest;
    },
    nextRunAt(): number | null {
      return scheduled.size === 0 ? null : scheduled.peekKey();
    },
    clear(): void {
      for (const heap of ready) heap.clear();
      readyTotal = 0;
      scheduled.clear();
    },
  };

  /** promoteDue without the onReady call (used from inside a pop, where the caller is pumping). */
  function promoteDueQuiet(now: number): void {
    while (scheduled.size > 0 && scheduled.peekKey() <= now) {
      const id = scheduled.pop();
      pushReady(id, scheduled.lastPriority, scheduled.lastKey, scheduled.lastTag);
    }
  }
}

export type Scheduler = ReturnType<typeof createScheduler>;
