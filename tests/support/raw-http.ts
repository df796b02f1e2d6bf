// raw-http.ts (test support): speaks HTTP/1.1 by hand over node:net to a server on this machine,
// for what fetch() cannot send (invalid bytes, lying lengths, malformed requests, slow clients).
import { connect, type Socket } from "node:net";

export interface RawResponse {
  /** The status of the first response, or 0 when the server closed without answering. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Everything the server sent, as latin1 text. */
  raw: string;
  /** The server closed the connection (as opposed to the client giving up waiting). */
  closed: boolean;
}

/** Parses the first response in `raw` (content-length bodies only, which is all we serve). */
export function parseRawResponse(raw: string, closed: boolean): RawResponse {
  // Skip interim 1xx answers (100 Continue) to reach the real one.
  while (/^HTTP\/1\.[01] 1\d\d /.test(raw) && raw.includes("\r\n\r\n")) raw = raw.slice(raw.indexOf("\r\n\r\n") + 4);
  const head = raw.indexOf("\r\n\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  if (match === null || head === -1) return { status: 0, headers: {}, body: "", raw, closed };
  const headers: Record<string, string> = {};
  for (const line of raw.slice(0, head).split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers["content-length"] ?? 0);
  const body = Buffer.from(raw.slice(head + 4), "latin1").subarray(0, length).toString("utf8");
  return { status: Number(match[1]), headers, body, raw, closed };
}

/**
 * Sends `bytes` on one connection and collects what comes back until `enough(raw)` says so, the
 * server closes, or `timeoutMs` passes; `closed` says whether the server closed it.
 */
function collect(port: number, bytes: string | Uint8Array, timeoutMs: number, enough: (raw: string) => boolean): Promise<{ raw: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let raw = "";
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ raw, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on("data", (chunk) => {
      raw += chunk.toString("latin1");
      if (enough(raw)) finish(false);
    });
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
    socket.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes);
  });
}

/**
 * Sends `bytes` and collects the answer until the server closes the connection, the first
 * response is complete (when `untilResponse`), or `timeoutMs` passes.
 */
export async function rawRequest(
  port: number,
  bytes: string | Uint8Array,
  opts: { timeoutMs?: number; untilResponse?: boolean } = {},
): Promise<RawResponse> {
  const { raw, closed } = await collect(port, bytes, opts.timeoutMs ?? 5000, (r) => opts.untilResponse !== false && isComplete(r));
  return parseRawResponse(raw, closed);
}

/** Every complete response in `raw`, in order (content-length bodies only); interim 1xx skipped. */
export function parseRawResponses(raw: string): RawResponse[] {
  const out: RawResponse[] = [];
  while (raw.length > 0) {
    const r = parseRawResponse(raw, false);
    if (r.status === 0 || !isComplete(r.raw)) break;
    const end = r.raw.indexOf("\r\n\r\n") + 4 + Number(r.headers["content-length"] ?? 0);
    out.push({ ...r, raw: r.raw.slice(0, end) });
    raw = r.raw.slice(end);
  }
  return out;
}

/**
 * Sends `bytes` on one connection (several pipelined requests, say) and collects the answers until
 * `count` responses are complete, the server closes, or `timeoutMs` passes.
 */
export async function rawExchange(
  port: number,
  bytes: string | Uint8Array,
  count: number,
  timeoutMs = 10_000,
): Promise<{ responses: RawResponse[]; closed: boolean }> {
  const { raw, closed } = await collect(port, bytes, timeoutMs, (r) => parseRawResponses(r).length >= count);
  return { responses: parseRawResponses(raw), closed };
}

function isComplete(raw: string): boolean {
  const r = parseRawResponse(raw, false);
  if (r.status === 0) return false;
  const head = r.raw.indexOf("\r\n\r\n");
  return r.raw.length - head - 4 >= Number(r.headers["content-length"] ?? 0);
}

/**
 * Opens a connection, writes `opts.prefix` at once, then `bytes` one at a time, `everyMs` apart,
 * until every byte is sent or the server closes the connection. Resolves with how many of `bytes`
 * went out before the close.
 */
export function trickle(
  port: number,
  bytes: string,
  everyMs: number,
  opts: { prefix?: string } = {},
): Promise<{ sent: number; closedByServer: boolean; received: string }> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, "127.0.0.1");
    let sent = 0;
    let received = "";
    let timer: ReturnType<typeof setInterval> | undefined;
    const finish = (closedByServer: boolean) => {
      clearInterval(timer);
      socket.destroy();
      resolve({ sent, closedByServer, received });
    };
    socket.on("data", (chunk) => (received += chunk.toString("latin1")));
    socket.on("close", () => finish(sent < bytes.length || received.length > 0));
    socket.on("error", () => {});
    socket.on("connect", () => {
      if (opts.prefix) socket.write(opts.prefix);
      timer = setInterval(() => {
        if (sent >= bytes.length) return finish(false);
        socket.write(bytes[sent]!);
        sent++;
      }, everyMs);
    });
  });
}
