// handler.ts: what a job handler is, and the registry that maps job types to handlers and
// their per-type policy. The registry runs nothing itself.
import type { BackoffPolicy } from "../queue/backoff.ts";
import type { FlowPolicy } from "../config/flow-policy.ts";

export interface JobContext {
  id: number;
  type: string;
  /** The payload as stored: JSON text. */
  payloadText: string;
  /** The payload parsed (on first read). */
  readonly payload: unknown;
  /** This attempt's number, 1-based. */
  attempt: number;
  maxAttempts: number;
  priority: number;
  createdAt: number;
  /** The W3C traceparent the job was submitted with, or null: continue the producer's trace from it. */
  traceparent: string | null;
}

/**
 * Resolve = done; throw = failed attempt (retried); throw PermanentError = dead at once. The signal
 * aborts when the attempt is interrupted (timeout, cancel, lost lease, shutdown). A handler declared
 * with exactly one parameter, `(job) => …`, is called without one (none is made for it); declare
 * `(job, signal)` (or take `...args`) to receive it.
 */
export type Handler = (job: JobContext, signal: AbortSignal) => unknown | Promise<unknown>;

export interface TypePolicy {
  timeoutMs: number;
  maxAttempts: number;
  /** Default priority of the type's jobs. */
  priority: number;
  /** Most jobs of this type running at once in this process; unset = only the pool size limits it. */
  concurrency?: number;
  /** Retry backoff for this type; a missing half is the queue's own. */
  backoff?: Partial<BackoffPolicy>;
  /** Rate limits, per-key limits, pushback and breaker settings (docs/configuration.md). */
  flow?: FlowPolicy;
  /** Jobs wait for remote workers that ask for them (POST /claim); the handler is never called. */
  pull?: boolean;
}

export interface RegisteredType extends TypePolicy {
  handler: Handler;
}

export interface HandlerRegistry {
  /** Goes up with every replaceAll(): readers that cache what they derive from the registry compare it. */
  readonly version: number;
  register(type: string, handler: Handler, policy?: Partial<TypePolicy>): void;
  /**
   * Take `next`'s types in place of these (a reload of the types file): jobs of a type it adds,
   * changes or drops start under the new rules from now on; attempts running keep what they had.
   */
  replaceAll(next: HandlerRegistry): void;
  /** A type whose jobs remote workers pull over HTTP (POST /claim) instead of a handler here. */
  registerPull(type: string, policy?: Partial<TypePolicy>): void;
  get(type: string): RegisteredType | undefined;
  types(): string[];
}

/** A pull type's handler, which the pool never calls (remote.ts runs its jobs). */
function pulledHere(): never {
  throw new Error("a pull type's job reached a local handler");
}

export function createHandlerRegistry(defaults: TypePolicy): HandlerRegistry {
  const byType = new Map<string, RegisteredType>();
  let version = 0;
  return {
    get version() {
      return version;
    },
    replaceAll(next) {
      byType.clear();
      for (const type of next.types()) byType.set(type, next.get(type)!);
      version++;
    },
    register(type, handler, policy = {}) {
      if (byType.has(type)) throw new Error(`job type "${type}" is registered twice`);
      byType.set(type, { ...defaults, ...policy, handler });
    },
    registerPull(type, policy = {}) {
      this.register(type, pulledHere, { ...policy, pull: true });
    },
    get: (type) => byType.get(type),
    types: () => [...byType.keys()].sort(),
  };
}

/** A JobContext whose payload is parsed on first read (a class: one allocation per attempt, no spread). */
class LazyJobContext implements JobContext {
  readonly id: number;
  readonly type: string;
  readonly payloadText: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly priority: number;
  readonly createdAt: number;
  readonly traceparent: string | null;
  #parsed: { value: unknown } | null = null;

  constructor(j: ContextFields) {
    this.id = j.id;
    this.type = j.type;
    this.payloadText = j.payloadText;
    this.attempt = j.attempt;
    this.maxAttempts = j.maxAttempts;
    this.priority = j.priority;
    this.createdAt = j.createdAt;
    this.traceparent = j.traceparent ?? null;
  }

  get payload(): unknown {
    this.#parsed ??= { value: JSON.parse(this.payloadText) };
    return this.#parsed.value;
  }

  /** What JSON.stringify(ctx) shows (the getter lives on the prototype). */
  toJSON(): Record<string, unknown> {
    return {
      id: this.id, type: this.type, payload: this.payload, payloadText: this.payloadText, attempt: this.attempt,
      maxAttempts: this.maxAttempts, priority: this.priority, createdAt: this.createdAt, traceparent: this.traceparent,
    };
  }
}

/** What a JobContext is made from (no trace context: null). */
type ContextFields = Omit<JobContext, "payload" | "traceparent"> & { traceparent?: string | null };

export function jobContext(j: ContextFields): JobContext {
  return new LazyJobContext(j);
}
