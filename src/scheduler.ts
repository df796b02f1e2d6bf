// scheduler.ts: decides what runs next — a ready heap aged by priority, a scheduled heap keyed by
// runAt, and the one timer that moves due jobs between them. Ids and times only: no I/O, no store.
import { PriorityHeap } from "./heap.ts";

export interface SchedulerDeps {
  /** How many ms of waiting one priority point is worth; 0 = pure FIFO by ready time. */
  agingMs: number;
  clock: () => number;
  /** Called when jobs become ready: by add() of a due job and by promoteDue() that moved any. */
  onReady?: () => void;
}

/** Caller-owned output of popReady(); reused across calls to avoid allocating per batch. */
export interface ReadyBatch {
  ids: number[];
  readyAts: number[];
}

export interface Scheduler {
  /** Priority is an integer 0-100, higher runs first; runAt <= now means ready at runAt. */
  add(id: number, priority: number, runAt: number, now: number): void;
  /** Promotes due scheduled jobs, then appends up to `max` ready ids (and their ready times). */
  popReady(max: number, out: ReadyBatch): number;
  /** Moves scheduled jobs with runAt <= now to the ready heap; returns how many moved. */
  promoteDue(now: number): number;
  /** Arms the single timer for the earliest scheduled job. */
  start(): void;
  stop(): void;
  readonly readyCount: number;
  readonly scheduledCount: number;
  /** Earliest ready time among ready jobs (O(n) scan, for metrics); null when none. */
  oldestReadyAt(): number | null;
  /** Earliest scheduled runAt; null when nothing is scheduled. */
  nextRunAt(): number | null;
  clear(): void;
}

/** setTimeout's largest delay; longer ones fire at once in Bun and Node. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export function createScheduler(deps: SchedulerDeps): Scheduler {
  const { agingMs, clock, onReady } = deps;
  // Ready key = readyAt − priority × agingMs, fixed at push: linear aging never reorders jobs.
  // The heap breaks equal keys by the lower stored priority, which for agingMs > 0 is the
  // earlier ready time. With agingMs = 0 equal keys mean equal ready times, so priority must not
  // decide: store 0 and let the id break the tie (readyAt = key either way).
  const tieByPriority = agingMs > 0;
  const ready = new PriorityHeap();
  const scheduled = new PriorityHeap(); // key = runAt; priority kept for the move to ready
  let started = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let timerTarget = Infinity;

  function pushReady(id: number, priority: number, readyAt: number): void {
    ready.push(id, readyAt - priority * agingMs, tieByPriority ? priority : 0);
  }

  function promote(now: number): number {
    let moved = 0;
    while (scheduled.size > 0 && scheduled.peekKey() <= now) {
      const id = scheduled.pop();
      pushReady(id, scheduled.lastPriority, scheduled.lastKey);
      moved++;
    }
    return moved;
  }

  function promoteDue(now: number): number {
    const moved = promote(now);
    if (moved > 0) onReady?.();
    return moved;
  }

  function disarm(): void {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    timerTarget = Infinity;
  }

  function arm(): void {
    disarm();
    if (!started || scheduled.size === 0) return;
    timerTarget = scheduled.peekKey();
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, timerTarget - clock()));
    timer = setTimeout(fire, delay);
  }

  function fire(): void {
    timer = null;
    promoteDue(clock());
    arm();
  }

  return {
    add(id, priority, runAt, now) {
      if (runAt <= now) {
        pushReady(id, priority, runAt);
        onReady?.();
        return;
      }
      scheduled.push(id, runAt, priority);
      if (started && runAt < timerTarget) arm();
    },

    popReady(max, out) {
      // The caller is already popping, so due jobs join without an onReady() call.
      promote(clock());
      let n = 0;
      while (n < max && ready.size > 0) {
        out.ids.push(ready.pop());
        out.readyAts.push(ready.lastKey + ready.lastPriority * agingMs);
        n++;
      }
      return n;
    },

    promoteDue,

    start() {
      started = true;
      arm();
    },

    stop() {
      started = false;
      disarm();
    },

    get readyCount() {
      return ready.size;
    },

    get scheduledCount() {
      return scheduled.size;
    },

    oldestReadyAt() {
      if (ready.size === 0) return null;
      let oldest = Infinity;
      ready.forEachKeyPriority((key, priority) => {
        const readyAt = key + priority * agingMs;
        if (readyAt < oldest) oldest = readyAt;
      });
      return oldest;
    },

    nextRunAt() {
      return scheduled.size > 0 ? scheduled.peekKey() : null;
    },

    clear() {
      ready.clear();
      scheduled.clear();
      if (started) arm();
    },
  };
}
