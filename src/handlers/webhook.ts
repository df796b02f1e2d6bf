// webhook.ts: the built-in webhook handler: POST the job to a URL taken from config (never from
// the job), signed when a secret is set; 2xx = done. Any other status, a connection error or the
// abort signal = failed attempt. Never puts the secret or the configured headers in an error.
import { SIGNATURE_HEADER, signatureHeader } from "../signing.ts";
import type { Handler } from "./handler.ts";

export interface WebhookOptions {
  url: string;
  headers?: Record<string, string>;
  /** Signs every delivery (x-jobqueue-signature) with HMAC-SHA256 when set. */
  secret?: string;
  /** Epoch ms; the signature's timestamp. */
  clock?: () => number;
  fetch?: typeof fetch;
}

/** Bytes of a failed response body kept in last_error. */
const ERROR_BODY_LIMIT = 500;

export function createWebhookHandler(opts: WebhookOptions): Handler {
  const doFetch = opts.fetch ?? fetch;
  const clock = opts.clock ?? Date.now;
  const { secret } = opts;
  return async (job, signal) => {
    // The payload is already JSON text: splice it in instead of parsing and re-serialising.
    const body = `{"id":"${job.id}","type":${JSON.stringify(job.type)},"payload":${job.payloadText},"attempt":${job.attempt},"maxAttempts":${job.maxAttempts}}`;
    const headers: Record<string, string> = {
      ...opts.headers,
      "content-type": "application/json",
      "x-job-id": String(job.id),
      "x-job-attempt": String(job.attempt),
    };
    if (secret !== undefined) headers[SIGNATURE_HEADER] = signatureHeader(secret, body, clock() / 1000);
    const res = await doFetch(opts.url, { method: "POST", body, signal, redirect: "manual", headers });
    if (res.status >= 200 && res.status < 300) {
      await res.body?.cancel().catch(() => {});
      return;
    }
    // The receiver's bytes end up in last_error: NUL is not storable in PostgreSQL text (the move
    // would fail on every try), so it and other control characters become U+FFFD.
    const text = (await res.text().catch(() => "")).slice(0, ERROR_BODY_LIMIT).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, "\ufffd");
    throw new Error(`webhook answered ${res.status}${text ? `: ${text}` : ""}`);
  };
}
