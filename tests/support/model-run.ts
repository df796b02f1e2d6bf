// model-run.ts (test support): plays random step sequences against a real store and the reference
// model side by side, and after every step compares every job, the counts, the stats and the dead
// list. A disagreement throws with the concrete calls that led to it; fast-check then shrinks the
// sequence and prints its seed and path.
import fc from "fast-check";
import { NodeIdInUseError, StoreUnavailableError } from "../../src/errors.ts";
import type { Store, StoreTestHooks } from "../../src/store/store.ts";

/** A store with the hooks only tests use (insert by ids, table counts). */
type TestStore = Store & StoreTestHooks;
import type { ClaimRef, ClaimedJob, InsertResult, JobView, NewJob, PendingEntry, TypeCap } from "../../src/store/rows.ts";
import { JobModel, T0, cutAt, type IssuedRef, type ModelJob } from "./job-model.ts";
import { LEASE_MS, NODES, TYPES, steps, type JobPick, type RefPick, type Step } from "./model-steps.ts";
import type { ModelTarget } from "./model-targets.ts";

export interface ModelRunOptions {
  seed: number;
  numRuns: number;
  maxSteps: number;
  /** fast-check's replay path for a failure it printed (with its seed). */
  path?: string;
  /**
   * Whether one batch of fenced moves may name one job twice (a stale attempt beside the running
   * one, as a settler that groups a late result with the current attempt's would send).
   */
  sameJobTwice: boolean;
  /**
   * Hold claimNext only to bounds (the limit, each capped type's room, due pending rows of types with
   * room) when a capped type's room is above 0 but below the limit: both stores take the `limit`
   * most urgent rows of each priority before the caps, so a capped type's rows can crowd out other
   * types' (a known bug).
   */
  looseCapsBelowLimit: boolean;
}

/** The run's seed, count and replay path: JOBQUEUE_MODEL_SEED, JOBQUEUE_MODEL_RUNS and JOBQUEUE_MODEL_PATH override the defaults. */
export function modelRunOptions(defaults: Omit<ModelRunOptions, "path">): ModelRunOptions {
  const env = process.env;
  return {
    ...defaults,
    seed: env.JOBQUEUE_MODEL_SEED ? Number(env.JOBQUEUE_MODEL_SEED) : defaults.seed,
    numRuns: env.JOBQUEUE_MODEL_RUNS ? Number(env.JOBQUEUE_MODEL_RUNS) : defaults.numRuns,
    ...(env.JOBQUEUE_MODEL_PATH && { path: env.JOBQUEUE_MODEL_PATH }),
  };
}

/** Which sequences a run plays and how strictly it judges them (see ModelRunOptions). */
export type Rules = Pick<ModelRunOptions, "sameJobTwice" | "looseCapsBelowLimit">;

/** How often each outcome occurred over a whole run, so a run can show it exercised what it claims to. */
export type Tally = Map<string, number>;

/** Outcomes every run of a few dozen sequences must have met, or it did not test what it says. */
export const EXPECTED_OUTCOMES = [
  "submit:new", "submit:duplicate", "claim:taken", "claim:skipped", "claimNext:exact", "claimNext:taken", "peekUrgent:rows",
  "peekUrgent:cut", "complete:true", "complete:false",
  "completeKeep:true", "completeKeep:false", "completeCancelled:true", "completeCancelled:false", "retry:true", "retry:false",
  "throttle:true", "throttle:false",
  "bury:true", "bury:false", "extend:true", "extend:false", "cancelPending:true", "cancelPending:false", "deleteDead:true",
  "deleteDead:false", "reap:pending", "reap:dead", "recover:pending", "recover:dead", "release:back", "releaseStrays:back", "releaseStrays:kept", "retryDead:back",
  "prune:removed", "prune:unexpired", "restart", "claim:held", "claim:expired", "expire:dead", "pause:changed", "pause:unchanged", "submit:held",
];

/** The outcomes of EXPECTED_OUTCOMES a run never met. */
export function missingOutcomes(t: Tally): string[] {
  return EXPECTED_OUTCOMES.filter((k) => !(t.get(k)! > 0));
}

