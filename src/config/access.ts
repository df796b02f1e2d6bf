// access.ts: what the access settings may hold and how they are read: a bearer token (and the file
// that holds it), --allowed-hosts patterns, and which host names only this machine can reach.
// Checking requests against them is the HTTP layer's (http/auth.ts, http/origin.ts), not this file's.
import { readFile } from "node:fs/promises";
import { ConfigError } from "../errors.ts";
import type { Config } from "./config.ts";

/** RFC 6750 b64token characters (base64, base64url and hex tokens all fit), 16 to 4096 of them. */
export const TOKEN_RULE = "16 to 4096 characters from A-Z a-z 0-9 - . _ ~ + / (then = padding)";

export function isValidToken(token: string): boolean {
  return token.length >= 16 && token.length <= 4096 && /^[A-Za-z0-9\-._~+/]+=*$/.test(token);
}

/** 127.0.0.0/8, ::1 and localhost (with its subdomains): names only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return (
    h === "localhost" ||
    h.endsWith(".localhost") ||
    /^127(\.\d{1,3}){3}$/.test(h) ||
    /^::ffff:127(\.\d{1,3}){3}$/.test(h) ||
    /^(0{0,4}:){2,7}0{0,3}1$/.test(h) // ::1 and its longer spellings
  );
}

/** An --allowed-hosts entry: a host name, an IPv4 address or a [bracketed] IPv6 one; `*.` covers subdomains. */
export const ALLOWED_HOST_RULE = "host names such as jobs.example.com or *.example.com (its subdomains), IP addresses, [IPv6]";

export function isAllowedHostPattern(entry: string): boolean {
  return /^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(entry) || /^\[[0-9a-f:.]+\]$/i.test(entry);
}

/** The bearer token: --token, or the trimmed content of --token-file; undefined when neither is set. */
export async function loadToken(config: Config): Promise<string | undefined> {
  if (config.tokenFile === undefined) return config.token;
  const where = `--token-file / JOBQUEUE_TOKEN_FILE ${JSON.stringify(config.tokenFile)}`;
  let text: string;
  try {
    text = await readFile(config.tokenFile, "utf8");
  } catch (err) {
    throw new ConfigError(`${where}: cannot read it (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  const token = text.trim();
  if (!isValidToken(token)) throw new ConfigError(`${where}: expected the file to hold one token of ${TOKEN_RULE}`);
  return token;
}
