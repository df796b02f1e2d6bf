// attempt.ts: runs attempts: one handler call per claimed job, with its job context, its AbortSignal,
// the timeout shared by the attempts started together, and interrupts (timeout, cancel, lost lease,
// shutdown) told apart by their errors.ts class; jobs claimed ahead of a free slot wait here in line
// for one (a rated job that waited past its start deadline goes back instead). The store move that
// ends each attempt is the settler's.
import { CancelledError, HandBackError, LeaseLostError, PermanentError, ShutdownError, errorMessage } from "../errors.ts";
import { jobContext, type HandlerRegistry, type JobContext, type RegisteredType } from "../handlers/handler.ts";
import type { ClaimedJob } from "../store/rows.ts";
import type { WorkerEvents } from "./pool.ts";
import type { Pushback } from "./pushback.ts";
import type { RemoteWorkers } from "./remote.ts";
import type { Outcome, Settler } from "./settler.ts";
import type { Slots } from "./slots.ts";
import { TimeoutGroup } from "./timeout-group.ts";
import { agingKey } from "../aging.ts";
import { RATED_AHEAD_START_WITHIN_MS, isRated } from "../config/flow-policy.ts";
import type { Clock } from "../clock.ts";

/** An attempt this pool holds, from its start until its store move has landed (see pool.ts). */
export interface Attempt {
  job: ClaimedJob;
  /** The handler's signal; none while the job waits for a slot (its handler never ran), nor for a handler that takes none. */
  controller?: AbortController;
  /** Ends the attempt early: aborts the handler's signal and frees its slot even if it ignores it. */
  interrupt?: (reason: Error) => void;
  /**
   * Set the moment the attempt ends, by its handler or by an interrupt, whichever comes first; the
   * other is then ignored. From here only its store move is left: an ended attempt is never
   * interrupted, so a result that exists is always settled.
   */
  ended: boolean;
  /** Claimed ahead: it waits here for a slot, its handler not called yet (see waiting below). */
  waiting?: boolean;
}

/** Bytes of a handler's result (a string it resolved with) kept with a completed record. */
export const RESULT_LIMIT = 4096;

/** A handler's return value as a stored result: strings only, at most RESULT_LIMIT bytes, no NUL. */
function resultOf(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const bytes = Buffer.from(value);
  const text = bytes.length > RESULT_LIMIT ? bytes.subarray(0, RESULT_LIMIT).toString() : value;
  return text.replaceAll("\u0000", "\uFFFD");
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null && typeof (value as PromiseLike<unknown>).then === "function";
}

export interface AttemptsDeps {
  registry: Pick<HandlerRegistry, "get">;
  clock: Clock;
  /** Completed jobs keep their handler's result (> 0) or not (0). */
  keepMs: number;
  events: Pick<WorkerEvents, "started" | "fenced" | "held">;
  slots: Pick<Slots, "begin" | "end" | "occupy" | "startable" | "idle" | "queue">;
  /** The scheduler's aging: jobs claimed ahead wait in the heap's order. */
  agingMs: number;
  /** A local handler ran this long (claim ahead is sized from it). */
  observeRunMs?: (ms: number) => void;
  settler: Pick<Settler, "settle" | "remove" | "handBack" | "giveBack">;
  /** Runs pull types' jobs: hands them to remote workers and ends their attempts as the workers say. */
  remote?: Pick<RemoteWorkers, "run" | "settled">;
  /** stop() has begun: a job whose claim lands now is handed straight back. */
  mode: { readonly stopping: boolean };
  /** Learns from each attempt's answer how hard its type's target may be pushed. */
  pushback: Pick<Pushback, "observe">;
  /** A slot came free: claim more. */
  pump: () => void;
  /** Attempts started, or one is gone: tell whoever waits on the pool. */
  notifyIdle: () => void;
  /** A job of a type with no handler here was claimed (from the store): leave that type's rows alone from now on. */
  unknownType?: (type: string) => void;
  /** A job with a flow-control key left inflight (its move landed). */
  keyFreed?: (type: string, key: string) => void;
}

