// gate.ts: flow control's word, on this node, on which types may start now: the types paused in the
// store, and the types the store held back for a while (a rate limit's next token, a key at its
// limit). It only remembers and times; the store decides (every claim checks again), the claimer
// asks here before it pops and tells what the store held, and the slots turn a shut type into no room.
import type { Clock } from "../clock.ts";
import type { HeldJob } from "../store/rows.ts";

/** How long a type held back without a hint (a key at its limit, a pause seen in a claim) waits before it is tried again. */
export const HOLD_RECHECK_MS = 250;

export interface GateDeps {
  clock: Clock;
  /** A type the gate shut is open again: the claimer should pump. */
  onOpen: () => void;
}

export function createGate(deps: GateDeps) {
  const { clock } = deps;
  /** Types paused in the store, as last read. */
  let paused = new Set<string>();
  /** Types held back until a moment (ms). */
  const waitUntil = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let timerAt = Infinity;

  /** Set a timer for the earliest moment a held type opens (one timer for all). */
  function arm(): void {
    let next = Infinity;
    for (const at of waitUntil.values()) next = Math.min(next, at);
    if (next === timerAt && timer) return;
    if (timer) clearTimeout(timer);
    timer = null;
    timerAt = next;
    if (next === Infinity) return;
    timer = setTimeout(() => {
      timer = null;
      timerAt = Infinity;
      const now = clock();
      for (const [type, at] of waitUntil) if (at <= now) waitUntil.delete(type);
      arm();
      deps.onOpen();
    }, Math.max(0, next - clock()));
  }

  return {
    /** Whether jobs of `type` may not start now (paused, or held back until later). */
    shut(type: string): boolean {
      if (paused.has(type)) return true;
      const at = waitUntil.get(type);
      if (at === undefined) return false;
      if (at > clock()) return true;
      waitUntil.delete(type);
      return false;
    },
    /** The store held these jobs back: shut their types until they may be tried again. */
    held(jobs: readonly HeldJob[]): void {
      const now = clock();
      for (const h of jobs) {
        const until = now + (h.retryInMs ?? HOLD_RECHECK_MS);
        if (h.reason === "paused") paused.add(h.type);
        else waitUntil.set(h.type, Math.max(waitUntil.get(h.type) ?? 0, until));
      }
      arm();
    },
    /** The types paused in the store now (read each maintenance tick and when told of a change). */
    setPaused(types: Iterable<string>): void {
      const next = new Set(types);
      const opened = [...paused].some((t) => !next.has(t));
      paused = next;
      if (opened) deps.onOpen();
    },
    get paused(): ReadonlySet<string> {
      return paused;
    },
    stop(): void {
      if (timer) clearTimeout(timer);
      timer = null;
      timerAt = Infinity;
    },
  };
}

export type Gate = ReturnType<typeof createGate>;
