// errors.ts: every error class the queue throws or hands to a handler, and the constructors of the
// one error that carries an API code and HTTP status. Callers tell errors apart with instanceof,
// never by their name. Anything thrown that is not a JobQueueError or a store fault is an internal
// fault and is never shown to clients.

export class JobQueueError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 503,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "JobQueueError";
  }
}

export const badRequest = (message: string, code = "bad_request") => new JobQueueError(code, message, 400);
export const notFound = (message = "not found") => new JobQueueError("not_found", message, 404);
export const methodNotAllowed = (method: string, path: string, allow: string[]) =>
  new JobQueueError("method_not_allowed", `${method} is not allowed on ${path.length > 200 ? `${path.slice(0, 200)}…` : path}`, 405, { allow: allow.join(", ") });
export const payloadTooLarge = (limit: number) =>
  new JobQueueError("payload_too_large", `request body exceeds ${limit} bytes`, 413);
export const unsupportedMediaType = () =>
  new JobQueueError("unsupported_media_type", "content-type must be application/json", 415);
export const unavailable = (message: string) =>
  new JobQueueError("unavailable", message, 503, { "retry-after": "1" });

// ---- store faults ------------------------------------------------------------------------------
// Each store turns its driver's errors into one of these three at its boundary, so everything above
// it (the HTTP app, the batchers, the worker pool) decides by class what a failure means.

/** A store call that did not take effect because the database could not do any work: unreachable,
 * refusing connections, out of disk, or the store is closing. Retrying later is safe. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }
}

/** A store call whose statement was sent but whose answer never came (the connection dropped, the
 * deadline passed): it may or may not have taken effect. A retry must be idempotent to be safe. */
export class StoreOutcomeUnknownError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreOutcomeUnknownError";
  }
}

/** The database refused a statement for the data it carried (a value it cannot store, a broken
 * constraint): nothing took effect, and sending the same data again fails again. */
export class StoreRejectedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreRejectedError";
  }
}

/** Whether a failed call may be retried in parts: it left nothing behind and may be one member's
 * fault (not an outage that fails everything, nor an outcome nobody knows). */
export const mayRetryApart = (err: unknown): boolean =>
  !(err instanceof StoreUnavailableError || err instanceof StoreOutcomeUnknownError);

/** The embedded store's file is open in another process (or another store in this one). */
export class StoreLockedError extends Error {
  constructor(readonly path: string, options?: { cause?: unknown }) {
    super(`the database ${path} is in use by another jobqueue process (lock held)`, options);
    this.name = "StoreLockedError";
  }
}

/** The store cannot copy itself (PostgreSQL: back it up with pg_dump or its own replication). */
export class BackupUnsupportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackupUnsupportedError";
  }
}

/** A path given as an embedded store's file holds none: it is missing, or not a jobqueue database. */
export class NotAStoreError extends Error {
  constructor(readonly path: string, why: string) {
    super(`${path} is not a jobqueue database: ${why}`);
    this.name = "NotAStoreError";
  }
}

/** move-to-postgres fills only a database that holds no job yet; this one does. */
export class TargetNotEmptyError extends Error {
  constructor(readonly tables: string[]) {
    super(`the PostgreSQL database already holds rows in ${tables.join(", ")}: move-to-postgres fills only a database without jobs (a new one, or one only migrated)`);
    this.name = "TargetNotEmptyError";
  }
}

/** A backup file that did not arrive whole or does not open as the database it should be. */
export class BackupInvalidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackupInvalidError";
  }
}

/** Another live process holds this node id: starting a second one would run its jobs twice. */
export class NodeIdInUseError extends Error {
  constructor(readonly nodeId: string, detail = "") {
    super(`node id ${JSON.stringify(nodeId)} is held by another live jobqueue process${detail}: give this one its own --node-id (JOBQUEUE_NODE_ID), or stop the other`);
    this.name = "NodeIdInUseError";
  }
}