/** Where a claimed job stands in line for a slot: rated types first (0), then the heap's order (aging key, id). */
interface LinePlace {
  first: number;
  key: number;
  id: number;
}
const byLine = (a: LinePlace, b: LinePlace) => a.first - b.first || a.key - b.key || a.id - b.id;

/** A job claimed ahead, in line for a slot. */
interface Waiting extends LinePlace {
  entry: Attempt;
  readyAt: number;
  /**
   * A rated job must start by then (clock ms) or go back to pending without using an attempt: its
   * claim counted its start RATED_AHEAD_START_WITHIN_MS early at most (flow-policy.ts claimsAhead).
   * Infinity for the rest.
   */
  startBy: number;
}

export function createAttempts(deps: AttemptsDeps) {
  const { registry, clock, events, slots, settler, keepMs, pump, notifyIdle } = deps;
  const running = new Map<number, Attempt>();
  /**
   * Jobs claimed ahead of a free slot (claimer.ts takes more than the free slots when handlers are
   * short): leased to this node, their handlers not called yet, started in this order as slots free.
   * Entries dropped meanwhile (cancelled, lease lost, handed back at shutdown) are skipped.
   */
  const waiting: Waiting[] = [];
  let waitingHead = 0;

  /**
   * Start handlers for claimed jobs (or hand them straight back if shutdown began meanwhile).
   * `sentAt`: when the claim that took them was sent (clock ms), for the start deadline of rated jobs
   * that wait in line (a rate is weighed only by claims from the heap, which give it).
   */
  function start(claimed: ClaimedJob[], readyAtById: ReadonlyMap<number, { readyAt: number }> | null, sentAt?: number): void {
    const now = clock();
    const readyAt = (job: ClaimedJob) => readyAtById?.get(job.id)?.readyAt ?? job.runAt;
    // More than the free slots (a claim ahead): those that wait go in the heap's order (a claim's
    // rows come back in any order), but rate-limited jobs start first: their starts were counted
    // when the claim was made (the claim took no more of them than slots were free, slots.ts, or
    // for a type that claims ahead, they must start within RATED_AHEAD_START_WITHIN_MS of it).
    // A rated job starts first whether its type claims ahead or not: fewer go back for waiting too long.
    const linedUp = waiting.length > waitingHead;
    // Places computed once per job, not per comparison.
    const placeOf = (job: ClaimedJob) => {
      const at = readyAt(job);
      return { job, id: job.id, readyAt: at, first: isRated(registry.get(job.type)?.flow) ? 0 : 1, key: agingKey(at, job.priority, deps.agingMs) };
    };
    const placed = claimed.length > slots.idle || linedUp ? claimed.map(placeOf).sort(byLine) : null;
    if (placed !== null) claimed = placed.map((p) => p.job);
    // Jobs started together with the same timeout share one timer (a claim brings many).
    const timers = new Map<number, TimeoutGroup>();
    for (let i = 0; i < claimed.length; i++) {
      const job = claimed[i]!;
      if (deps.mode.stopping) {
        // Shutdown began while the claim was in flight: give it straight back.
        slots.occupy(job.type, -1);
        running.set(job.id, { job, ended: true });
        void release([job]);
        continue;
      }
      const type = registry.get(job.type);
      // No slot free (or jobs claimed earlier still wait for one): it waits its turn here. Pull
      // types' jobs take no slot (remote.ts).
      if (type !== undefined && !type.pull && (!slots.startable || waiting.length > waitingHead)) {
        const entry: Attempt = { job, ended: false, waiting: true };
        running.set(job.id, entry);
        const { first, key, id, readyAt: at } = placed?.[i] ?? placeOf(job);
        // Every rated job that waits gets the deadline, not only those of types that claim ahead now:
        // a reload may have changed the type since its claim weighed it.
        const startBy = sentAt !== undefined && isRated(type.flow) ? sentAt + RATED_AHEAD_START_WITHIN_MS : Infinity;
        waiting.push({ entry, readyAt: at, first, key, id, startBy });
        slots.queue(1);
        continue;
      }
      begin(job, type, readyAt(job), now, timers);
    }
    for (const group of timers.values()) group.arm();
    // Jobs were in line already (from an earlier claim, or from one sent after this one that landed
    // first: two claims may be out at once, claimer.ts): a claim's from the heap take their places
    // by the heap's order. Jobs born leased or pulled from the store join the end, as before.
    if (linedUp && readyAtById !== null) mergeLine();
    startWaiting(); // (a slot that came free without an attempt ending)
    notifyIdle();
  }

  /** Call a claimed job's handler now (its slot is free). */
  function begin(job: ClaimedJob, type: RegisteredType | undefined, readyAt: number, now: number, timers: Map<number, TimeoutGroup>): void {
    events.started(job.type, Math.max(0, now - readyAt));
    let group: TimeoutGroup | undefined;
    if (type) {
      const timeoutMs = job.timeoutMs ?? type.timeoutMs;
      group = timers.get(timeoutMs);
      if (!group) timers.set(timeoutMs, (group = new TimeoutGroup(timeoutMs)));
    }
    void run(job, type, group);
  }

  /** Puts the line (from its head) back in the heap's order after a claim's jobs joined its end. */
  function mergeLine(): void {
    const rest = waiting.slice(waitingHead).filter((w) => w.entry.waiting).sort(byLine);
    waiting.length = 0;
    waitingHead = 0;
    for (const w of rest) waiting.push(w);
  }

  let startSoon = false;
  /**
   * A slot came free as an attempt ended: start waiting jobs once the attempts ending in this wave
   * of microtasks have all freed theirs, so they start together (one timeout group, one timer)
   * instead of one by one.
   */
  function startWaitingSoon(): void {
    if (startSoon || waitingHead === waiting.length) return;
    startSoon = true;
    queueMicrotask(() => {
      startSoon = false;
      startWaiting();
      pump(); // the line is shorter now: a claim may be worth sending
    });
  }

  /** Slots came free: start the jobs that wait for one, in their order. */
  function startWaiting(): void {
    if (waitingHead === waiting.length) return;
    const now = clock();
    const timers = new Map<number, TimeoutGroup>();
    let late: Attempt[] | undefined;
    while (waitingHead < waiting.length && slots.startable) {
      const { entry, readyAt, startBy } = waiting[waitingHead]!;
      waiting[waitingHead++] = undefined!;
      if (!entry.waiting) continue; // dropped meanwhile (its count already given back)
      if (now > startBy) {
        // Its start was counted that much earlier: starting now could crowd a window past its rate.
        dropWaiting(entry);
        (late ??= []).push(entry);
        continue;
      }
      entry.waiting = false;
      slots.queue(-1);
      if (deps.mode.stopping) {
        void release([entry.job]);
        slots.occupy(entry.job.type, -1);
        continue;
      }
      begin(entry.job, registry.get(entry.job.type), readyAt, now, timers);
    }
    if (waitingHead === waiting.length) {
      waiting.length = 0;
      waitingHead = 0;
    } else if (waitingHead > 1024 && waitingHead * 2 > waiting.length) {
      // A line that never empties: drop the started half so the array does not grow without end.
      waiting.splice(0, waitingHead);
      waitingHead = 0;
    }
    for (const group of timers.values()) group.arm();
    if (late !== undefined) void giveBackLate(late);
  }

  /** Take a waiting job out of the line (cancelled, its lease lost, handed back): it never starts here. */
  function dropWaiting(entry: Attempt): void {
    entry.waiting = false;
    entry.ended = true;
    slots.queue(-1);
    slots.occupy(entry.job.type, -1);
  }

  async function run(job: ClaimedJob, type: RegisteredType | undefined, group: TimeoutGroup | undefined): Promise<void> {
    const entry: Attempt = { job, ended: false };
    running.set(job.id, entry);
    slots.begin(job.type);
    const startedAt = clock();
    let outcome: Outcome;
    if (!type || !group) {
      // No handler here (a type another node runs, or one a reload of the types file dropped): the
      // job goes back uncounted and waits for a node that has one; this node leaves the type alone.
      entry.ended = true;
      deps.unknownType?.(job.type);
      outcome = { ok: false, error: `no handler is configured for job type "${job.type}"`, permanent: false, cause: new HandBackError() };
    } else {
      const remote = type.pull ? deps.remote : undefined;
      const handler = remote === undefined ? type.handler : (_ctx: unknown, signal: AbortSignal) => remote.run(job, signal);
      outcome = await runHandler(job, handler, entry, group);
    }
    const cause = outcome.ok ? null : outcome.cause;
    // Before the slot is free and more are claimed: a cut concurrency or an open breaker applies to them.
    if (type && !(cause instanceof LeaseLostError || cause instanceof ShutdownError || cause instanceof CancelledError || cause instanceof HandBackError)) {
      deps.pushback.observe(job.type, { ok: outcome.ok, cause, startedAt });
    }
    slots.end(job.type);
    const runMs = clock() - startedAt;
    if (type && !type.pull && outcome.ok) deps.observeRunMs?.(runMs);
    startWaitingSoon();
    pump();
    if (cause instanceof LeaseLostError) {
      // The reaper already handed this attempt back; any move we made would be fenced off.
      running.delete(job.id);
      events.fenced("lease");
      notifyIdle();
      return;
    }
    if (cause instanceof ShutdownError) return; // stop() hands it back
    if (cause instanceof HandBackError) await settler.giveBack([job], type !== undefined); // no remote worker took it, or no handler here
    else if (cause instanceof CancelledError) await settler.remove(job);
    else {
      const how = await settler.settle(job, outcome, runMs);
      if (type?.pull) deps.remote?.settled(job, how);
    }
    running.delete(job.id);
    // Its row has left inflight: a key held at its concurrency limit may start its next job.
    if (job.key !== null) deps.keyFreed?.(job.type, job.key);
    notifyIdle();
  }

  /**
   * Runs the handler; resolves with the attempt's outcome when it returns or throws, or as soon as
   * the pool interrupts it (timeout, lost lease, cancel, shutdown) even if it ignores its signal.
   */
  function runHandler(job: ClaimedJob, handler: RegisteredType["handler"], entry: Attempt, group: TimeoutGroup): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let open = true;
      const finish = (outcome: Outcome) => {
        if (!open) return;
        open = false;
        entry.ended = true;
        group.leave(entry);
        resolve(outcome);
      };
      const failed = (err: unknown) => finish({ ok: false, error: errorMessage(err), permanent: err instanceof PermanentError, cause: err });
      const done = (value: unknown) => finish({ ok: true, result: keepMs > 0 ? resultOf(value) : null });
      // Every abort comes from this pool, so it ends the attempt here instead of through a listener:
      // the outcome is decided first, then the handler's signal fires.
      entry.interrupt = (reason) => {
        failed(reason);
        entry.controller?.abort(reason);
      };
      group.join(entry);
      // Handlers start after the whole batch is registered (slots counted), never inside
      // start()'s loop, so a handler that submits or cancels sees the pool as it is.
      queueMicrotask(() => {
        if (!open) return; // interrupted before it began
        try {
          const ctx = jobContext({
            id: job.id, type: job.type, payloadText: job.payload, attempt: job.attempts,
            maxAttempts: job.maxAttempts, priority: job.priority, createdAt: job.createdAt, traceparent: job.trace ?? null,
          });
          // A handler declared with exactly one parameter, `(job) => …`, never asked for its signal:
          // none is made (an AbortController per job was 8–13 % of the process's CPU per job in a
          // drain of noop jobs). `()`, `(...args)` and two parameters get one, as always.
          const value = handler.length === 1
            ? (handler as (job: JobContext) => unknown)(ctx)
            : handler(ctx, (entry.controller = new AbortController()).signal);
          if (isThenable(value)) value.then(done, failed);
          else done(value);
        } catch (err) {
          failed(err);
        }
      });
    });
  }

  /** End a running attempt from inside the pool (timeout, lost lease, cancel, shutdown); an ended one is left alone. */
  function interrupt(r: Attempt, reason: Error): void {
    if (r.ended) return;
    if (r.waiting) return void endWaiting(r, reason);
    if (r.interrupt) r.interrupt(reason);
    else r.controller?.abort(reason);
  }

  /**
   * A job that waited for a slot is interrupted before its handler ran: cancelled (resolves with
   * whether its row went), lease lost, or shutdown.
   */
  async function endWaiting(r: Attempt, reason: Error): Promise<boolean> {
    dropWaiting(r);
    const job = r.job;
    if (reason instanceof ShutdownError) return false; // stop() hands it back with the rest
    let removed = false;
    if (reason instanceof CancelledError) {
      const how = await settler.remove(job);
      removed = how === "took" || how === "unsure";
      running.delete(job.id);
      if (job.key !== null) deps.keyFreed?.(job.type, job.key);
    } else {
      // Its lease is gone (the reaper has the row): nothing of it may be written.
      running.delete(job.id);
      events.fenced("lease");
    }
    notifyIdle();
    pump();
    return removed;
  }

  /**
   * Rated jobs that waited past their start deadline: back to pending and the heap in one move,
   * without using an attempt (their handlers never ran). Their counted starts stay counted.
   */
  async function giveBackLate(entries: Attempt[]): Promise<void> {
    for (const e of entries) events.held?.(e.job.type, "rate_limit");
    await settler.giveBack(entries.map((e) => e.job));
    for (const e of entries) if (running.get(e.job.id) === e) running.delete(e.job.id);
    notifyIdle();
    pump();
  }

  /** Shutdown: hand attempts this pool ended itself back to pending; they are gone once it answers. */
  async function release(jobs: ClaimedJob[]): Promise<void> {
    await settler.handBack(jobs);
    for (const j of jobs) running.delete(j.id);
    notifyIdle();
  }

  /** Shutdown began: jobs still waiting for a slot go straight back to pending, uncounted (they never started). */
  async function releaseWaiting(): Promise<number> {
    const jobs: ClaimedJob[] = [];
    for (let i = waitingHead; i < waiting.length; i++) {
      const w = waiting[i]!;
      if (!w.entry.waiting) continue;
      dropWaiting(w.entry);
      jobs.push(w.entry.job);
    }
    waiting.length = 0;
    waitingHead = 0;
    if (jobs.length > 0) await release(jobs);
    return jobs.length;
  }

  return {
    releaseWaiting,
    /** The attempts this pool holds, by job id: running a handler, or ended with their move still out. */
    running: running as ReadonlyMap<number, Attempt>,
    start,
    interrupt,
    release,
    /**
     * Cancel `id` if its handler is running here: the signal fires with a CancelledError and the row
     * is removed (fenced by the claim, never retried) when the handler returns. false when it is not.
     */
    cancel(id: number): boolean {
      const r = running.get(id);
      if (r === undefined || r.ended || r.waiting) return false;
      interrupt(r, new CancelledError());
      return true;
    },
    /**
     * Cancel `id` if it waits here for a slot (claimed ahead, its handler never called): its row is
     * removed, fenced by the claim. Resolves with whether it was removed; false when it was not waiting.
     */
    async cancelWaiting(id: number): Promise<boolean> {
      const r = running.get(id);
      if (r === undefined || !r.waiting) return false;
      return endWaiting(r, new CancelledError());
    },
    /** Whether `id` ended here and only its store move is left. */
    ending(id: number): boolean {
      const r = running.get(id);
      return r !== undefined && r.ended;
    },
  };
}

export type Attempts = ReturnType<typeof createAttempts>;
