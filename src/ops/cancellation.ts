// cancellation.ts: cancelling one job wherever it is. A pending or scheduled row is deleted; a job
// running in this process has its signal fired and its row removed when the handler returns. No
// SQL here; store faults propagate as they are (the HTTP app answers them with 503).
import { JobQueueError } from "../errors.ts";
import type { Admin } from "../store/store.ts";
import type { Clock } from "../clock.ts";

/**
 * - removed: it was pending or scheduled (or claimed here and still waiting for a worker) and is gone.
 * - cancelling: it is running here; its signal fired and its row goes when the handler returns.
 * - dead: it is dead (delete it with DELETE /dead/:id).
 * - elsewhere: another process is running it.
 * - not_found: unknown, or already completed.
 */
export type CancelResult = "removed" | "cancelling" | "dead" | "elsewhere" | "not_found";

export interface CancellationDeps {
  store: Pick<Admin, "cancelPending" | "get">;
  /** The worker pool: cancel() fires a running handler's signal; settled() waits out its claims and moves. */
  pool: { cancel(id: number): boolean; cancelWaiting(id: number): Promise<boolean>; settled(id: number): Promise<void> };
  /** This process's owner name on claims. */
  nodeId: string;
  /** A pending or scheduled job was deleted: drop it from this node's heaps. */
  onRemoved: (id: number) => void;
  clock: Clock;
}

/** Rounds of "delete if pending, else look where it is" before giving up on a job that keeps moving. */
const MAX_ROUNDS = 5;

export function createCancellation(deps: CancellationDeps) {
  const { store, pool } = deps;

  async function cancelOnce(id: number): Promise<CancelResult | "moving"> {
    // Claimed ahead here and waiting for a worker: it never ran, and its row goes now.
    if (await pool.cancelWaiting(id)) return "removed";
    if (pool.cancel(id)) return "cancelling";
    // A claim in flight or a store move of this job on its way: let it land first.
    await pool.settled(id);
    if (await pool.cancelWaiting(id)) return "removed";
    if (pool.cancel(id)) return "cancelling";
    if ((await store.cancelPending([id]))[0]) {
      deps.onRemoved(id);
      return "removed";
    }
    const view = await store.get(id, deps.clock());
    if (view === null) return "not_found";
    if (view.state === "dead") return "dead";
    if (view.state === "inflight" && view.owner !== deps.nodeId) return "elsewhere";
    // Claimed here since (or retried back to pending since): look again.
    return "moving";
  }

  return {
    async cancel(id: number): Promise<CancelResult> {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const result = await cancelOnce(id);
        if (result !== "moving") return result;
      }
      throw new JobQueueError("conflict", "the job kept changing state while being cancelled; retry", 409);
    },
  };
}

export type Cancellation = ReturnType<typeof createCancellation>;
