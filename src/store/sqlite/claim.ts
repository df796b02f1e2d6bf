// claim.ts: the embedded store's claims (pending → inflight, attempts + 1, leased) by id and by aging
// key, and the look at the most urgent due rows that decides them. A claim holds jobs of paused types
// and dead-letters jobs past their start-by deadline; with limits, it weighs rates and per-key limits
// (flow-plan.ts) in the same transaction. Settling a claim lives elsewhere.
import { EXPIRED_ERROR, type ClaimResult, type ClaimedJob, type HeldJob, type PendingEntry, type TypeCap } from "../rows.ts";
import { bucketName, needs, planStarts, type Candidate, type FlowLimits } from "../flow-plan.ts";
import type { Connection, Part } from "./connection.ts";
import { CARRY_COLS, COPY_COLS, ENTRY_COLS, JOB_COLS } from "./tables.ts";
import { agingKey } from "../../aging.ts";

/** Priorities run from 0 to this; the most urgent due rows are found with one probe per priority. */
const MAX_PRIORITY = 100;

/** The paused types, as a subquery (jobqueue_paused's primary key answers `type IN (…)`). */
const PAUSED = "SELECT type FROM jobqueue_paused";

export function createClaims({ conn }: { conn: Connection }): Part<"claim" | "claimNext" | "peekUrgent"> {
  const { db, op, prepare } = conn;

  // ---- claim: the given ids, each if it is still pending and due ----
  // A due row of a type not paused, whose deadline has not passed, starts; one past its deadline goes
  // to dead as expired; one of a paused type stays and is held. The last two are only looked for
  // when the first did not take the id (an id taken elsewhere or cancelled costs three probes).
  const claimDue = prepare<ClaimedJob, [now: number, leaseUntil: number, owner: string, id: number, now: number, now: number]>(`
    INSERT INTO inflight_jobs (${COPY_COLS}, picked_at, lease_until, owner, ${CARRY_COLS})
    SELECT id, type, payload, priority, attempts + 1, max_attempts, timeout_ms, run_at, created_at, last_error, ?, ?, ?, ${CARRY_COLS}
    FROM pending_jobs WHERE id = ? AND run_at <= ? AND (start_by IS NULL OR start_by >= ?) AND type NOT IN (${PAUSED})
    RETURNING ${JOB_COLS}`);
  const expireDue = prepare<{ id: number }, [error: string, failedAt: number, id: number, now: number, now: number]>(`
    INSERT INTO dead_jobs (${COPY_COLS}, failed_at, ${CARRY_COLS})
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, ?, ?, ${CARRY_COLS}
    FROM pending_jobs WHERE id = ? AND run_at <= ? AND start_by < ?
    RETURNING id`);
  const heldDue = prepare<Pick<HeldJob, "id" | "type" | "key">, [id: number, now: number, now: number]>(`
    SELECT id, type, key FROM pending_jobs
    WHERE id = ? AND run_at <= ? AND (start_by IS NULL OR start_by >= ?) AND type IN (${PAUSED})`);
  const deletePending = prepare<never, [id: number]>("DELETE FROM pending_jobs WHERE id = ?");
  const claimTx = db.transaction((ids: number[], owner: string, now: number, leaseMs: number): ClaimResult => {
    const out: ClaimResult = { jobs: [], held: [], expired: [] };
    const heldIds = new Set<number>();
    for (const id of ids) {
      const job = claimDue().get(now, now + leaseMs, owner, id, now, now);
      if (job) {
        deletePending().run(id);
        out.jobs.push(job);
        continue;
      }
      if (expireDue().get(EXPIRED_ERROR, now, id, now, now)) {
        deletePending().run(id);
        out.expired.push(id);
        continue;
      }
      // An id named twice is held once, as PostgreSQL's one statement answers it.
      const held = heldIds.has(id) ? null : heldDue().get(id, now, now);
      if (held) {
        heldIds.add(id);
        out.held.push({ ...held, reason: "paused", retryInMs: null });
      }
    }
    return out;
  });

  // ---- claim weighing rate and per-key limits (flow-plan.ts), in the same transaction ----
  // Candidates are the startable due rows of limited types (not paused, not past their deadline):
  // those go through claimTx as above, and spend no token.
  const candidateOf = prepare<Candidate, [id: number, now: number, now: number]>(`
    SELECT id, type, key FROM pending_jobs WHERE id = ? AND run_at <= ?
      AND type NOT IN (SELECT type FROM jobqueue_paused) AND (start_by IS NULL OR start_by >= ?)`);
  const bucketTat = prepare<{ tat: number }, [type: string, key: string]>("SELECT tat FROM jobqueue_buckets WHERE type = ? AND key = ?");
  const setTat = prepare<never, [type: string, key: string, tat: number]>(
    "INSERT INTO jobqueue_buckets (type, key, tat) VALUES (?, ?, ?) ON CONFLICT (type, key) DO UPDATE SET tat = excluded.tat");
  const runningOfKey = prepare<{ n: number }, [type: string, key: string]>("SELECT count(*) AS n FROM inflight_jobs WHERE type = ? AND key = ?");
  const claimWeighedTx = db.transaction((ids: number[], owner: string, now: number, leaseMs: number, limits: FlowLimits): ClaimResult => {
    const cands: Candidate[] = [];
    const seen = new Set<number>();
    for (const id of ids) {
      if (seen.has(id)) continue;
      seen.add(id);
      const c = candidateOf().get(id, now, now);
      if (c !== null && limits.has(c.type)) cands.push(c);
    }
    if (cands.length === 0) return claimTx(ids, owner, now, leaseMs);
    const { buckets, keys } = needs(cands, limits);
    const tats = new Map<string, number>();
    for (const [type, key] of buckets) {
      const row = bucketTat().get(type, key);
      if (row !== null) tats.set(bucketName(type, key), row.tat);
    }
    const running = new Map<string, number>();
    for (const [type, key] of keys) running.set(bucketName(type, key), runningOfKey().get(type, key)!.n);
    const plan = planStarts(cands, limits, tats, running, now);
    for (const [name, tat] of plan.tats) {
      const [type, key] = name.split("\u0000") as [string, string];
      setTat().run(type, key, tat);
    }
    const heldIds = new Set(plan.held.map((h) => h.id));
    const moved = claimTx(heldIds.size === 0 ? ids : ids.filter((id) => !heldIds.has(id)), owner, now, leaseMs);
    return { jobs: moved.jobs, held: [...plan.held, ...moved.held], expired: moved.expired };
  });
  const claim = op("claim", (ids, owner, now, leaseMs, limits?: FlowLimits) => {
    if (ids.length === 0) return { jobs: [], held: [], expired: [] };
    if (limits !== undefined && limits.size > 0) return claimWeighedTx.immediate(ids, owner, now, leaseMs, limits);
    return claimTx.immediate(ids, owner, now, leaseMs);
  });

  // ---- the most urgent due rows (peekUrgent, claimNext) ----
  // The oldest due rows of one priority that may start (type not paused, deadline not passed), leaving
  // out some types (a JSON array) (pending_jobs_priority_run_at_idx).
  const dueOfPriority = prepare<PendingEntry, [priority: number, now: number, now: number, skipTypes: string, limit: number]>(
    `SELECT ${ENTRY_COLS} FROM pending_jobs WHERE priority = ? AND run_at <= ? AND (start_by IS NULL OR start_by >= ?)
       AND type NOT IN (SELECT value FROM json_each(?)) AND type NOT IN (${PAUSED}) ORDER BY run_at, id LIMIT ?`);
  const dueOfPriorityType = prepare<PendingEntry, [priority: number, type: string, now: number, now: number, limit: number]>(
    `SELECT ${ENTRY_COLS} FROM pending_jobs WHERE priority = ? AND type = ? AND run_at <= ? AND (start_by IS NULL OR start_by >= ?)
       AND type NOT IN (${PAUSED}) ORDER BY run_at, id LIMIT ?`);
  /**
   * The most urgent due pending rows by aging key, most urgent first: the `limit` oldest of each
   * priority hold the `limit` most urgent overall. Capped types are left out of those probes and get
   * their own, at most `room` rows per priority, so a capped type's backlog cannot crowd the others
   * out (room 0: none).
   */
  const urgent = (now: number, agingMs: number, limit: number, caps: TypeCap[] = []) => {
    const skip = JSON.stringify(caps.map((c) => c.type));
    const rows: PendingEntry[] = [];
    for (let priority = 0; priority <= MAX_PRIORITY; priority++) {
      rows.push(...dueOfPriority().all(priority, now, now, skip, limit));
      for (const c of caps) if (c.room > 0) rows.push(...dueOfPriorityType().all(priority, c.type, now, now, Math.min(c.room, limit)));
    }
    return rows.sort((a, b) => agingKey(a.runAt, a.priority, agingMs) - agingKey(b.runAt, b.priority, agingMs) || a.id - b.id);
  };
  const peekUrgent = op("peekUrgent", (now, agingMs, limit) => (limit <= 0 ? [] : urgent(now, agingMs, limit).slice(0, limit)));

  // ---- claimNext: the most urgent due rows, whoever submitted them ----
  const claimNextTx = db.transaction((limit: number, owner: string, now: number, leaseMs: number, agingMs: number, caps: TypeCap[]) => {
    // Per-type caps: full types are left out, capped ones taken up to their room, most urgent first.
    const room = new Map(caps.map((c) => [c.type, c.room]));
    const chosen: number[] = [];
    for (const e of urgent(now, agingMs, limit, caps)) {
      if (chosen.length === limit) break;
      const left = room.get(e.type);
      if (left !== undefined) {
        if (left <= 0) continue;
        room.set(e.type, left - 1);
      }
      chosen.push(e.id);
    }
    return claimTx(chosen, owner, now, leaseMs).jobs;
  });
  const claimNext = op("claimNext", (limit, owner, now, leaseMs, agingMs, caps = []) =>
    (limit <= 0 ? [] : claimNextTx.immediate(limit, owner, now, leaseMs, agingMs, caps)));

  return { claim, claimNext, peekUrgent };
}
