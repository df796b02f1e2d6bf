// waiters.ts: the callers waiting on the pool: stop() until nothing is claimed or held, a cancel until
// one job's claims and store move have landed. It keeps their promises and answers them when told that
// something changed; it moves nothing itself.

export interface WaitersDeps {
  /** Nothing is being claimed or reserved, and no attempt is held. */
  idle: () => boolean;
  /** Whether a claim numbered up to `upTo` is still out (it may be taking `id`), or `id` ended here with its move still out. */
  holds: (id: number, upTo: number) => boolean;
}

export function createWaiters(deps: WaitersDeps) {
  const idleWaiters: Array<() => void> = [];
  /** settled() callers: `id`'s move and every claim that was out when they asked (seq ≤ upTo) must land. */
  const settledWaiters: Array<{ id: number; upTo: number; resolve: () => void }> = [];

  return {
    /** A claim landed, an attempt started or ended, a slot was given back: answer whoever waits no more. */
    notify(): void {
      if (deps.idle()) for (const f of idleWaiters.splice(0)) f();
      for (let i = settledWaiters.length - 1; i >= 0; i--) {
        const w = settledWaiters[i]!;
        if (!deps.holds(w.id, w.upTo)) {
          settledWaiters.splice(i, 1);
          w.resolve();
        }
      }
    },
    whenIdle(): Promise<void> {
      if (deps.idle()) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    /**
     * Resolves once the claims numbered up to `upTo` have landed and `id`'s store move (if any) has
     * been made. Claims started later are not waited for, so a busy pool that always has one out
     * cannot keep a caller waiting.
     */
    settled(id: number, upTo: number): Promise<void> {
      if (!deps.holds(id, upTo)) return Promise.resolve();
      return new Promise((resolve) => settledWaiters.push({ id, upTo, resolve }));
    },
  };
}

export type Waiters = ReturnType<typeof createWaiters>;
