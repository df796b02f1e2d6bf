// errors.ts (http): what a client is told about a failure: JobQueueError and Hono's HTTPException as
// they are, a store fault as a 503 (or, for data the database refused, a 400) that says whether
// anything took effect, and anything else as a bare 500 logged with its stack. One JSON envelope.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { JobQueueError, StoreOutcomeUnknownError, StoreRejectedError, StoreUnavailableError, errorMessage } from "../errors.ts";
import type { Logger } from "../logger.ts";

const CODE_FOR_STATUS: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "too_many_requests",
  503: "unavailable",
};

/** What a client is told about a failure; a JobQueueError is one as it stands. */
interface PublicError {
  status: ContentfulStatusCode;
  code: string;
  message: string;
  headers: Record<string, string>;
}

/** Seconds a client is told to wait after a store fault. */
const STORE_RETRY_AFTER_S = "1";

/**
 * JobQueueError and HTTPException as they are; a store fault as a 503 (or, for data the database
 * refused, a 400) that says whether anything took effect; anything else is logged and becomes a bare 500.
 */
export function toPublicError(err: unknown, c: Context, logger: Logger): PublicError {
  if (err instanceof JobQueueError) return err;
  const retry = { "retry-after": STORE_RETRY_AFTER_S };
  const reading = c.req.method === "GET" || c.req.method === "HEAD";
  if (err instanceof StoreUnavailableError || (reading && err instanceof StoreOutcomeUnknownError)) {
    logger.warn("request failed: store unavailable", { method: c.req.method, path: c.req.path, err: errorMessage(err) });
    const message = reading ? "the job store is unavailable; retry later" : "the job store is unavailable; nothing was changed, retry later";
    return { status: 503, code: "unavailable", message, headers: retry };
  }
  if (err instanceof StoreOutcomeUnknownError) {
    logger.warn("request outcome unknown: the store did not answer", { method: c.req.method, path: c.req.path, err: errorMessage(err) });
    return {
      status: 503, code: "outcome_unknown", headers: retry,
      message: "the job store did not confirm the change: it may or may not have taken effect. Retry; a submit with an idempotencyKey is safe to retry",
    };
  }
  if (err instanceof StoreRejectedError) {
    logger.warn("request refused by the store", { method: c.req.method, path: c.req.path, err: errorMessage(err) });
    return { status: 400, code: "invalid_request", message: "the job store refused the request's data; nothing was changed", headers: {} };
  }
  if (err instanceof HTTPException) {
    const code = CODE_FOR_STATUS[err.status] ?? (err.status >= 500 ? "internal" : "bad_request");
    return { status: err.status, code, message: err.message || code.replaceAll("_", " "), headers: {} };
  }
  logger.error("request failed", {
    err: err instanceof Error ? err : String(err),
    method: c.req.method,
    path: c.req.path,
  });
  return { status: 500, code: "internal", message: "internal error", headers: {} };
}

export function errorResponse(c: Context, err: PublicError): Response {
  return c.json({ error: { code: err.code, message: err.message } }, err.status, err.headers);
}
