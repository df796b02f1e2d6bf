// gate.ts: flow control's word, on this node, on which types may start now: the types paused in the
// store, the types the store held back for a while (a rate limit's next token, a key at its limit),
// and the types whose target's breaker is open (pushback.ts). It only remembers and times; the store
// decides (every claim checks again), the claimer asks here before it pops and tells what the store
// held, and the slots turn a shut type into no room.
import type { Clock } from "../clock.ts";
import type { HeldJob } from "../store/rows.ts";

/** How long a type held back without a hint (a key at its limit, a pause seen in a claim) waits before it is tried again. */
export const HOLD_RECHECK_MS = 250;

/** Why a type may not start now. */
export type ShutReason = "paused" | "held" | "breaker_open";

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
  /** Types whose target's breaker is open, until its cool-down ends (ms). */
  const breakerUntil = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let timerAt = Infinity;

  /** Set a timer for the earliest moment a held type opens (one timer for all). */
  function arm(): void {
    let next = Infinity;
    for (const at of waitUntil.values()) next = Math.min(next, at);
    for (const at of breakerUntil.values()) next = Math.min(next, at);
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
      for (const [type, at] of breakerUntil) if (at <= now) breakerUntil.delete(type);
      arm();
      deps.onOpen();
    }, Math.max(0, next - clock()));
  }

  /** Whether `type`'s breaker still keeps it shut (forgets one whose cool-down ended). */
  function breakerShut(type: string): boolean {
    const at = breakerUntil.get(type);
    if (at === undefined) return false;
    if (at > clock()) return true;
    breakerUntil.delete(type);
    return false;
  }

  return {
    /** Whether jobs of `type` may not start now (paused, held back until later, or its breaker open). */
    shut(type: string): boolean {
      if (paused.has(type)) return true;
      if (breakerUntil.size > 0 && breakerShut(type)) return true;
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
    /** Why `type` may not start now, or null when it may. */
    why(type: string): ShutReason | null {
      if (paused.has(type)) return "paused";
      if (breakerShut(type)) return "breaker_open";
      const at = waitUntil.get(type);
      return at !== undefined && at > clock() ? "held" : null;
    },
    /** `type`'s target breaker opened: nothing of it starts until `until` (then onOpen, for its probe). */
    breakerOpen(type: string, until: number): void {
      breakerUntil.set(type, until);
      arm();
    },
    /** `type`'s breaker closed (or half-opened early): it is no longer shut for it. */
    breakerClosed(type: string): void {
      if (!breakerUntil.delete(type)) return;
      arm();
      deps.onOpen();
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
