// edge.ts: what every request passes before the gates and the app: a URL the router can read even
// when the Host header is missing or malformed, and a declared body within --body-limit-bytes on
// every route. Bodies of unknown length are counted by the routes that read them (only /submit).
import { payloadTooLarge } from "../errors.ts";
import type { FetchHandler } from "./auth.ts";
import { jsonError } from "./json-error.ts";

/**
 * Stands in for the origin of a request Bun could not give one (HTTP/1.0 without Host, or a Host
 * that is not a host name): the request keeps its headers, so the host gate still sees what came.
 */
const NO_ORIGIN = "http://invalid.invalid";

export function edgeGate(opts: { bodyLimitBytes: number; fetch: FetchHandler }): FetchHandler {
  const { bodyLimitBytes, fetch } = opts;
  return (req, ...rest) => {
    // A declared length over the limit is refused before a byte of the body is read; Bun then
    // discards the body and keeps the connection for the next request.
    if (Number(req.headers.get("content-length")) > bodyLimitBytes) {
      const err = payloadTooLarge(bodyLimitBytes);
      return jsonError(err.status, err.code, err.message);
    }
    // Bun hands such requests over with a bare path as their URL, which the router would misread.
    if (req.url.startsWith("/")) return fetch(new Request(NO_ORIGIN + req.url, req), ...rest);
    return fetch(req, ...rest);
  };
}
