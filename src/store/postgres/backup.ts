// backup.ts: the PostgreSQL store's answer to a snapshot: none. PostgreSQL backs itself up (pg_dump,
// base backups, replication) better than a copy through this process could; this says so.
import { BackupUnsupportedError } from "../../errors.ts";
import type { Backups } from "../store.ts";
import type { Connection, Methods } from "./connection.ts";

export function createBackup(db: Connection): Methods<Backups> {
  return {
    snapshot: db.exempt("refuses without asking the database", async () => {
      throw new BackupUnsupportedError(
        "this server keeps its jobs in PostgreSQL: back up the database with pg_dump (or a base backup), not through jobqueue");
    }),
  };
}
