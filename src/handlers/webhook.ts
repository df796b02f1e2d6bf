// webhook.ts: the built-in webhook handler: POST the job to a URL taken from config (never from
// the job), 2xx = done. Any other status, a connection error or the abort signal = failed attempt.
import type { Handler } from "./handler.ts";

export interface WebhookOptions {
  url: string;
  headers?: Record<string, string>;
  fetch?: typeof fetch;
}

/** Bytes of a failed response body kept in last_error. */
const ERROR_BODY_LIMIT = 500;

export function createWebhookHandler(opts: WebhookOptions): Handler {
  const doFetch = opts.fetch ?? fetch;
  return async (job, signal) => {
    // The payload is already JSON text: splice it in instead of parsing and re-serialising.
    const body = `{"id":"${job.id}","type":${JSON.stringify(job.type)},"payload":${job.payloadText},"attempt":${job.attempt},"maxAttempts":${job.maxAttempts}}`;
    const res = await doFetch(opts.url, {
      method: "POST",
      body,
      signal,
      redirect: "manual",
      headers: {
        ...opts.headers,
        "content-type": "application/json",
        "x-job-id": String(job.id),
        "x-job-attempt": String(job.attempt),
      },
    });
    if (res.status >= 200 && res.status < 300) {
      await res.body?.cancel().catch(() => {});
      return;
    }
    const text = (await res.text().catch(() => "")).slice(0, ERROR_BODY_LIMIT);
    throw new Error(`webhook answered ${res.status}${text ? `: ${text}` : ""}`);
  };
}
