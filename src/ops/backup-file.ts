// backup-file.ts: a backup (a stream of a SQLite database file) written to its file atomically and
// checked: streamed to a temporary file beside it, compared with the length and SHA-256 the source
// gave, opened as SQLite (quick_check, the tables its migrations make), then renamed into place.
// Reads no store and no network: the caller hands in the stream.
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { BackupInvalidError } from "../errors.ts";
import { migrationsOf } from "../store/migrate.ts";

export interface BackupSummary {
  /** The backup file, as an absolute path. */
  file: string;
  bytes: number;
  sha256: string;
  /** The newest schema migration the backup records. */
  schemaVersion: number;
  /** Rows in each job table of the backup. */
  jobs: { pending: number; inflight: number; dead: number; completed: number };
}

/**
 * Write `stream` to `out` atomically: nothing appears at `out` unless every byte arrived (as many as
 * `bytes` and matching `sha256`, when given) and the file opens as a jobqueue database; `out` is
 * replaced in one rename, and an earlier file there stays whole until then. BackupInvalidError when
 * the copy is not good; the temporary file is removed whatever happens.
 */
export async function writeBackupFile(opts: {
  stream: ReadableStream<Uint8Array>;
  out: string;
  bytes?: number | null;
  sha256?: string | null;
}): Promise<BackupSummary> {
  const out = resolve(opts.out);
  const dir = dirname(out);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(out)}.${crypto.randomUUID().slice(0, 8)}.part`);
  try {
    const file = await open(temp, "wx", 0o600);
    const hash = createHash("sha256");
    let bytes = 0;
    try {
      for await (const chunk of opts.stream) {
        await file.write(chunk);
        hash.update(chunk);
        bytes += chunk.byteLength;
      }
      await file.sync();
    } finally {
      await file.close();
    }
    const sha256 = hash.digest("hex");
    if (opts.bytes != null && bytes !== opts.bytes) throw new BackupInvalidError(`the backup arrived incomplete: ${bytes} of ${opts.bytes} bytes`);
    if (opts.sha256 != null && sha256 !== opts.sha256) throw new BackupInvalidError("the backup arrived damaged: its SHA-256 differs from the server's");
    const { schemaVersion, jobs } = checkBackupFile(temp);
    await rename(temp, out);
    await syncDirectory(dir);
    return { file: out, bytes, sha256, schemaVersion, jobs };
  } finally {
    await Promise.all(["", "-wal", "-shm", "-journal"].map((suffix) => rm(temp + suffix, { force: true })));
  }
}

/**
 * Open `path` as a backup of a store: SQLite's quick_check must pass and every table the migrations
 * it records make must be there. Leaves it in rollback-journal mode, one self-contained file (the
 * server puts it back in WAL mode when it opens it). BackupInvalidError otherwise.
 */
export function checkBackupFile(path: string): Pick<BackupSummary, "schemaVersion" | "jobs"> {
  let db: Database;
  try {
    db = new Database(path, { readwrite: true, create: false });
  } catch (err) {
    throw new BackupInvalidError(`the backup does not open as a SQLite database (${(err as Error).message})`);
  }
  try {
    const problems = db.query<{ quick_check: string }, []>("PRAGMA quick_check").all().map((r) => r.quick_check);
    if (problems.join() !== "ok") throw new BackupInvalidError(`the backup fails SQLite's quick_check: ${problems.slice(0, 3).join("; ")}`);
    const tables = new Set(db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((r) => r.name));
    if (!tables.has("jobqueue_migrations")) throw new BackupInvalidError("the backup is not a jobqueue database: it has no jobqueue_migrations table");
    const applied = new Set(db.query<{ version: number }, []>("SELECT version FROM jobqueue_migrations").all().map((r) => r.version));
    const missing = [...tablesMadeBy(applied)].filter((t) => !tables.has(t));
    if (missing.length > 0) throw new BackupInvalidError(`the backup lacks the tables ${missing.join(", ")}`);
    const count = (table: string) => (tables.has(table) ? db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()!.n : 0);
    const jobs = { pending: count("pending_jobs"), inflight: count("inflight_jobs"), dead: count("dead_jobs"), completed: count("completed_jobs") };
    db.run("PRAGMA journal_mode = DELETE");
    return { schemaVersion: Math.max(0, ...applied), jobs };
  } finally {
    db.close(true);
  }
}

/** The tables this binary's SQLite migrations make, of those in `versions` (applied to an empty database). */
function tablesMadeBy(versions: ReadonlySet<number>): Set<string> {
  const scratch = new Database(":memory:");
  try {
    for (const m of migrationsOf("sqlite")) if (versions.has(m.version)) scratch.run(m.sql);
    return new Set(scratch.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((r) => r.name));
  } finally {
    scratch.close();
  }
}

/** Make a rename in `dir` durable (the directory's entry, not only the file's bytes). */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