/** A run's tally on one line. */
export function describeTally(t: Tally): string {
  return [...t].filter(([k]) => k !== "sequences" && k !== "steps").sort().map(([k, v]) => `${k} ${v}`).join(", ");
}

/** Checks the property over `numRuns` sequences; rejects with fast-check's report (seed, path, shrunk sequence). */
export async function checkStoreAgainstModel(target: ModelTarget, opts: ModelRunOptions): Promise<Tally> {
  const tally: Tally = new Map();
  await fc.assert(
    fc.asyncProperty(steps(opts.maxSteps), (seq) => play(target, seq, opts, tally)),
    { seed: opts.seed, numRuns: opts.numRuns, ...(opts.path !== undefined && { path: opts.path }) },
  );
  return tally;
}

class Mismatch extends Error {}

function same(what: string, actual: unknown, expected: unknown): void {
  if (!Bun.deepEquals(actual, expected, true)) {
    throw new Mismatch(`${what}\n    store: ${JSON.stringify(actual)}\n    model: ${JSON.stringify(expected)}`);
  }
}

function check(what: string, ok: boolean): void {
  if (!ok) throw new Mismatch(what);
}

const sortedIds = (xs: { id: number }[]) => xs.map((x) => x.id).sort((a, b) => a - b);
const byId = <T extends { id: number }>(xs: T[]) => [...xs].sort((a, b) => a.id - b.id);
const entryOf = (e: PendingEntry): PendingEntry => ({ id: e.id, type: e.type, priority: e.priority, runAt: e.runAt, key: e.key });

/** One sequence on a fresh store. */
export async function play(target: ModelTarget, seq: Step[], rules: Rules, tally: Tally = new Map()): Promise<void> {
  await target.begin();
  const m = new JobModel();
  const trace: string[] = [];
  const count = (what: string, n = 1) => tally.set(what, (tally.get(what) ?? 0) + n);
  try {
    for (let i = 0; i < seq.length; i++) {
      try {
        await runStep(target, m, seq[i]!, trace, count, rules);
        await checkEverything(target.store(i % 2 === 0 ? 0 : 1), m);
      } catch (err) {
        const what = err instanceof Mismatch ? err.message : `the store threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}`;
        throw new Error(`step ${i} ${JSON.stringify(seq[i])} on ${target.name}: ${what}\n  calls (time since start):\n    ${trace.join("\n    ")}`, { cause: err });
      }
    }
    count("sequences");
    count("steps", seq.length);
  } finally {
    await target.end();
  }
}

/** Every known job as `get` shows it, then the counts, the stats and the dead-letter list. */
async function checkEverything(store: TestStore, m: JobModel): Promise<void> {
  const ids = [...m.jobs.keys()].sort((a, b) => a - b);
  const views = await Promise.all(ids.map((id) => store.get(id, m.now)));
  ids.forEach((id, i) => checkView(id, views[i]!, m));
  same("counts()", await store.counts(), m.counts());
  same(`stats(now)`, await store.stats(m.now), m.stats());
  const dead = m.inState("dead");
  // In id order, as listed (not sorted here).
  same("listDead ids", (await store.listDead({ afterId: 0, limit: 1_000 })).map((v) => v.id), dead.map((j) => j.id));
  const deadB = dead.filter((j) => j.type === "b");
  const afterId = deadB[0]?.id ?? 0;
  same(`listDead type b after ${afterId}`, (await store.listDead({ type: "b", afterId, limit: 1_000 })).map((v) => v.id),
    deadB.filter((j) => j.id > afterId).map((j) => j.id));
  // Each state's listing, newest first, holds the jobs get() shows in that state.
  for (const state of ["pending", "scheduled", "inflight", "dead", "completed"] as const) {
    const want = ids.filter((id) => m.view(id)?.state === state).reverse();
    same(`listJobs ${state} ids`, (await store.listJobs({ state, order: "newest", limit: 1_000 }, m.now)).map((v) => v.id), want);
  }
}

