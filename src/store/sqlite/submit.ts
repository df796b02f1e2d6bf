// submit.ts: the embedded store's submits: add() (idempotency keys, ids handed out in input order) and
// the tests' insert(), each one immediate transaction. Moves of jobs that already exist live elsewhere.
import type { InsertResult, NewJob } from "../rows.ts";
import type { Connection, Part } from "./connection.ts";

export function createSubmit({ conn }: { conn: Connection }): Part<"add" | "insert"> {
  const { db, op, prepare } = conn;

  // Ids come from one counter row, so a batch gets consecutive ids in input order.
  const bumpIds = prepare<{ last_id: number }, [count: number]>("UPDATE job_ids SET last_id = last_id + ? RETURNING last_id");
  const insertPending = prepare<never, [id: number, type: string, payload: string, priority: number, maxAttempts: number,
    timeoutMs: number | null, runAt: number, createdAt: number, key: string | null, startBy: number | null, trace: string | null]>(`
    INSERT INTO pending_jobs (id, type, payload, priority, max_attempts, timeout_ms, run_at, created_at, key, start_by, trace)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  // A job that starts at once: its first attempt, leased in the insert's own transaction.
  const insertStarted = prepare<never, [id: number, type: string, payload: string, priority: number, maxAttempts: number,
    timeoutMs: number | null, runAt: number, createdAt: number, pickedAt: number, leaseUntil: number, owner: string,
    key: string | null, startBy: number | null, trace: string | null]>(`
    INSERT INTO inflight_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at,
                               picked_at, lease_until, owner, key, start_by, trace)
    VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);

  const isPaused = prepare<{ one: number }, [type: string]>("SELECT 1 AS one FROM jobqueue_paused WHERE type = ?");

  /** The last of `count` fresh ids. */
  const takeIds = (count: number) => bumpIds().get(count)!.last_id;

  /**
   * One job's row: pending, or (with a lease) inflight as its first attempt, unless its type is
   * paused: then pending, and the answer is true (held).
   */
  const insertRow = (id: number, j: NewJob, now: number): boolean => {
    const key = j.key ?? null, startBy = j.startBy ?? null;
    const held = j.lease !== undefined && (isPaused().get(j.type) ?? null) !== null;
    const trace = j.trace ?? null;
    if (j.lease === undefined || held) insertPending().run(id, j.type, j.payload, j.priority, j.maxAttempts, j.timeoutMs, j.runAt, now, key, startBy, trace);
    else {
      insertStarted().run(id, j.type, j.payload, j.priority, j.maxAttempts, j.timeoutMs, j.runAt, now, now, j.lease.until, j.lease.owner,
        key, startBy, trace);
    }
    return held;
  };

  // ---- add: jobs with or without idempotency keys ----
  const keyHolder = prepare<{ job_id: number }, [key: string]>("SELECT job_id FROM idempotency_keys WHERE key = ?");
  const takeKey = prepare<never, [key: string, jobId: number, createdAt: number]>(
    "INSERT INTO idempotency_keys (key, job_id, created_at) VALUES (?, ?, ?)");
  const addTx = db.transaction((jobs: NewJob[], now: number) => {
    // Who holds each key: a job from before this call, or the first of this call to name it.
    const holders = new Map<string, InsertResult>();
    const fresh: number[] = [];
    jobs.forEach((j, i) => {
      const key = j.idempotencyKey;
      if (key === undefined) fresh.push(i);
      else if (!holders.has(key)) {
        const held = keyHolder().get(key);
        if (held) holders.set(key, { id: held.job_id, duplicate: true });
        else {
          holders.set(key, { id: -1, duplicate: false });
          fresh.push(i);
        }
      }
    });
    const last = fresh.length > 0 ? takeIds(fresh.length) : 0;
    const idOf = new Map(fresh.map((i, n) => [i, last - fresh.length + 1 + n]));
    const heldRows = new Set<number>();
    for (const i of fresh) {
      const j = jobs[i]!;
      const id = idOf.get(i)!;
      if (insertRow(id, j, now)) heldRows.add(i);
      if (j.idempotencyKey !== undefined) {
        takeKey().run(j.idempotencyKey, id, now);
        holders.set(j.idempotencyKey, { id, duplicate: false, ...(heldRows.has(i) && { held: true }) });
      }
    }
    return jobs.map((j, i): InsertResult => {
      if (j.idempotencyKey === undefined) return { id: idOf.get(i)!, duplicate: false, ...(heldRows.has(i) && { held: true }) };
      const h = holders.get(j.idempotencyKey)!;
      return idOf.has(i) ? h : { id: h.id, duplicate: true };
    });
  });
  const add = op("add", (jobs, now) => (jobs.length === 0 ? [] : addTx.immediate(jobs, now)));

  // ---- insert (tests and benchmarks): jobs without keys, answered by their ids ----
  const insertTx = db.transaction((jobs: NewJob[], now: number) => {
    const first = takeIds(jobs.length) - jobs.length + 1;
    return jobs.map((j, i) => {
      insertRow(first + i, j, now);
      return first + i;
    });
  });
  const insert = op("insert", (jobs, now) => {
    if (jobs.length === 0) return [];
    if (jobs.some((j) => j.idempotencyKey !== undefined)) return addTx.immediate(jobs, now).map((r) => r.id);
    return insertTx.immediate(jobs, now);
  });

  return { add, insert };
}
