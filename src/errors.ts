// errors.ts: the one error type that carries an API code and HTTP status, and its constructors.
// Anything thrown that is not a JobQueueError is an internal fault and is never shown to clients.

export class JobQueueError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: 400 | 401 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 503,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "JobQueueError";
  }
}

export const badRequest = (message: string, code = "bad_request") => new JobQueueError(code, message, 400);
export const notFound = (message = "not found") => new JobQueueError("not_found", message, 404);
export const methodNotAllowed = (method: string, path: string, allow: string[]) =>
  new JobQueueError("method_not_allowed", `${method} is not allowed on ${path}`, 405, { allow: allow.join(", ") });
export const payloadTooLarge = (limit: number) =>
  new JobQueueError("payload_too_large", `request body exceeds ${limit} bytes`, 413);
export const unsupportedMediaType = () =>
  new JobQueueError("unsupported_media_type", "content-type must be application/json", 415);
export const unavailable = (message: string) =>
  new JobQueueError("unavailable", message, 503, { "retry-after": "1" });

/** A handler throws this to fail a job without retrying it (it goes straight to dead_jobs). */
export class PermanentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PermanentError";
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