function checkView(id: number, view: JobView | null, m: JobModel): void {
  const want = m.view(id);
  if (want === null || view === null) return same(`get(${id})`, view, want);
  check(`get(${id}): attempts ${view.attempts} above maxAttempts ${view.maxAttempts}`, view.attempts <= view.maxAttempts);
  const { lastError, ...rest } = view;
  same(`get(${id})`, {
    id: rest.id, type: rest.type, state: rest.state, priority: rest.priority, attempts: rest.attempts, maxAttempts: rest.maxAttempts,
    runAt: rest.runAt, createdAt: rest.createdAt, payload: rest.payload, owner: rest.owner, leaseUntil: rest.leaseUntil,
    failedAt: rest.failedAt, finishedAt: rest.finishedAt ?? null, result: rest.result ?? null, startBy: rest.startBy, throttles: rest.throttles,
  }, want);
  checkLastError(`get(${id}).lastError`, lastError, m, id);
}

/** The error the model knows exactly, or (written by the reaper or a restart) some message. A record has none. */
function checkLastError(what: string, got: string | null, m: JobModel, id: number): void {
  const j = m.jobs.get(id)!;
  if (j.state === "completed") return same(what, got, null);
  if (j.lastErrorExact) return same(what, got, j.lastError);
  check(`${what}: expected a message from the store, got ${JSON.stringify(got)}`, typeof got === "string" && got.length > 0);
}

/** Claimed jobs as handed to a worker: exactly the model's jobs, after the claim. */
function checkClaimed(what: string, got: ClaimedJob[], m: JobModel): void {
  for (const c of got) {
    const want = m.claimed(c.id);
    const { lastError, ...rest } = c;
    const { lastError: _, ...wantRest } = want;
    same(`${what}: job ${c.id}`, { ...rest }, wantRest);
    checkLastError(`${what}: job ${c.id} lastError`, lastError, m, c.id);
  }
}

type Count = (what: string, n?: number) => void;

