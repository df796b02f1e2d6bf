// pushback.ts: how hard this node pushes each type's target, learnt from how the target answers:
// adaptive concurrency (AIMD: an overloaded answer or a timeout halves it, a success adds one) and
// the breaker (failures in a row stop the type for a cool-down, then one probe decides). Per type: a
// webhook type has one target host, so per type is per (type, host). Per node: it protects the
// target from this node and needs no store. It only counts and decides room; the gate shuts an open
// breaker's type, the slots turn the rest into room.
import { AttemptTimeoutError, PermanentError, TargetBusyError } from "../errors.ts";
import type { HandlerRegistry } from "../handlers/handler.ts";
import type { Logger } from "../logger.ts";
import type { Clock } from "../clock.ts";
import type { Gate } from "./gate.ts";

export type BreakerState = "closed" | "open" | "half_open";

/** What flow control on this node says of a type now (GET /types shows it). */
export interface FlowStatus {
  /** Most of its jobs this node runs at once now (AIMD), at most its concurrency or the pool size. */
  effectiveConcurrency: number;
  breaker: BreakerState;
  /** When an open breaker lets its probe through (ISO 8601). */
  breakerOpenUntil?: string;
}

/** How an attempt ended, as far as its target is concerned. */
export interface Answer {
  ok: boolean;
  /** What ended a failed attempt (its error), or null. */
  cause: unknown;
  /** When the attempt started (ms): an overloaded answer to an attempt sent before the last cut cuts no further. */
  startedAt: number;
}

export interface PushbackDeps {
  clock: Clock;
  registry: Pick<HandlerRegistry, "get">;
  /** Slots in the pool: a type's concurrency when it sets none. */
  poolSize: number;
  gate: Pick<Gate, "breakerOpen" | "breakerClosed">;
  /** A type may run more at once than before (its concurrency rose, its breaker closed): claim more. */
  onRoom: () => void;
  logger: Logger;
}

interface Target {
  /** The type's own limit: its concurrency, or the pool size. */
  limit: number;
  effective: number;
  /** When concurrency was last cut (ms); attempts started before it cut no further. */
  cutAt: number;
  breaker: BreakerState;
  /** Failed attempts in a row since the last success (counted while closed). */
  failures: number;
  openUntil: number;
}

export function createPushback(deps: PushbackDeps) {
  const { clock, registry, logger } = deps;
  const targets = new Map<string, Target>();

  function limitOf(type: string): number {
    return Math.max(1, Math.min(deps.poolSize, registry.get(type)?.concurrency ?? deps.poolSize));
  }

  /** The type's state, created on first use; an open breaker whose cool-down passed reads half-open. */
  function target(type: string): Target {
    let t = targets.get(type);
    if (t === undefined) {
      const limit = limitOf(type);
      t = { limit, effective: limit, cutAt: -Infinity, breaker: "closed", failures: 0, openUntil: 0 };
      targets.set(type, t);
    }
    if (t.breaker === "open" && clock() >= t.openUntil) t.breaker = "half_open";
    return t;
  }

  function open(type: string, t: Target, coolMs: number): void {
    t.breaker = "open";
    t.openUntil = clock() + coolMs;
    logger.warn("breaker open: no jobs of this type start until its cool-down ends, then one probe", {
      type, failures: t.failures, coolMs,
    });
    deps.gate.breakerOpen(type, t.openUntil);
  }

  return {
    /** An attempt of `type` ended (not by a cancel, a lost lease or a shutdown): learn from its answer. */
    observe(type: string, answer: Answer): void {
      // A success toward a target that never pushed back changes nothing: keep the common path free.
      if (answer.ok && !targets.has(type)) return;
      const t = target(type);
      // AIMD: the target said it is overloaded (429/503) or did not answer in time.
      const busy = !answer.ok && (answer.cause instanceof TargetBusyError || answer.cause instanceof AttemptTimeoutError);
      if (answer.ok && t.effective < t.limit) {
        t.effective++;
        deps.onRoom();
      } else if (busy && answer.startedAt > t.cutAt && t.effective > 1) {
        // One cut per round: attempts already out when it was cut answer to the old level.
        t.effective = Math.max(1, Math.floor(t.effective / 2));
        t.cutAt = clock();
      }
      const breaker = registry.get(type)?.flow?.breaker;
      if (breaker === undefined) return;
      // A PermanentError is the handler's verdict on the job, not on its target.
      const failed = !answer.ok && !(answer.cause instanceof PermanentError);
      if (!failed) {
        if (!answer.ok) return;
        t.failures = 0;
        if (t.breaker !== "closed") {
          t.breaker = "closed";
          logger.info("breaker closed: the probe succeeded", { type });
          deps.gate.breakerClosed(type);
          deps.onRoom();
        }
        return;
      }
      if (t.breaker === "half_open") open(type, t, breaker.coolMs);
      else if (t.breaker === "closed" && ++t.failures >= breaker.failures) open(type, t, breaker.coolMs);
      // While open, answers of attempts sent before it opened change nothing.
    },
    /**
     * How many more jobs of `type` may start, given `occupied` of them claimed or running here; undefined
     * when pushback limits it no more than its own concurrency (the slots' fast path).
     */
    roomFor(type: string, occupied: number): number | undefined {
      if (!targets.has(type)) return undefined;
      const t = target(type);
      // Half-open: one job goes as the probe; none while anything sent before is still out.
      if (t.breaker === "half_open") return Math.max(0, 1 - occupied);
      if (t.breaker === "open") return 0;
      return t.effective < t.limit ? t.effective - occupied : undefined;
    },
    /** Whether pushback holds `type` below its own limit now (a freed slot then is room worth telling). */
    limited(type: string): boolean {
      const t = targets.get(type);
      return t !== undefined && (t.effective < t.limit || t.breaker !== "closed");
    },
    status(type: string): FlowStatus {
      const t = targets.get(type) === undefined ? null : target(type);
      if (t === null) return { effectiveConcurrency: limitOf(type), breaker: "closed" };
      return {
        effectiveConcurrency: t.effective,
        breaker: t.breaker,
        ...(t.breaker === "open" && { breakerOpenUntil: new Date(t.openUntil).toISOString() }),
      };
    },
  };
}

export type Pushback = ReturnType<typeof createPushback>;
