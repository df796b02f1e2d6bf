// origin.ts: keeps other web pages out, token or not. A request that changes state (POST, PUT,
// PATCH, DELETE) may not come from another origin, nor carry a body a browser sends cross-site
// without asking first (anything but JSON). Without a token, the Host must also be a loopback name
// or one of --allowed-hosts (else a DNS-rebinding name reaches the API); /health and /ready stay
// open for probes. Never echoes a header it could not show safely.
import { getPath } from "hono/utils/url";
import { isLoopbackHost } from "../config/access.ts";
import type { FetchHandler } from "./auth.ts";
import { jsonError } from "./json-error.ts";

export const STATE_CHANGING: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Orchestrators probe by pod IP or any name: these answer whatever the Host. */
export const ANY_HOST: ReadonlySet<string> = new Set(["/health", "/ready"]);

/** A Host header split into its name (lower case, no brackets, no trailing dot) and port; null when malformed. */
function parseHost(header: string): { name: string; port: number | null } | null {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(header);
  if (m === null) return null;
  const name = m[1]!.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
  return { name, port: m[2] === undefined ? null : Number(m[2]) };
}

function hostAllowed(header: string | null, allowed: readonly string[]): boolean {
  const host = header === null ? null : parseHost(header);
  if (host === null) return false;
  if (isLoopbackHost(host.name)) return true;
  return allowed.some((entry) => {
    const e = entry.toLowerCase().replace(/^\[(.*)\]$/, "$1");
    return e.startsWith("*.") ? host.name.endsWith(e.slice(1)) && host.name.length > e.length - 1 : host.name === e;
  });
}

/** Whether `origin` (an Origin header) names the same host and port the request was sent to. */
function sameOrigin(origin: string, hostHeader: string | null): boolean {
  const host = hostHeader === null ? null : parseHost(hostHeader);
  if (host === null || origin === "null") return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  const defaultPort = url.protocol === "https:" ? 443 : 80;
  const name = url.hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
  return name === host.name && (url.port === "" ? defaultPort : Number(url.port)) === (host.port ?? defaultPort);
}

/** A header value fit to quote in an answer: printable ASCII, not too long; else nothing. */
function quoted(value: string | null): string {
  return value !== null && /^[\x21-\x7e]{1,200}$/.test(value) ? ` ${JSON.stringify(value)}` : "";
}

export interface OriginGateOptions {
  /** The bearer token; when unset, the Host must be loopback or allowed. */
  token: string | undefined;
  /** Host names (or *.suffix patterns) served without a token besides loopback ones. */
  allowedHosts: readonly string[];
  fetch: FetchHandler;
}

export function originGate(opts: OriginGateOptions): FetchHandler {
  const { fetch, allowedHosts } = opts;
  const checkHost = opts.token === undefined;
  return (req, ...rest) => {
    const host = req.headers.get("host");
    if (checkHost && !hostAllowed(host, allowedHosts) && !ANY_HOST.has(getPath(req))) {
      return jsonError(403, "forbidden_host",
        `requests for host${quoted(host)} are refused while no token is set (a web page could reach this server through a name of its own): ` +
        "set a token (JOBQUEUE_TOKEN or --token-file), or add the host to --allowed-hosts / JOBQUEUE_ALLOWED_HOSTS");
    }
    if (!STATE_CHANGING.has(req.method)) return fetch(req, ...rest);
    const origin = req.headers.get("origin");
    if (origin !== null && !sameOrigin(origin, host)) {
      return jsonError(403, "forbidden_origin",
        `a request from another web page (Origin${quoted(origin)}) may not change anything here: ` +
        "send it without an Origin header (a program or the command line), or from a page this server serves");
    }
    const contentType = req.headers.get("content-type");
    const hasBody = (req.headers.get("content-length") ?? "0") !== "0" || req.headers.has("transfer-encoding");
    if ((contentType !== null || hasBody) && mediaType(contentType) !== "application/json") {
      return jsonError(415, "unsupported_media_type",
        "a request that changes state may carry only an application/json body (forms and text/plain are what other web pages can send unasked); send JSON, or no body and no content-type");
    }
    return fetch(req, ...rest);
  };
}

function mediaType(contentType: string | null): string | undefined {
  return contentType?.split(";")[0]?.trim().toLowerCase();
}