async function runStep(target: ModelTarget, m: JobModel, s: Step, trace: string[], count: Count, rules: Rules): Promise<void> {
  const at = () => `@${m.now - T0}`;
  const log = (call: string, answer: unknown) => trace.push(`${at()} ${call} -> ${JSON.stringify(answer)}`);
  const tallyFenced = (op: string, res: boolean[]) => res.forEach((ok) => count(`${op}:${ok}`));

  switch (s.op) {
    case "submit": {
      const store = target.store(s.node);
      const jobs = s.jobs.map((spec, i): NewJob => ({
        type: spec.type, payload: JSON.stringify({ i, at: m.now - T0 }), priority: spec.priority, maxAttempts: spec.maxAttempts,
        runAt: m.now + spec.delayMs, timeoutMs: spec.timeoutMs,
        ...(spec.key !== null && { idempotencyKey: spec.key }),
        ...(spec.leased && { lease: { owner: NODES[s.node]!, until: m.now + LEASE_MS } }),
        ...(spec.ttlMs !== null && { startBy: m.now + spec.ttlMs }),
      }));
      let answer: InsertResult[];
      if (s.keyed) answer = await store.add(jobs, m.now);
      else {
        // insert() answers ids only: a duplicate is an id handed out before (or earlier in this call);
        // whether a leased job was held shows in its state (checked after the step).
        const ids = await store.insert(jobs, m.now);
        answer = ids.map((id, i) => {
          const duplicate = m.jobs.has(id) || ids.indexOf(id) < i;
          return { id, duplicate, ...(!duplicate && jobs[i]!.lease !== undefined && m.paused.has(jobs[i]!.type) && { held: true }) };
        });
      }
      // The answer as ids, a duplicate marked with a *, a leased job held (its type paused) with an h.
      trace.push(`${at()} ${s.keyed ? "add" : "insert"}([${jobs.map((j) => describeJob(j, m.now)).join(", ")}]) -> ${answer.map((a) => `${a.id}${a.duplicate ? "*" : ""}${a.held ? "h" : ""}`).join(" ")}`);
      const wrong = m.insert(jobs, answer);
      if (wrong !== null) throw new Mismatch(`submit: ${wrong}`);
      count("submit:duplicate", answer.filter((a) => a.duplicate).length);
      count("submit:new", answer.filter((a) => !a.duplicate).length);
      count("submit:held", answer.filter((a) => a.held).length);
      return;
    }
    case "claim": {
      const owner = NODES[s.node]!;
      const ids = pickJobs(m, s.picks, "pending");
      const { jobs: got, held, expired } = await target.store(s.node).claim(ids, owner, m.now, s.leaseMs);
      log(`claim(${JSON.stringify(ids)}, ${owner}, ${s.leaseMs})`, { taken: sortedIds(got), held: sortedIds(held), expired: [...expired].sort((a, b) => a - b) });
      const want = m.claim(ids, owner, s.leaseMs);
      same("claim ids", sortedIds(got), want.taken);
      same("claim held", byId(held), want.held.map((id) => ({ id, type: m.jobs.get(id)!.type, key: null, reason: "paused", retryInMs: null })));
      same("claim expired", [...expired].sort((a, b) => a - b), want.expired);
      checkClaimed("claim", got, m);
      count("claim:taken", got.length);
      count("claim:held", held.length);
      count("claim:expired", expired.length);
      count("claim:skipped", ids.length - got.length - held.length - expired.length);
      return;
    }
    case "claimNext": {
      const owner = NODES[s.node]!;
      const caps: TypeCap[] = s.caps === null ? [] : TYPES.flatMap((t) => (s.caps![t] === null ? [] : [{ type: t, room: s.caps![t]! }]));
      const room = new Map(caps.map((c) => [c.type, c.room]));
      const want = m.claimNextIds(s.limit, s.agingMs, room);
      const got = await target.store(s.node).claimNext(s.limit, owner, m.now, LEASE_MS, s.agingMs, caps);
      const ids = sortedIds(got);
      log(`claimNext(${s.limit}, ${owner}, aging ${s.agingMs}, caps ${JSON.stringify(caps)})`, ids);
      if (rules.looseCapsBelowLimit && caps.some((c) => c.room > 0 && c.room < s.limit)) {
        const eligible = new Set(m.urgent(s.agingMs).filter((j) => (room.get(j.type) ?? 1) > 0).map((j) => j.id));
        check(`claimNext took ${ids.length} > limit ${s.limit}`, ids.length <= s.limit);
        check(`claimNext took an id twice: ${ids}`, new Set(ids).size === ids.length);
        for (const id of ids) check(`claimNext took ${id}, which was not due, pending and of a type with room`, eligible.has(id));
        for (const c of caps) {
          const n = got.filter((j) => j.type === c.type).length;
          check(`claimNext took ${n} of type ${c.type} with room ${c.room}`, n <= Math.max(c.room, 0));
        }
        count("claimNext:bounded");
      } else {
        same("claimNext ids", ids, want);
        count("claimNext:exact");
      }
      count("claimNext:taken", ids.length);
      m.claim(ids, owner, LEASE_MS);
      checkClaimed("claimNext", got, m);
      return;
    }
    case "peekUrgent": {
      const got = await target.store(s.node).peekUrgent(m.now, s.agingMs, s.limit);
      log(`peekUrgent(aging ${s.agingMs}, ${s.limit})`, got.map((e) => e.id));
      // Most urgent first, as returned (not sorted here); checkEverything then finds nothing changed.
      same("peekUrgent entries", got.map(entryOf), m.peekUrgent(s.agingMs, s.limit));
      count("peekUrgent:rows", got.length);
      if (m.urgent(s.agingMs).length > s.limit) count("peekUrgent:cut");
      return;
    }
    case "complete": {
      const refs = pickRefs(m, s.picks, rules.sameJobTwice);
      const moves = refs.map((r) => ({ id: r.id, attempt: r.attempt, result: s.result }));
      const keep = s.keepMs === null ? undefined : { finishedAt: m.now, expiresAt: m.now + s.keepMs };
      const res = await target.store(0).complete(moves, keep);
      log(`complete(${JSON.stringify(refs)}${keep ? `, keep until @${keep.expiresAt - T0}` : ""})`, res);
      same("complete results", res, m.complete(refs, keep, moves.map((x) => x.result)));
      tallyFenced(keep ? "completeKeep" : "complete", res);
      return;
    }
    case "throttle": {
      // A target pushed back: the attempt is not counted, whatever attempt it was.
      const refs = pickRefs(m, s.picks, rules.sameJobTwice);
      const moves = refs.map((r) => ({ id: r.id, attempt: r.attempt, runAt: m.now + s.delayMs, error: `attempt ${r.attempt} throttled` }));
      const res = await target.store(1).throttle(moves);
      log(`throttle(${JSON.stringify(moves.map(({ id, attempt, runAt }) => ({ id, attempt, runAt: runAt - T0 })))})`, res);
      same("throttle results", res, m.throttle(moves));
      tallyFenced("throttle", res);
      return;
    }
    case "fail": {
      // As the worker pool decides: dead when the attempt was the last allowed or the error is permanent.
      const refs = pickRefs(m, s.picks, rules.sameJobTwice);
      const last = (r: ClaimRef) => s.permanent || r.attempt >= m.jobs.get(r.id)!.maxAttempts;
      const retries = refs.filter((r) => !last(r)).map((r) => ({ id: r.id, attempt: r.attempt, runAt: m.now + s.delayMs, error: `attempt ${r.attempt} failed` }));
      const burials = refs.filter(last).map((r) => ({ id: r.id, attempt: r.attempt, error: `attempt ${r.attempt} failed for good` }));
      if (retries.length > 0) {
        const res = await target.store(1).retry(retries);
        log(`retry(${JSON.stringify(retries.map(({ id, attempt, runAt }) => ({ id, attempt, runAt: runAt - T0 })))})`, res);
        same("retry results", res, m.retry(retries));
        tallyFenced("retry", res);
      }
      if (burials.length > 0) {
        const res = await target.store(0).bury(burials, m.now);
        log(`bury(${JSON.stringify(burials.map(({ id, attempt }) => ({ id, attempt })))})`, res);
        same("bury results", res, m.bury(burials));
        tallyFenced("bury", res);
      }
      return;
    }
    case "cancelPending": {
      const ids = [...new Set(pickJobs(m, s.picks, "pending"))];
      const res = await target.store(0).cancelPending(ids);
      log(`cancelPending(${JSON.stringify(ids)})`, res);
      same("cancelPending results", res, m.cancelPending(ids));
      tallyFenced("cancelPending", res);
      return;
    }
    case "cancelRunning": {
      const refs = pickRefs(m, s.picks, rules.sameJobTwice);
      const res = await target.store(1).completeCancelled(refs);
      log(`completeCancelled(${JSON.stringify(refs)})`, res);
      same("completeCancelled results", res, m.completeCancelled(refs));
      tallyFenced("completeCancelled", res);
      return;
    }
    case "extend": {
      const owner = NODES[s.node]!;
      const refs = pickRefs(m, s.picks, rules.sameJobTwice);
      const until = m.now + s.byMs;
      const res = await target.store(s.node).extendLeases(refs, owner, until);
      log(`extendLeases(${JSON.stringify(refs)}, ${owner}, until @${until - T0})`, res);
      same("extendLeases results", res, m.extendLeases(refs, owner, until));
      tallyFenced("extend", res);
      return;
    }
    case "tick":
      m.now += s.ms;
      trace.push(`${at()} (clock +${s.ms})`);
      return;
    case "reap": {
      const expired = m.expired();
      const cut = cutAt(expired, (j) => j.leaseUntil!, s.limit);
      const got = await target.store(0).reapExpired(m.now, s.limit);
      const ids = [...cut.sure, ...(await tiesTaken(target.store(0), m, cut, (v) => v?.state !== "inflight"))].map((j) => j.id);
      log(`reapExpired(${s.limit})`, sortedIds(got));
      const want = m.reap(ids);
      same("reapExpired entries", byId(got).map(entryOf), want);
      count("reap:pending", want.length);
      count("reap:dead", ids.length - want.length);
      if (cut.tied.length > 0) count("reap:tie");
      return;
    }
    case "release": {
      const owner = NODES[s.node]!;
      const refs = pickRefs(m, s.picks, rules.sameJobTwice);
      const got = await target.store(s.node).release(refs, owner, m.now);
      log(`release(${JSON.stringify(refs)}, ${owner})`, sortedIds(got));
      same("release entries", byId(got).map(entryOf), m.release(refs, owner));
      count("release:back", got.length);
      return;
    }
    case "releaseStrays": {
      const owner = NODES[s.node]!;
      const keep = [...new Set(pickJobs(m, s.keep, "inflight", owner))];
      const running = m.inState("inflight").filter((j) => j.owner === owner).length;
      const got = await target.store(s.node).releaseStrays(owner, keep, m.now);
      log(`releaseStrays(${owner}, keep ${JSON.stringify(keep)})`, sortedIds(got));
      same("releaseStrays entries", byId(got).map(entryOf), m.releaseStrays(owner, keep));
      count("releaseStrays:back", got.length);
      count("releaseStrays:kept", running - got.length);
      return;
    }
    case "retryDead": {
      const ids = pickJobs(m, s.picks, "dead");
      const got = await target.store(1).retryDead(ids, m.now);
      log(`retryDead(${JSON.stringify(ids)})`, sortedIds(got));
      same("retryDead entries", byId(got).map(entryOf), m.retryDead(ids));
      count("retryDead:back", got.length);
      return;
    }
    case "retryDeadOfType": {
      // An operator's clock a second behind leaves out what failed since.
      const at = m.now + s.asOfOffsetMs;
      const got = await target.store(0).retryDeadOfType(s.type, at, s.limit);
      log(`retryDeadOfType(${s.type}, @${at - T0}, ${s.limit})`, sortedIds(got));
      same("retryDeadOfType entries", byId(got).map(entryOf), m.retryDeadOfType(s.type, s.limit, at));
      count("retryDead:back", got.length);
      return;
    }
    case "deleteDead": {
      const ids = [...new Set(pickJobs(m, s.picks, "dead"))];
      const res = await target.store(0).deleteDead(ids);
      log(`deleteDead(${JSON.stringify(ids)})`, res);
      same("deleteDead results", res, m.deleteDead(ids));
      tallyFenced("deleteDead", res);
      return;
    }
    case "deleteDeadOfType": {
      const n = await target.store(1).deleteDeadOfType(s.type, s.limit);
      log(`deleteDeadOfType(${s.type}, ${s.limit})`, n);
      same("deleteDeadOfType count", n, m.deleteDeadOfType(s.type, s.limit));
      count("deleteDead:true", n);
      return;
    }
    case "prune": {
      const at = m.now + s.atOffsetMs;
      const cut = cutAt(m.prunable(at), (j) => j.expiresAt!, s.limit);
      const n = await target.store(0).pruneCompleted(at, s.limit, s.legacyKeepMs);
      log(`pruneCompleted(@${at - T0}, ${s.limit}, legacy ${s.legacyKeepMs})`, n);
      const ids = [...cut.sure, ...(await tiesTaken(target.store(0), m, cut, (v) => v === null))].map((j) => j.id);
      same("pruneCompleted count", n, ids.length);
      m.prune(ids);
      count("prune:removed", n);
      // Records not yet expired at `at` stayed (checkEverything reads each back).
      count("prune:unexpired", m.inState("completed").length);
      if (cut.tied.length > 0) count("prune:tie");
      return;
    }
    case "pause": {
      const store = target.store(s.node);
      const changed = s.paused ? await store.pauseType(s.type, m.now) : await store.resumeType(s.type);
      log(`${s.paused ? "pauseType" : "resumeType"}(${s.type})`, changed);
      same(`${s.paused ? "pauseType" : "resumeType"} result`, changed, m.setPaused(s.type, s.paused));
      same("pausedTypes", await target.store(1 - s.node).pausedTypes(), [...m.paused].sort());
      count(changed ? "pause:changed" : "pause:unchanged");
      return;
    }
    case "expire": {
      const cut = cutAt(m.overdue(), (j) => j.startBy!, s.limit);
      const got = await target.store(0).expirePending(m.now, s.limit);
      log(`expirePending(${s.limit})`, sortedIds(got));
      const ids = [...cut.sure, ...(await tiesTaken(target.store(0), m, cut, (v) => v?.state === "dead"))].map((j) => j.id);
      same("expirePending jobs", byId(got), m.expirePending(ids));
      count("expire:dead", got.length);
      if (cut.tied.length > 0) count("expire:tie");
      return;
    }
    case "restart": {
      const owner = NODES[s.node]!;
      const old = target.store(s.node);
      const store = await target.restart(s.node);
      // A late write through the closed store fails as unavailable, and (the full check after the step) leaves nothing.
      const late = await old.insert([{ type: "a", payload: "{}", priority: 0, maxAttempts: 1, runAt: m.now, timeoutMs: null }], m.now)
        .then((ids) => `ids ${ids}`, (err: unknown) => err);
      check(`insert through the closed store: expected a StoreUnavailableError, got ${String(late)}`, late instanceof StoreUnavailableError);
      if (target.separateNodes) {
        // The other node's process holds its id: this one is refused it.
        const other = NODES[1 - s.node]!;
        const refused = await store.holdNodeId(other).then(() => "held", (err: unknown) => err);
        check(`holdNodeId(${other}) while node ${other} holds it: expected a NodeIdInUseError, got ${String(refused)}`, refused instanceof NodeIdInUseError);
        count("restart:nodeIdRefused");
      }
      const got = await store.recoverOwner(owner, m.now);
      log(`restart ${owner} (holdNodeId(${owner}); a late insert on the closed store refused); recoverOwner(${owner})`, sortedIds(got));
      const running = m.inState("inflight").filter((j) => j.owner === owner).length;
      same("recoverOwner entries", byId(got).map(entryOf), m.recoverOwner(owner));
      count("recover:pending", got.length);
      count("recover:dead", running - got.length);
      const streamed: PendingEntry[] = [];
      for await (const batch of store.streamPending(3)) streamed.push(...batch);
      same("streamPending after restart", byId(streamed).map(entryOf), m.entries());
      count("restart");
      return;
    }
  }
}

