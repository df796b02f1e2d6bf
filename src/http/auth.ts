// auth.ts: the bearer-token gate in front of the HTTP app: which paths are open, the constant-time
// check and the 401 answer (what a token may look like is config/access.ts's). Never logs or echoes a token.
import { createHash, timingSafeEqual } from "node:crypto";
import { getPath } from "hono/utils/url";
import { jsonError } from "./json-error.ts";

/**
 * Probes stay open so orchestrators need no secret, and so do two pages that hold no data: the
 * dashboard (/ui), whose own fetches carry the token, and the API's description (/openapi.json),
 * so client generators can read it. Everything else needs the token (the OpenAPI document says
 * which operations need it from this set).
 */
export const ALWAYS_OPEN: ReadonlySet<string> = new Set(["/health", "/ready", "/ui", "/openapi.json"]);

export type FetchHandler = (req: Request, ...rest: never[]) => Response | Promise<Response>;

export interface BearerGateOptions {
  /** The token every request must carry; undefined turns the gate off. */
  token: string | undefined;
  /** Serve /metrics without the token (for scrapers on a trusted network). */
  metricsPublic: boolean;
  /** The app behind the gate. */
  fetch: FetchHandler;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest();

/**
 * Wraps `fetch` so that, when a token is set, every request except those for ALWAYS_OPEN paths
 * (and /metrics when public) must send `Authorization: Bearer <token>`; others get a 401
 * JSON error with `WWW-Authenticate: Bearer`. The path is read exactly as the router reads it, so
 * the gate and the routes can never disagree about which endpoint a request is for.
 */
export function bearerGate(opts: BearerGateOptions): FetchHandler {
  const { token, fetch } = opts;
  if (token === undefined) return fetch;
  const expected = sha256(token);
  const open = new Set(ALWAYS_OPEN);
  if (opts.metricsPublic) open.add("/metrics");

  return (req, ...rest) => {
    if (open.has(getPath(req)) || carriesToken(req.headers.get("authorization"), expected)) {
      return fetch(req, ...rest);
    }
    return unauthorized();
  };
}

/** Compares digests of equal length in constant time, so neither length nor content leaks. */
function carriesToken(header: string | null, expected: Buffer): boolean {
  if (header === null) return false;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (match === null) return false;
  return timingSafeEqual(sha256(match[1]!), expected);
}

function unauthorized(): Response {
  return jsonError(401, "unauthorized", "a valid bearer token is required (Authorization: Bearer <token>)", {
    "www-authenticate": 'Bearer realm="jobqueue"',
  });
}
