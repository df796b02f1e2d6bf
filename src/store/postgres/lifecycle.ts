// lifecycle.ts: opening, checking and closing the PostgreSQL store: the migrations (under the
// migration lock, so processes starting at once apply them once), ping and close. No job SQL here.
import type { Lifecycle } from "../store.ts";
import { APPLIED_VERSIONS, MIGRATIONS_TABLE, RECORD_MIGRATION, toApply } from "../migrate.ts";
import type { Connection, Methods } from "./connection.ts";

/** `releaseNode` ends the node id's own session (cluster.ts), after the pool. */
export function createLifecycle(db: Connection, releaseNode: () => Promise<void>): Methods<Lifecycle> {
  return {
    migrate: db.exempt("may wait as long as another process's migration holds the migration lock", async () => {
      await db.begin(async (tx) => {
        // Serialise concurrent start-ups: the second waits, then finds everything applied.
        await tx.query("SELECT pg_advisory_xact_lock(hashtext('jobqueue.migrate'))");
        await tx.script(MIGRATIONS_TABLE.postgres);
        const applied = new Set((await tx.query<{ version: number }>(APPLIED_VERSIONS)).map((r) => r.version));
        for (const m of toApply("postgres", applied)) {
          await tx.script(m.sql);
          await tx.query(RECORD_MIGRATION.postgres, [m.version, m.name]);
        }
      });
      await db.measureClock();
    }),

    ping: db.op("ping", async () => {
      await db.query("SELECT 1");
    }),

    close: db.exempt("ends the connections with a timeout of its own", async () => {
      await db.close();
      // Ending the node id's session releases its lock.
      await releaseNode();
    }),
  };
}
