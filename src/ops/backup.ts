// backup.ts: the operators' backup of a running node (GET /admin/backup): a consistent copy of the
// store, or a 409 saying to use pg_dump when the store is PostgreSQL. No SQL here; other store
// faults propagate as they are (the HTTP app answers them with 503).
import type { Clock } from "../clock.ts";
import { BackupUnsupportedError, JobQueueError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Backups, Snapshot } from "../store/store.ts";

export interface BackupDeps {
  store: Backups;
  clock: Clock;
  logger: Logger;
}

export function createBackups({ store, clock, logger }: BackupDeps): { take(): Promise<Snapshot> } {
  return {
    async take() {
      const t0 = clock();
      try {
        const snapshot = await store.snapshot();
        logger.info("backup taken", { bytes: snapshot.bytes, ms: Math.round(clock() - t0) });
        return snapshot;
      } catch (err) {
        if (err instanceof BackupUnsupportedError) throw new JobQueueError("backup_unsupported", err.message, 409);
        throw err;
      }
    },
  };
}
