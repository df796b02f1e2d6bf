// api.ts: what a front end (the HTTP app, a library user's own server) may ask of a running queue:
// submit, read, cancel, dead letters, job types (pause, resume), stats, readiness and metrics. The queue implements it; front
// ends depend on this shape, never on the queue's parts.
import type { ScheduleView } from "./schedules.ts";
import type { HistoryView } from "./stats-history.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import type { CancelResult } from "../ops/cancellation.ts";
import type { DeadLetters } from "../ops/dead-letters.ts";
import type { JobTypes } from "../ops/job-types.ts";
import type { Stats } from "../ops/stats.ts";
import type { RemoteWorkers } from "../pool/remote.ts";
import type { InsertResult, JobQuery, JobView, NewJob } from "../store/rows.ts";
import type { Snapshot } from "../store/store.ts";

export interface QueueApi {
  /**
   * Commits jobs (all or nothing) and resolves with their ids only after commit; a duplicate (its
   * idempotency key is held) names the job holding the key. Throws a store fault (errors.ts) or a
   * JobQueueError (e.g. 503 overloaded) when it cannot.
   */
  submit(jobs: NewJob[]): Promise<InsertResult[]>;
  /** Throws (503 overloaded) when a submit of this many bytes would not be let in now; called before its body is read. */
  admit(bytes: number): void;
  /** Defaults for a known type, or undefined for an unknown one. */
  typeDefaults(type: string): { priority: number; maxAttempts: number } | undefined;
  getJob(id: number): Promise<JobView | null>;
  /**
   * Jobs of one state (and type) in id order, a page at a time (Admin.listJobs at the queue's now),
   * each shown as getJob shows it.
   */
  listJobs(query: JobQuery): Promise<JobView[]>;
  /** Operator actions on dead jobs. */
  dead: DeadLetters;
  /** The registered job types, their policy and counts; pausing and resuming them. */
  types: JobTypes;
  /**
   * What flow control can tell of a type now (effective concurrency, breaker state, tokens left),
   * merged into its GET /types entry; unset: nothing more to tell.
   */
  flowStatus?: (type: string) => Record<string, unknown>;
  /** Counts by state and type, the oldest ready job's age, recent completions. */
  stats(): Promise<Stats>;
  /** This node's last minutes, one sample a second: submits, outcomes, its heap's depth, the mean wait. */
  history(): HistoryView;
  /** The recurring schedules, with their next and last ticks and the last tick's job state. */
  schedules(): Promise<ScheduleStatus[]>;
  /** Workers of pull types: their long-polls for jobs and their complete, fail and heartbeat moves. */
  remote: Pick<RemoteWorkers, "claim" | "complete" | "fail" | "heartbeat">;
  /**
   * A consistent copy of the store as of the call (the embedded store's database file); throws a
   * 409 JobQueueError when the store is PostgreSQL (pg_dump's job).
   */
  backup(): Promise<Snapshot>;
  /** Cancel a pending, scheduled or (in this process) running job. */
  cancel(id: number): Promise<CancelResult>;
  /** null when ready, else the reason it is not. */
  notReadyReason(): Promise<string | null>;
  /** Accepting submits? false while shutting down. */
  accepting(): boolean;
  metricsText(): Promise<string> | string;
  metricsContentType: string;
  /** Jobs waiting on this node (ready + scheduled). */
  queuedCount(): number;
  clock: Clock;
  logger: Logger;
}

/** A schedule as GET /schedules shows it: its ticks, and the state of its last tick's job ("gone" once it left no record). */
export interface ScheduleStatus extends ScheduleView {
  lastJobState: JobView["state"] | "gone" | null;
}
