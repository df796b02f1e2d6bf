// batcher.ts: group commit. Calls that arrive while a flush is running share the next flush
// (one transaction); each caller is answered only when its flush resolves. A flush that fails for
// something one member may have caused is retried in halves, so one caller's fault is never another
// caller's answer. No SQL here.
import { mayRetryApart } from "../errors.ts";

export interface Batcher<I, O> {
  /** Queue one item; resolves with its result after the flush that carried it committed. */
  add(item: I): Promise<O>;
  /** Resolves when nothing is queued or in flight. */
  drain(): Promise<void>;
  readonly queued: number;
}

interface Waiting<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

/**
 * Adaptive window: an idle batcher flushes on the next microtask (no added latency); while
 * `maxInFlight` flushes are out, arrivals pile up and leave together when one ends. For a store whose calls
 * block (nothing is ever "in flight"), pass `defer: setImmediate` so one flush carries a whole
 * event-loop turn of arrivals.
 */
export function createBatcher<I, O>(opts: {
  run: (items: I[]) => Promise<O[]>;
  /** Most items per flush; the rest wait for the next one. */
  maxBatch: number;
  /** Weight of one item against maxBatch (e.g. the number of jobs in a submit). */
  weight?: (item: I) => number;
  /** How a flush is scheduled after the first arrival; default queueMicrotask. */
  defer?: (fn: () => void) => void;
  /**
   * Flushes allowed out at once (default 1). More than one lets a store that overlaps commits
   * (PostgreSQL syncs concurrent commits' WAL together) keep working while a reply travels.
   */
  maxInFlight?: number;
  /**
   * A flush beyond the first goes out only when it carries at least this much weight (default 0:
   * any). Small flushes then wait for the one out and leave together, one commit instead of
   * several, while heavy arrivals (a batch submit) still overlap up to maxInFlight.
   */
  overlapMinWeight?: number;
  /**
   * Whether a failed flush may be split and retried (default: unless the store is unavailable or the
   * outcome unknown, see errors.ts). A failure that left nothing behind and may be one member's fault
   * is retried in halves down to single members, so only the members at fault get the error.
   */
  retryApart?: (err: unknown) => boolean;
}): Batcher<I, O> {
  const defer = opts.defer ?? queueMicrotask;
  const maxInFlight = opts.maxInFlight ?? 1;
  const weight = opts.weight ?? (() => 1);
  const overlapMinWeight = opts.overlapMinWeight ?? 0;
  const retryApart = opts.retryApart ?? mayRetryApart;
  let queue: Waiting<I, O>[] = [];
  /** The weight of what is queued. */
  let queuedWeight = 0;
  let active = 0;
  let scheduled = false;
  const idle: Array<() => void> = [];

  function take(): Waiting<I, O>[] {
    let total = 0;
    let n = 0;
    while (n < queue.length) {
      const w = weight(queue[n]!.item);
      if (n > 0 && total + w > opts.maxBatch) break;
      total += w;
      n++;
    }
    const batch = queue.slice(0, n);
    queue = queue.slice(n);
    queuedWeight -= total;
    return batch;
  }

  /** Whether another flush may go out now: one is always allowed; more only up to maxInFlight, and heavy enough. */
  const mayFlush = () => active === 0 || (active < maxInFlight && queuedWeight >= overlapMinWeight);

  async function flush(batch: Waiting<I, O>[]): Promise<void> {
    let out: O[];
    try {
      out = await opts.run(batch.map((w) => w.item));
    } catch (err) {
      if (batch.length > 1 && retryApart(err)) {
        // Bisect: k failing members among n cost about 2k·log2(n) statements, the rest commit.
        const half = Math.ceil(batch.length / 2);
        await flush(batch.slice(0, half));
        await flush(batch.slice(half));
        return;
      }
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => w.resolve(out[i] as O));
  }

  function kick(): void {
    if (scheduled || !mayFlush()) return;
    if (queue.length === 0) {
      if (active === 0) for (const f of idle.splice(0)) f();
      return;
    }
    scheduled = true;
    defer(() => {
      scheduled = false;
      if (!mayFlush() || queue.length === 0) return kick();
      active++;
      void flush(take()).finally(() => {
        active--;
        kick();
      });
      kick();
    });
  }

  return {
    add(item) {
      return new Promise<O>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        queuedWeight += weight(item);
        kick();
      });
    },
    drain() {
      if (active === 0 && !scheduled && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idle.push(resolve));
    },
    get queued() {
      return queue.length;
    },
  };
}