// ---- why an attempt ended early --------------------------------------------------------------
// The reason a handler's AbortSignal carries. Handlers may check them with instanceof too.

/** An operator cancelled the job (DELETE /jobs/:id): the attempt ends in removal, never a retry. */
export class CancelledError extends Error {
  constructor() {
    super("cancelled");
    this.name = "CancelledError";
  }
}

/** The attempt ran past its time limit: a failed attempt, retried with backoff. */
export class AttemptTimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = "TimeoutError";
  }
}

/** The job's lease was taken back (the reaper handed it to another run): nothing of this attempt
 * may be written. */
export class LeaseLostError extends Error {
  constructor() {
    super("lease lost");
    this.name = "LeaseLostError";
  }
}

/** The process is shutting down past its grace period: the job goes back to pending, this attempt
 * not counted. */
export class ShutdownError extends Error {
  constructor() {
    super("shutting down");
    this.name = "ShutdownError";
  }
}

/** A remote worker's lease ran out without a word from it: a failed attempt, retried like a timeout. */
export class LeaseExpiredError extends Error {
  constructor() {
    super("lease expired: the worker neither finished nor sent a heartbeat in time");
    this.name = "LeaseExpiredError";
  }
}

/**
 * What a failed attempt got from its target, for its record: the webhook's HTTP status or the
 * command's exit code, read from the error's own `status` / `exitCode` (a handler may set them too).
 */
export function failureCodes(err: unknown): { status: number | null; exitCode: number | null } {
  const e = err as { status?: unknown; exitCode?: unknown } | null;
  const int = (v: unknown) => (typeof v === "number" && Number.isInteger(v) ? v : null);
  return typeof e === "object" && e !== null ? { status: int(e.status), exitCode: int(e.exitCode) } : { status: null, exitCode: null };
}

/** A remote worker's job that no worker took (or whose worker went away before the answer): back to
 * pending, this attempt not counted. */
export class HandBackError extends Error {
  constructor() {
    super("handed back");
    this.name = "HandBackError";
  }
}

/** A bad setting; its message is one line naming what is wrong and what is accepted. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** An option parser's refusal, naming what it accepts; loadConfig turns it into a ConfigError naming the option. */
export class Expected extends Error {}

/** A handler throws this to fail a job without retrying it (it goes straight to dead_jobs). */
export class PermanentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PermanentError";
  }
}

/**
 * A handler throws this when its target says it is overloaded (HTTP 429 or 503) without saying for
 * how long: an ordinary failed attempt, but it also halves how many of the type's jobs run at once
 * toward that target (src/pool/pushback.ts).
 */
export class TargetBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TargetBusyError";
  }
}

/**
 * A handler throws this when its target asked to be called again later (429/503 with Retry-After):
 * the job waits `delayMs` (at most the type's backoff cap) without using up the attempt, up to the
 * type's max_throttles times; after that it is an ordinary failed attempt.
 */
export class ThrottledError extends TargetBusyError {
  readonly delayMs: number;
  constructor(delayMs: number, message: string) {
    super(message);
    this.name = "ThrottledError";
    this.delayMs = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
  }
}

/**
 * The message of anything thrown, bounded, for logs and last_error. NUL becomes U+FFFD: PostgreSQL
 * text cannot hold it, and one such message would fail every settle in its batch forever.
 */
export function errorMessage(err: unknown, max = 2000): string {
  const raw = err instanceof Error ? err.message || err.name : String(err);
  const text = raw.replaceAll("\u0000", "\uFFFD");
  return text.length > max ? text.slice(0, max) + "…" : text;
}

// ---- the typed client (src/client/) --------------------------------------------------------

/** A non-2xx answer: its HTTP status and the server's error code and message. */
export class JobQueueClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds the server asked to wait (429, 503), when it said. */
    readonly retryAfterS: number | null,
  ) {
    super(message);
    this.name = "JobQueueClientError";
  }
}
