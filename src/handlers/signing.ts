// signing.ts: how webhook deliveries are signed: the Standard Webhooks scheme by default (webhook-id,
// webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<t>.<body>")>, the key being
// the base64 bytes after a secret's whsec_), or, when a type opts in, the older x-jobqueue-signature
// (t=<t>,v1=<hex HMAC-SHA256(secret as written, "<t>.<body>")>); which secrets each accepts, and how
// a receiver of the older scheme checks one. Pure functions: time comes in as an argument; never
// logs, and never puts a secret in an error.
import { createHmac, timingSafeEqual } from "node:crypto";
import { ConfigError } from "../errors.ts";

/** The schemes a webhook type can sign with (`signature = "…"` in the types file). */
export const SIGNATURE_SCHEMES = ["standard", "jobqueue-v1"] as const;
export type SignatureScheme = (typeof SIGNATURE_SCHEMES)[number];
export const DEFAULT_SIGNATURE_SCHEME: SignatureScheme = "standard";

/** The Standard Webhooks headers (https://www.standardwebhooks.com/). */
export const WEBHOOK_ID_HEADER = "webhook-id";
export const WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp";
export const WEBHOOK_SIGNATURE_HEADER = "webhook-signature";
/** The older scheme's one header (signature = "jobqueue-v1"). */
export const SIGNATURE_HEADER = "x-jobqueue-signature";
/** Every header a signature may set: a type's own headers may not set or shadow them. */
export const SIGNING_HEADERS = [WEBHOOK_ID_HEADER, WEBHOOK_TIMESTAMP_HEADER, WEBHOOK_SIGNATURE_HEADER, SIGNATURE_HEADER] as const;

/** How far a signature's timestamp may be from the receiver's clock, by default. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

const STANDARD_PREFIX = "whsec_";
/** Decoded key lengths the Standard Webhooks specification recommends. */
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;

/** What a Standard Webhooks secret must be. */
export const STANDARD_SECRET_RULE = `whsec_ followed by the base64 of ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} random bytes (e.g. "whsec_$(openssl rand -base64 32)")`;
/** What a jobqueue-v1 secret must be: long enough not to be guessed from one signed delivery, one line. */
export const LEGACY_SECRET_RULE = "16 to 4096 printable ASCII characters without spaces";
/** What --webhook-secret must be: either, since each type it signs says which scheme it uses. */
export const ANY_SECRET_RULE = `whsec_<base64 of ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes> (or, for types with signature = "jobqueue-v1", ${LEGACY_SECRET_RULE})`;

/**
 * The HMAC key of a `whsec_<base64>` secret: the decoded bytes after the prefix. Null unless the
 * rest is canonical standard base64 (the alphabet A-Z a-z 0-9 + /, with its = padding, as every
 * Standard Webhooks library decodes it) of 24 to 64 bytes.
 */
export function standardKey(secret: string): Buffer | null {
  if (!secret.startsWith(STANDARD_PREFIX) || secret.length > STANDARD_PREFIX.length + 4 * Math.ceil(MAX_KEY_BYTES / 3)) return null;
  const encoded = secret.slice(STANDARD_PREFIX.length);
  const key = Buffer.from(encoded, "base64");
  // Buffer's decoder skips what it does not know; encoding back shows whether anything was skipped.
  if (key.toString("base64") !== encoded) return null;
  return key.length >= MIN_KEY_BYTES && key.length <= MAX_KEY_BYTES ? key : null;
}

function isLegacySecret(secret: string): boolean {
  return secret.length >= 16 && secret.length <= 4096 && /^[\x21-\x7e]+$/.test(secret);
}

/**
 * Why `secret` cannot sign with `scheme`, as "expected …" text that quotes nothing of it; null when
 * it can. A jobqueue-v1 secret is used as written, so any long enough line will do.
 */
export function secretProblem(scheme: SignatureScheme, secret: string): string | null {
  if (scheme === "jobqueue-v1") return isLegacySecret(secret) ? null : `expected ${LEGACY_SECRET_RULE}`;
  if (standardKey(secret) !== null) return null;
  if (!secret.startsWith(STANDARD_PREFIX)) {
    return `expected ${STANDARD_SECRET_RULE}; a secret of any other form signs only with signature = "jobqueue-v1" (the x-jobqueue-signature header)`;
  }
  return `expected ${STANDARD_SECRET_RULE}: the part after whsec_ is not standard base64 (A-Z a-z 0-9 + / and = padding) of ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes`;
}

/** Whether `secret` can sign with some scheme (a whsec_ secret with "standard", any other with "jobqueue-v1"). */
export function isValidSecret(secret: string): boolean {
  return SIGNATURE_SCHEMES.some((scheme) => secretProblem(scheme, secret) === null);
}

/**
 * The webhook-id of every delivery of job `jobId`: the same on each attempt (and after a dead job is
 * retried), so a receiver can drop a delivery it has already handled.
 */
export function webhookId(jobId: number | string): string {
  return `msg_${jobId}`;
}

/** The Standard Webhooks signature `v1,<base64>` of `body` (the exact bytes sent) by `key`. */
export function standardSignature(key: Uint8Array, msgId: string, timestamp: number, body: string): string {
  return `v1,${createHmac("sha256", key).update(`${msgId}.${timestamp}.${body}`).digest("base64")}`;
}

/** The headers that sign one delivery of job `jobId` whose body is `body`, at `nowSeconds`. */
export type Signer = (jobId: number | string, body: string, nowSeconds: number) => Record<string, string>;

/**
 * A signer for `secret` with `scheme`; the key is worked out once. Throws (saying what a secret
 * must be, never quoting it) when the secret does not suit the scheme.
 */
export function createSigner(scheme: SignatureScheme, secret: string): Signer {
  const problem = secretProblem(scheme, secret);
  if (problem !== null) throw new ConfigError(`webhook secret for signature "${scheme}": ${problem}`);
  if (scheme === "jobqueue-v1") {
    return (_jobId, body, nowSeconds) => ({ [SIGNATURE_HEADER]: signatureHeader(secret, body, nowSeconds) });
  }
  const key = standardKey(secret)!;
  return (jobId, body, nowSeconds) => {
    const id = webhookId(jobId);
    const t = Math.floor(nowSeconds);
    return {
      [WEBHOOK_ID_HEADER]: id,
      [WEBHOOK_TIMESTAMP_HEADER]: String(t),
      [WEBHOOK_SIGNATURE_HEADER]: standardSignature(key, id, t, body),
    };
  };
}

function hmacHex(secret: string, t: number, body: string): string {
  return createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
}

/** The jobqueue-v1 header value for `body` (the exact bytes sent) signed at `nowSeconds`. */
export function signatureHeader(secret: string, body: string, nowSeconds: number): string {
  const t = Math.floor(nowSeconds);
  return `t=${t},v1=${hmacHex(secret, t, body)}`;
}

/**
 * Whether `header` is a valid jobqueue-v1 signature of `body` by `secret`, made within
 * `toleranceSeconds` of `nowSeconds` (either side, so a replayed old delivery is refused). Several
 * `v1=` entries are allowed (any one matching is enough). Never throws: anything malformed is
 * simply false. (Standard Webhooks receivers use their language's library instead.)
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
