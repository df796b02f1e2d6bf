// schedules.ts: the types file's [schedules.<name>] tables: recurring jobs by cron expression (read
// by croner, a well-kept cron library with time zones and documented DST rules) or by a fixed
// interval. Checks and shapes them; enqueues nothing (queue/schedules.ts does).
import { Cron } from "croner";
import { z } from "zod";
import { durationMs } from "./duration.ts";

export type CatchUp = "none" | "last" | "all";

export interface ScheduleConfig {
  name: string;
  /** The job type each tick submits (a type of the same file). */
  type: string;
  /** A cron expression (5 fields, or 6 with seconds), read in `timezone`. */
  cron?: string;
  /** Or: a tick every this many ms, at multiples of it since the Unix epoch (so every node agrees). */
  everyMs?: number;
  /** IANA time zone of the cron expression (default UTC). */
  timezone: string;
  /** The job's payload as JSON text. */
  payload: string;
  priority?: number;
  key?: string;
  /** Ticks missed while no node ran: none, the last one, or all of them (at most MAX_CATCH_UP). */
  catchUp: CatchUp;
}

/** The most missed ticks `catch_up = "all"` enqueues (the latest ones). */
export const MAX_CATCH_UP = 100;
const NAME = /^[A-Za-z0-9_.:-]{1,100}$/;
const MIN_EVERY_MS = 1000;

function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const scheduleEntry = z
  .object({
    type: z.string({ error: "expected the name of a job type" }),
    cron: z.string({ error: "expected a cron expression like \"0 3 * * *\"" }).optional(),
    every: z.union([z.string(), z.number()], { error: 'expected a duration like "30s"' }).optional(),
    timezone: z.string({ error: "expected an IANA time zone like \"Europe/Berlin\"" }).refine(validZone, "expected an IANA time zone like \"Europe/Berlin\"").optional(),
    payload: z.unknown().optional(),
    priority: z.number({ error: "expected an integer from 0 to 100" }).int("expected an integer from 0 to 100").min(0, "expected an integer from 0 to 100").max(100, "expected an integer from 0 to 100").optional(),
    key: z.string({ error: "expected a string of 1 to 200 characters" }).min(1, "expected a string of 1 to 200 characters").max(200, "expected a string of 1 to 200 characters")
      .regex(/^[^\u0000-\u001f\u007f]*$/, "must not contain control characters").optional(),
    catch_up: z.enum(["none", "last", "all"], { error: 'expected "none", "last" or "all"' }).optional(),
  }, { error: "expected a table with type and cron or every" })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.cron === undefined) === (s.every === undefined)) {
      ctx.addIssue({ code: "custom", message: "expected exactly one of cron or every" });
      return;
    }
    if (s.cron !== undefined) {
      try {
        new Cron(s.cron, { timezone: s.timezone ?? "UTC", paused: true });
      } catch (err) {
        ctx.addIssue({ code: "custom", path: ["cron"], message: `not a cron expression: ${err instanceof Error ? err.message : String(err)}` });
      }
    }
    if (s.every !== undefined) {
      const ms = durationMs(s.every);
      if (ms === null || ms < MIN_EVERY_MS || ms > 366 * 86_400_000) {
        ctx.addIssue({ code: "custom", path: ["every"], message: 'expected a duration from 1s to 366d, like "30s"' });
      } else if (s.timezone !== undefined) {
        ctx.addIssue({ code: "custom", path: ["timezone"], message: "only allowed with cron" });
      }
    }
  });

export const schedulesSchema = z.record(
  z.string().regex(NAME, "expected a schedule name of 1-100 characters from A-Z a-z 0-9 _ . : -"),
  scheduleEntry,
  { error: "expected a table of schedules" },
);

/** The checked [schedules] tables; `types` are the file's job types (a schedule must name one). */
export function toSchedules(
  raw: z.output<typeof schedulesSchema>,
  types: ReadonlySet<string>,
): { schedules: ScheduleConfig[]; problem?: { path: string[]; message: string } } {
  const schedules: ScheduleConfig[] = [];
  for (const [name, s] of Object.entries(raw)) {
    if (!types.has(s.type)) return { schedules, problem: { path: ["schedules", name, "type"], message: `unknown job type "${s.type}"` } };
    schedules.push({
      name, type: s.type, timezone: s.timezone ?? "UTC",
      ...(s.cron !== undefined && { cron: s.cron }),
      ...(s.every !== undefined && { everyMs: durationMs(s.every)! }),
      payload: JSON.stringify(s.payload ?? null),
      ...(s.priority !== undefined && { priority: s.priority }),
      ...(s.key !== undefined && { key: s.key }),
      catchUp: s.catch_up ?? "last",
    });
  }
  return { schedules };
}
