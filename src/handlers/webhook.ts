// webhook.ts: the built-in webhook handler: POST the job to a URL from config (never from the job),
// signed when a secret is set (Standard Webhooks headers, or x-jobqueue-signature when the type opts
// in); 2xx = done, 429/503 = pushback (ThrottledError with a usable Retry-After, else
// TargetBusyError), anything else = failed attempt. Never puts the secret or headers in an error.
import { TargetBusyError, ThrottledError } from "../errors.ts";
import { retryAfterMs } from "./retry-after.ts";
import { DEFAULT_SIGNATURE_SCHEME, createSigner, type SignatureScheme } from "./signing.ts";
import type { Handler } from "./handler.ts";
import type { Clock } from "../clock.ts";
import pkg from "../../package.json" with { type: "json" };

/** Who calls: receivers see it in their logs (a types file's own User-Agent header wins). */
export const USER_AGENT = `jobqueue/${pkg.version}`;

export interface WebhookOptions {
  url: string;
  headers?: Record<string, string>;
  /** Signs every delivery with HMAC-SHA256 when set; it must suit `signature` (see signing.ts). */
  secret?: string;
  /** How deliveries are signed: Standard Webhooks ("standard", the default) or x-jobqueue-signature ("jobqueue-v1"). */
  signature?: SignatureScheme;
  /** Epoch ms; the signature's timestamp. */
  clock?: Clock;
  fetch?: typeof fetch;
}

/** Bytes of a failed response body kept in last_error. */
export const ERROR_BODY_LIMIT = 500;

export function createWebhookHandler(opts: WebhookOptions): Handler {
  const doFetch = opts.fetch ?? fetch;
  const clock = opts.clock ?? Date.now;
  // Made once, so a secret that does not suit the scheme fails here rather than on every delivery.
  const sign = opts.secret === undefined ? undefined : createSigner(opts.signature ?? DEFAULT_SIGNATURE_SCHEME, opts.secret);
  // A configured User-Agent (any spelling of the name) replaces ours rather than joining it.
  const ownAgent: Record<string, string> = Object.keys(opts.headers ?? {}).some((name) => name.toLowerCase() === "user-agent") ? {} : { "user-agent": USER_AGENT };
  return async (job, signal) => {
    // The payload is already JSON text: splice it in instead of parsing and re-serialising.
    const body = `{"id":"${job.id}","type":${JSON.stringify(job.type)},"payload":${job.payloadText},"attempt":${job.attempt},"maxAttempts":${job.maxAttempts}}`;
    const headers: Record<string, string> = {
      ...ownAgent,
      ...opts.headers,
      "content-type": "application/json",
      "x-job-id": String(job.id),
      "x-job-attempt": String(job.attempt),
      // The producer's trace continues in the receiver (W3C trace context).
      ...(job.traceparent !== null && { traceparent: job.traceparent }),
    };
    // Signed afresh on every attempt (a new timestamp); the Standard Webhooks id stays the job's.
    if (sign !== undefined) Object.assign(headers, sign(job.id, body, clock() / 1000));
    const res = await doFetch(opts.url, { method: "POST", body, signal, redirect: "manual", headers });
    if (res.status >= 200 && res.status < 300) {
      await res.body?.cancel().catch(() => {});
      return;
    }
    // The receiver's bytes end up in last_error: NUL is not storable in PostgreSQL text (the move
    // would fail on every try), so it and other control characters become U+FFFD.
    const text = (await readStart(res.body, ERROR_BODY_LIMIT)).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, "\ufffd");
    const message = `webhook answered ${res.status}${text ? `: ${text}` : ""}`;
    if (res.status === 429 || res.status === 503) {
      const delayMs = retryAfterMs(res.headers.get("retry-after"), clock());
      const busy = delayMs === null ? new TargetBusyError(message) : new ThrottledError(delayMs, message);
      throw Object.assign(busy, { status: res.status });
    }
    // The status rides on the error into the attempt's record (errors.ts failureCodes).
    throw Object.assign(new Error(message), { status: res.status });
  };
}

/**
 * The first `limit` bytes of a body as text (a character cut at the end is dropped), reading no
 * more than the chunk that passes the limit, then cancelling the rest: an answer of any size, or
 * one that never ends, costs one chunk. A body that fails midway keeps what arrived.
 */
async function readStart(body: ReadableStream<Uint8Array> | null, limit: number): Promise<string> {
  if (body === null) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // Cut off (the attempt's signal, a reset): what arrived is the answer.
  } finally {
    reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(Buffer.concat(chunks, size).subarray(0, limit), { stream: true });
}
