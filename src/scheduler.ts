// scheduler.ts: decides what runs next. A ready heap keyed by readyAt − priority × agingMs (fixed
// at push, so aging never re-sorts) and a scheduled heap keyed by runAt, moved over by one timer.
// A cache of pending_jobs: it never touches the store.
import { PriorityHeap } from "./heap.ts";

export interface SchedulerDeps {
  agingMs: number;
  clock: () => number;
  /** Called when jobs became ready (submit, retry due, timer). */
  onReady?: () => void;
}

export interface PopOut {
  ids: number[];
  readyAts: number[];
  priorities: number[];
}

/** setTimeout's ceiling; longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function createScheduler(deps: SchedulerDeps) {
  const { agingMs, clock } = deps;
  const ready = new PriorityHeap(1024);
  const scheduled = new PriorityHeap(64);
  let timer: ReturnType<typeof setTimeout> | null = null;
  let timerAt = Infinity;
  let started = false;

  // The heap breaks equal keys by the lower stored priority, which for agingMs > 0 means the
  // earlier ready time. With agingMs = 0 equal keys mean equal ready times and priority plays no
  // part in the order, so store 0 and let the id break the tie.
  const tieByPriority = agingMs > 0;
  function pushReady(id: number, priority: number, readyAt: number): void {
    ready.push(id, readyAt - priority * agingMs, tieByPriority ? priority : 0);
  }

  function promoteDue(now: number): number {
    let moved = 0;
    while (scheduled.size > 0 && scheduled.peekKey() <= now) {
      const id = scheduled.pop();
      pushReady(id, scheduled.lastPriority, scheduled.lastKey);
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
    /** Place a pending job: ready now, or scheduled until runAt. */
    add(id: number, priority: number, runAt: number, now: number): void {
      if (runAt <= now) {
        pushReady(id, priority, runAt);
        deps.onReady?.();
      } else {
        scheduled.push(id, runAt, priority);
        if (runAt < timerAt) arm();
      }
    },
    /** Pop up to `max` ready ids (most urgent first) into `out`; returns how many. */
    popReady(max: number, out: PopOut): number {
      promoteDueQuiet(clock());
      let n = 0;
      while (n < max && ready.size > 0) {
        const id = ready.pop();
        out.ids.push(id);
        out.priorities.push(ready.lastPriority);
        out.readyAts.push(ready.lastKey + ready.lastPriority * agingMs);
        n++;
      }
      return n;
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
      return ready.size;
    },
    get scheduledCount(): number {
      return scheduled.size;
    },
    /** The earliest ready time among ready jobs (O(n) scan; for gauges), or null. */
    oldestReadyAt(): number | null {
      if (ready.size === 0) return null;
      let oldest = Infinity;
      ready.forEachKeyPriority((key, priority) => {
        const at = key + priority * agingMs;
        if (at < oldest) oldest = at;
      });
      return oldest;
    },
    nextRunAt(): number | null {
      return scheduled.size === 0 ? null : scheduled.peekKey();
    },
    clear(): void {
      ready.clear();
      scheduled.clear();
    },
  };

  /** promoteDue without the onReady call (used from inside a pop, where the caller is pumping). */
  function promoteDueQuiet(now: number): void {
    while (scheduled.size > 0 && scheduled.peekKey() <= now) {
      const id = scheduled.pop();
      pushReady(id, scheduled.lastPriority, scheduled.lastKey);
    }
  }
}

export type Scheduler = ReturnType<typeof createScheduler>;