/**
 * Which of the tied rows at a LIMIT's cut the store took, read back from the store (`taken` says
 * from a job's view): any `more` of them is a legal answer, and every other row must be untouched.
 */
async function tiesTaken(store: TestStore, m: JobModel, cut: { tied: ModelJob[]; more: number }, taken: (v: JobView | null) => boolean): Promise<ModelJob[]> {
  if (cut.tied.length === 0) return [];
  const views = await Promise.all(cut.tied.map((j) => store.get(j.id, m.now)));
  const chosen = cut.tied.filter((_, i) => taken(views[i]!));
  check(`took ${chosen.length} of ${cut.tied.length} rows tied at the limit's cut, not ${cut.more}`, chosen.length === cut.more);
  return chosen;
}

/** Job ids by position among jobs in `state` (of `owner`, if named), or among every job ever submitted; none when there are none. */
function pickJobs(m: JobModel, picks: JobPick[], state: "pending" | "inflight" | "dead", owner?: string): number[] {
  const inState = m.inState(state).filter((j) => owner === undefined || j.owner === owner).map((j) => j.id);
  const all = [...m.jobs.keys()].sort((a, b) => a - b);
  return picks.flatMap((p) => {
    const pool = p.any ? all : inState;
    return pool.length === 0 ? [] : [pool[p.n % pool.length]!];
  });
}

