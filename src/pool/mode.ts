// mode.ts: the pool's own mode (see pool.ts for the machine), the one function that moves it, and what
// lives with a mode: the back-off timer and its count of failures in a row, when the hard stop began.
// It knows nothing of jobs or slots: the claimer, the stray sweep and stop() ask it and move it.
import { storeRetryMs } from "../queue/backoff.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Clock } from "../clock.ts";

export type PoolMode = "new" | "running" | "backingOff" | "sweeping" | "stopping" | "hardStop";

/** The moves each mode allows; any other is a bug in the pool, and enter() throws. */
const NEXT: Readonly<Record<PoolMode, readonly PoolMode[]>> = {
  new: ["running", "stopping"],
  running: ["backingOff", "sweeping", "stopping"],
  backingOff: ["running", "stopping"],
  sweeping: ["running", "backingOff", "stopping"],
  stopping: ["hardStop"],
  hardStop: [],
};

export interface PoolModeDeps {
  clock: Clock;
  logger: Logger;
  /** A back-off ended (the mode is running again): sweep if owed, claim. */
  onResume: () => void;
}

export function createPoolMode(deps: PoolModeDeps) {
  let mode: PoolMode = "new";
  /** When the current mode was entered. */
  let since = 0;
  /** Store failures in a row (claims, stray sweeps); each back-off waits longer. */
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;

  /** The door: the only place the mode changes. Leaving backingOff ends its timer. */
  function enter(to: PoolMode): void {
    if (!NEXT[mode].includes(to)) throw new Error(`worker pool: no move from ${mode} to ${to}`);
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    mode = to;
    since = deps.clock();
  }

  return {
    get current(): PoolMode {
      return mode;
    },
    /** stop() has begun (stopping or hardStop). */
    get stopping(): boolean {
      return mode === "stopping" || mode === "hardStop";
    },
    /** When the shutdown grace ran out, or null before. */
    get hardStopAt(): number | null {
      return mode === "hardStop" ? since : null;
    },
    enter,
    /**
     * A store call of the claimer or the sweep failed: from running or sweeping, pause claims for
     * longer each time in a row, then go back to running and call onResume. Stopping, or already
     * backing off, it only counts and logs the failure.
     */
    backOff(what: string, err: unknown): void {
      failures++;
      const delay = storeRetryMs(failures);
      if (mode !== "running" && mode !== "sweeping") {
        deps.logger.warn(what, { err: errorMessage(err), mode });
        return;
      }
      deps.logger.warn(`${what}; backing off`, { err: errorMessage(err), delayMs: delay });
      enter("backingOff");
      timer = setTimeout(() => {
        timer = null;
        enter("running");
        deps.onResume();
      }, delay);
    },
    /** A claim or sweep went through: the next failure waits the shortest pause again. */
    storeAnswered(): void {
      failures = 0;
    },
  };
}

export type PoolModeSwitch = ReturnType<typeof createPoolMode>;
