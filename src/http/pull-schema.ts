// pull-schema.ts: the shapes of the pull-worker API (POST /claim, /jobs/:id/complete, /fail,
// /heartbeat) as zod schemas: the routes validate with them and the OpenAPI document is generated
// from them. No routes here.
import { z } from "zod";
import { typeName } from "./api-schema.ts";

/** Most jobs one POST /claim answers with. */
export const CLAIM_MAX = 100;
/** Longest a POST /claim waits for its first job. */
export const CLAIM_WAIT_MAX_MS = 30_000;
/** The bounds of a lease a worker asks for (POST /claim leaseMs, heartbeat extendMs). */
export const LEASE_MIN_MS = 1000;
export const LEASE_MAX_MS = 3_600_000;
/** Longest error text a worker's fail keeps (longer is cut). */
export const FAIL_ERROR_MAX = 4096;

const int = (min: number, max: number) => {
  const error = `expected an integer from ${min} to ${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
};
const leaseToken = z
  .string({ error: "expected the leaseToken from POST /claim" })
  .min(1, { error: "expected the leaseToken from POST /claim" })
  .max(1024, { error: "expected the leaseToken from POST /claim" })
  .meta({ description: "the job's leaseToken from POST /claim: it names the claim (job and attempt) the move is for" });
const leaseMs = int(LEASE_MIN_MS, LEASE_MAX_MS);

export const claimRequest = z
  .strictObject({
    types: z.array(typeName, { error: "expected an array of pull job types" })
      .min(1, { error: "expected at least one job type" })
      .max(100, { error: "expected at most 100 job types" })
      .meta({ description: "job types (each configured with pull = true) this worker runs" }),
    max: int(1, CLAIM_MAX).optional().meta({ description: `most jobs in the answer, 1 to ${CLAIM_MAX} (default 1)` }),
    waitMs: int(0, CLAIM_WAIT_MAX_MS).optional()
      .meta({ description: `how long to wait for a first job, 0 to ${CLAIM_WAIT_MAX_MS} ms (default 0: answer with the jobs ready now, or none)` }),
    leaseMs: leaseMs.optional()
      .meta({ description: `each job's lease from the answer on, ${LEASE_MIN_MS} to ${LEASE_MAX_MS} ms (default: the server's --lease-ms)` }),
  })
  .meta({ id: "ClaimRequest" });

export const completeRequest = z
  .strictObject({
    leaseToken,
    result: z.unknown().optional()
      .meta({ description: "kept with the completed record under --keep-completed: a string as it is, anything else as JSON text (at most 4096 bytes)" }),
  })
  .meta({ id: "CompleteRequest" });

export const failRequest = z
  .strictObject({
    leaseToken,
    error: z.string({ error: "expected an error message string" }).meta({ description: `what went wrong (kept as the job's lastError, cut at ${FAIL_ERROR_MAX} characters)` }),
    retry: z.boolean({ error: "expected true or false" }).optional()
      .meta({ description: "false: dead-letter the job now; otherwise it is retried with backoff while attempts are left" }),
  })
  .meta({ id: "FailRequest" });

export const heartbeatRequest = z
  .strictObject({
    leaseToken,
    extendMs: leaseMs.optional().meta({ description: `the lease runs this long from now, ${LEASE_MIN_MS} to ${LEASE_MAX_MS} ms (default: the server's --lease-ms)` }),
  })
  .meta({ id: "HeartbeatRequest" });

const iso = z.iso.datetime().meta({ description: "ISO 8601 UTC date-time" });

export const pulledJob = z
  .object({
    id: z.string().regex(/^[1-9][0-9]*$/).meta({ description: "the job id (decimal digits)" }),
    type: z.string(),
    payload: z.unknown().meta({ description: "the payload exactly as submitted" }),
    attempt: z.int().min(1).meta({ description: "this attempt's number, from 1" }),
    maxAttempts: z.int().min(1),
    priority: z.int(),
    key: z.string().optional().meta({ description: "the job's flow-control key, when it has one" }),
    traceparent: z.string().optional().meta({ description: "the W3C traceparent the job was submitted with, when it was: continue the producer's trace from it" }),
    leaseToken: z.string().meta({ description: "send it with complete, fail and heartbeat" }),
    leaseUntil: iso.meta({ description: "complete, fail or heartbeat before this, or the job is retried" }),
  })
  .meta({ id: "PulledJob" });

export const claimReply = z.object({ jobs: z.array(pulledJob) }).meta({ id: "ClaimReply" });
export const moveReply = z
  .object({
    id: z.string(),
    state: z.enum(["completed", "scheduled", "dead"]).meta({ description: "where the job went: completed, scheduled for a retry, or dead" }),
  })
  .meta({ id: "MoveReply" });
export const heartbeatReply = z.object({ id: z.string(), leaseUntil: iso }).meta({ id: "HeartbeatReply" });