/** Claims by position, shifted; the same claim (or, unless `sameJobTwice`, the same job) is named once per batch. */
function pickRefs(m: JobModel, picks: RefPick[], sameJobTwice: boolean): ClaimRef[] {
  const live = m.liveRefs();
  const seen = new Set<string>();
  return picks.flatMap((p) => {
    const pool: IssuedRef[] = p.from === "live" ? live : m.issued;
    if (pool.length === 0) return [];
    const base = pool[p.n % pool.length]!;
    const ref = { id: base.id, attempt: base.attempt + p.shift };
    const k = sameJobTwice ? `${ref.id}/${ref.attempt}` : `${ref.id}`;
    if (seen.has(k)) return [];
    seen.add(k);
    return [ref];
  });
}

/** A submitted job in a trace line: type, priority, attempts allowed, and only what differs from a plain job. */
function describeJob(j: NewJob, now: number): string {
  return [
    `${j.type} p${j.priority} max${j.maxAttempts}`,
    j.runAt > now ? ` +${j.runAt - now}ms` : "",
    j.timeoutMs !== null ? ` timeout ${j.timeoutMs}` : "",
    j.idempotencyKey !== undefined ? ` key ${j.idempotencyKey}` : "",
    j.lease !== undefined ? ` leased to ${j.lease.owner}` : "",
    j.startBy !== undefined ? ` start by +${j.startBy - now}ms` : "",
  ].join("");
}
