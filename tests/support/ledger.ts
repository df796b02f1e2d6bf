// ledger.ts (test support): holds a finished run to account: every acknowledged job delivered and
// settled as its mode says, duplicates only for jobs that were in flight when a process died.
import { expect } from "bun:test";
import type { Delivery, Mode } from "./receiver.ts";

export interface Accounting {
  acked: number;
  flakyThenDone: number;
  dead: number;
  inflightAtKills: number;
  deliveredTwice: number;
  deliveries: number;
}

export function checkAccounting(opts: {
  acked: Map<string, Mode>;
  deliveries: Map<string, Delivery>;
  dead: Map<string, { attempts: number; last_error: string }>;
  /** Ids that were in inflight_jobs right after a kill: they may run again. */
  inflightAtKills: Set<string>;
  maxAttempts: number;
}): Accounting {
  const { acked, deliveries, dead, inflightAtKills, maxAttempts } = opts;
  let flakyThenDone = 0, deadLettered = 0, total = 0;
  for (const [id, mode] of acked) {
    const d = deliveries.get(id);
    expect(d, `acknowledged job ${id} was never delivered`).toBeDefined();
    expect(Math.max(...d!.attempts), `job ${id} ran more than maxAttempts times`).toBeLessThanOrEqual(maxAttempts);
    if (inflightAtKills.has(id)) continue;
    if (mode === "fail") {
      expect(d!.succeeded).toBe(false);
      expect(dead.get(id), `failing job ${id} not dead-lettered`).toMatchObject({ attempts: maxAttempts });
      expect(dead.get(id)!.last_error).toContain("webhook answered 500");
      deadLettered++;
    } else {
      expect(d!.succeeded, `job ${id} (${mode}) never succeeded`).toBe(true);
      expect(dead.has(id), `job ${id} (${mode}) was dead-lettered`).toBe(false);
      if (mode === "flaky") {
        expect(d!.attempts).toContain(3);
        flakyThenDone++;
      }
    }
  }
  for (const d of deliveries.values()) total += d.attempts.length;
  const twice = [...deliveries].filter(([, d]) => d.mode === "ok" && d.attempts.length > 1).map(([id]) => id);
  for (const id of twice) expect(inflightAtKills.has(id), `job ${id} delivered twice but was not in flight at a kill`).toBe(true);
  return { acked: acked.size, flakyThenDone, dead: deadLettered, inflightAtKills: inflightAtKills.size, deliveredTwice: twice.length, deliveries: total };
}
