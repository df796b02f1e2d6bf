// signing.ts: the webhook signature (Stripe style): `t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
// "<t>.<body>")>` in the x-jobqueue-signature header, how to make one and how a receiver checks one.
// Pure functions: time comes in as an argument; never logs, and never puts a secret in an error.
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "x-jobqueue-signature";
/** How far a signature's timestamp may be from the receiver's clock, by default. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** What a signing secret must be: long enough not to be guessed from one signed delivery, one line. */
export const SECRET_RULE = "16 to 4096 printable ASCII characters without spaces";

export function isValidSecret(secret: string): boolean {
  return secret.length >= 16 && secret.length <= 4096 && /^[\x21-\x7e]+$/.test(secret);
}

function hmacHex(secret: string, t: number, body: string): string {
  return createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
}

/** The header value for `body` (the exact bytes sent) signed at `nowSeconds`. */
export function signatureHeader(secret: string, body: string, nowSeconds: number): string {
  const t = Math.floor(nowSeconds);
  return `t=${t},v1=${hmacHex(secret, t, body)}`;
}

/**
 * Whether `header` is a valid signature of `body` by `secret`, made within `toleranceSeconds` of
 * `nowSeconds` (either side, so a replayed old delivery is refused). Several `v1=` entries are
 * allowed (any one matching is enough). Never throws: anything malformed is simply false.
 */
export function verifySignature(
  secret: string,
  header: string | null | undefined,
  body: string,
  nowSeconds: number,
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
): boolean {
  if (typeof header !== "string" || header.length > 4096) return false;
  let t: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t") {
      if (t !== undefined || !/^\d{1,12}$/.test(value)) return false;
      t = Number(value);
    } else if (key === "v1") {
      candidates.push(value);
    }
  }
  if (t === undefined || candidates.length === 0) return false;
  if (!(Math.abs(nowSeconds - t) <= toleranceSeconds)) return false;
  const expected = Buffer.from(hmacHex(secret, t, body), "utf8");
  let ok = false;
  for (const candidate of candidates) {
    const given = Buffer.from(candidate, "utf8");
    // Lengths are public (a SHA-256 hex digest is always 64 characters); the bytes are compared
    // in constant time, and every candidate is checked so the answer's timing says nothing more.
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
  }
  return ok;
}
