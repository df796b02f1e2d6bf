// connection.ts: the embedded store's one connection: opening the file under its single-process lock,
// the schema's migrations, the statements the parts prepare, and the guard every store method is built
// through (closed store, driver faults). No job tables and no store methods but the Lifecycle ones here.
import { Database, SQLiteError, type SQLQueryBindings, type Statement } from "bun:sqlite";
import { accessSync, constants, existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  NotAStoreError, StoreLockedError, StoreOutcomeUnknownError, StoreRejectedError, StoreUnavailableError, errorMessage,
} from "../../errors.ts";
import { APPLIED_VERSIONS, MIGRATIONS_TABLE, RECORD_MIGRATION, toApply } from "../migrate.ts";
import type { Lifecycle, Store, StoreTestHooks } from "../store.ts";
import { createLogSync, type LogSync } from "./log-sync.ts";

export interface SqliteStoreOptions {
  /** The database file; created, with its directory, when missing. */
  path: string;
  /**
   * FULL (default): no call is answered before its commits are synced to disk (log-sync.ts syncs
   * the WAL off the event loop, one sync for all the commits made meanwhile). NORMAL: answered at
   * once, and the last commits may be lost on power loss (never on a process crash).
   */
  synchronous?: "FULL" | "NORMAL";
  /** Tests only: runs before each sync of the log, to hold it or (by throwing) fail it. */
  beforeLogSync?: () => Promise<void>;
  /**
   * Open only a file that is already a jobqueue database (commands that copy or move a store):
   * NotAStoreError instead of creating a missing one, or adding tables to another database.
   */
  existing?: boolean;
}

/** Every method a part of the store defines: the Store's roles and the test hooks. */
type Methods = Store & StoreTestHooks;

/**
 * The methods built through op(): every one that answers with a promise, but close(). Exempt, and
 * so defined without op(): close() (closing twice is a no-op, never a fault), clock (reads no file)
 * and streamPending (an async iterable: the start-up stream, run before anything can close).
 */
type GuardedName = Exclude<{ [K in keyof Methods]: Methods[K] extends (...args: never[]) => Promise<unknown> ? K : never }[keyof Methods], "close">;
type Args<K extends GuardedName> = Methods[K] extends (...args: infer A) => unknown ? A : never;
type Answer<K extends GuardedName> = Methods[K] extends (...args: never[]) => Promise<infer R> ? R : never;

/** Marks a method built through op(), so the type checker refuses a store that has one built without. */
declare const GUARDED: unique symbol;
type Guarded<K extends GuardedName> = Methods[K] & { readonly [GUARDED]: true };

/** What a part returns: its methods, each built through op(). */
export type Part<K extends GuardedName> = { [N in K]: Guarded<N> };

/** A whole store whose every guarded method went through op(). */
export type GuardedStore = Methods & { [K in GuardedName]: Guarded<K> };

/** A statement prepared on its first use, once (its tables exist only after migrate()). */
export type Prepared<R, P extends SQLQueryBindings[]> = () => Statement<R, P>;

/** What the parts of the store get from the connection. */
export interface Connection {
  readonly db: Database;
  /**
   * A statement prepared once, on its first use or at the end of migrate(), whichever comes first:
   * statements name tables that exist only after migration.
   */
  prepare<R, P extends SQLQueryBindings[]>(sql: string): Prepared<R, P>;
  /**
   * A store method as it must be defined: a call on a closed store fails StoreUnavailableError (the
   * driver only says "Database has closed"), and a SQLite error as a store fault named after it.
   */
  op<K extends GuardedName>(name: K, fn: (...args: Args<K>) => Answer<K> | Promise<Answer<K>>): Guarded<K>;
  /**
   * Work a part must finish as close() runs: `before` once the store refuses new calls and before
   * the file closes (SQLite checkpoints the WAL into it then), `after` once it has closed and the
   * lock is gone (a handle on the file closed earlier would drop the lock: POSIX locks belong to
   * the process, and closing any descriptor of the file releases them all).
   */
  onClose(hooks: { before?: () => Promise<void>; after?: () => Promise<void> }): void;
}

/** SQLite result codes of a statement refused for the data it carried (the rest are the file's or the disk's). */
const DATA_CODES = /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/;

/**
 * A failed call's error as a store fault (errors.ts). Every move is one synchronous transaction that
 * SQLite rolls back when it fails, so the outcome is always known: nothing took effect. Errors that
 * are not SQLite's (a fault in this code) are returned as they are.
 */
function storeFault(err: unknown, what: string): unknown {
  if (!(err instanceof SQLiteError)) return err;
  const message = `${what}: ${errorMessage(err, 300)} (${err.code ?? "SQLITE_ERROR"})`;
  return DATA_CODES.test(err.code ?? "") ? new StoreRejectedError(message, { cause: err }) : new StoreUnavailableError(message, { cause: err });
}

/** Refuse a read-only data directory at start with a clear message (SQLite only says "disk I/O error"). */
function assertWritable(dir: string): void {
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "EROFS" ? "it is on a read-only file system" : `it is not writable (${code ?? String(err)})`;
    throw new Error(`cannot open the embedded store in ${dir}: ${why}`);
  }
}

/**
 * Open the file and take the single-process lock: WAL under locking_mode=EXCLUSIVE makes SQLite
 * hold an exclusive file lock from the first access until close. The OS drops it when the
 * process dies (kill -9 included); any other connection, in this process or another, gets
 * SQLITE_BUSY at once (busy_timeout 0 while probing) and is refused with StoreLockedError.
 * These pragmas and the probe run once, in this order, before any statement is prepared: plain
 * db.run, as a statement prepared for its only run would be.
 */
function openLocked(path: string, existing: boolean): Database {
  const db = new Database(path, { create: !existing, readwrite: true });
  try {
    db.run("PRAGMA busy_timeout = 0");
    // Before the first access: the WAL index then lives in heap memory, not a shared -shm file.
    db.run("PRAGMA locking_mode = EXCLUSIVE");
    // Someone else's database is left as it was: not even put in WAL mode.
    if (existing && db.query(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobqueue_migrations'`).get() === null) {
      throw new NotAStoreError(path, "it holds no jobqueue_migrations table");
    }
    const mode = db.query<{ journal_mode: string }, []>("PRAGMA journal_mode = WAL").get();
    if (mode?.journal_mode.toLowerCase() !== "wal") throw new Error(`cannot put ${path} in WAL mode (got ${mode?.journal_mode})`);
    // A write transaction settles it: from here the exclusive lock is held until close().
    db.run("BEGIN IMMEDIATE");
    db.run("COMMIT");
    // COMMIT writes the log and syncs nothing: at FULL, log-sync.ts syncs it before any answer.
    db.run("PRAGMA synchronous = NORMAL");
    db.run("PRAGMA busy_timeout = 5000");
    return db;
  } catch (err) {
    db.close(true);
    if (err instanceof SQLiteError && err.code?.startsWith("SQLITE_BUSY")) throw new StoreLockedError(path, { cause: err });
    if (existing && err instanceof SQLiteError && err.code === "SQLITE_NOTADB") throw new NotAStoreError(path, "it is not a SQLite database");
    throw err;
  }
}

/** Open (and lock) the store's file; the connection for the parts, and the store's Lifecycle. */
export function openConnection(opts: SqliteStoreOptions): { conn: Connection; lifecycle: Part<"migrate" | "ping"> & Pick<Lifecycle, "close">; location: string } {
  const location = resolve(opts.path);
  if (opts.existing && !existsSync(location)) throw new NotAStoreError(location, "there is no such file");
  mkdirSync(dirname(location), { recursive: true });
  assertWritable(dirname(location));
  const db = openLocked(location, opts.existing ?? false);
  let closed = false;
  const logSync: LogSync | null = (opts.synchronous ?? "FULL") === "FULL" ? createLogSync(`${location}-wal`, opts.beforeLogSync) : null;
  // Rows changed since the connection opened, as last seen: a call that changed any made a commit
  // (a transaction that changes no row writes no log frame).
  let changesSeen = 0;
  const totalChanges = db.prepare<{ n: number }, []>("SELECT total_changes() AS n");
  /** Whether the call that just ran committed anything. */
  const committed = () => {
    const n = totalChanges.get()!.n;
    if (n === changesSeen) return false;
    changesSeen = n;
    return true;
  };
  /** A call's answer, once every commit made so far is on disk. */
  async function durable<T>(name: string, out: T): Promise<T> {
    const wait = logSync?.settled() ?? null;
    if (wait === null) return out;
    try {
      await wait;
    } catch (err) {
      throw new StoreOutcomeUnknownError(`${name}: the embedded store ${location} could not sync its log to disk (${errorMessage(err, 200)}): ` +
        "whether this call's changes survive a power loss is unknown", { cause: err });
    }
    return out;
  }

  const statements: Array<() => unknown> = [];
  const closeHooks: Array<{ before?: () => Promise<void>; after?: () => Promise<void> }> = [];
  const conn: Connection = {
    db,
    prepare<R, P extends SQLQueryBindings[]>(sql: string) {
      let statement: Statement<R, P> | null = null;
      // The cast only tells tsc what bun's typings leave open: P is already a parameter list.
      const get = () => (statement ??= db.prepare<R, P>(sql) as Statement<R, P>);
      statements.push(get);
      return get;
    },
    op<K extends GuardedName>(name: K, fn: (...args: Args<K>) => Answer<K> | Promise<Answer<K>>) {
      const guarded = async (...args: Args<K>) => {
        if (closed) throw new StoreUnavailableError(`${name}: the embedded store ${location} is closed`);
        if (logSync?.failure) {
          throw new StoreUnavailableError(`${name}: the embedded store ${location} failed to sync its log to disk ` +
            `(${errorMessage(logSync.failure, 200)}) and takes no more calls: restart the process`, { cause: logSync.failure });
        }
        let out: Answer<K>;
        try {
          out = await fn(...args);
        } catch (err) {
          throw storeFault(err, name);
        } finally {
          // What the call committed, even one that then failed: a failed call's commits are synced
          // with the next call's, an answered call waits for them in durable().
          if (logSync && committed()) logSync.wrote();
        }
        return await durable(name, out);
      };
      return guarded as unknown as Guarded<K>;
    },
    onClose(hooks) {
      closeHooks.push(hooks);
    },
  };

  // The record of applied versions; each is prepared on its first use, after the table exists.
  const createMigrationsTable = conn.prepare<never, []>(MIGRATIONS_TABLE.sqlite);
  const appliedVersions = conn.prepare<{ version: number }, []>(APPLIED_VERSIONS);
  const recordMigration = conn.prepare<never, [version: number, name: string]>(RECORD_MIGRATION.sqlite);
  const migrateTx = db.transaction(() => {
    createMigrationsTable().run();
    const applied = new Set(appliedVersions().all().map((r) => r.version));
    for (const m of toApply("sqlite", applied)) {
      // A migration is a script of several statements, run once: it cannot be prepared (a prepared
      // statement holds one statement, and each names tables the ones before it create).
      db.run(m.sql);
      recordMigration().run(m.version, m.name);
    }
  });
  const ping = conn.prepare<{ one: number }, []>("SELECT 1 AS one");

  const lifecycle = {
    migrate: conn.op("migrate", () => {
      migrateTx.immediate();
      // Every statement of every part, prepared now that their tables exist.
      for (const prepared of statements) prepared();
    }),
    ping: conn.op("ping", () => {
      ping().get();
    }),
    // Not guarded: closing a closed store is a no-op.
    async close() {
      if (closed) return;
      closed = true;
      await logSync?.close();
      for (const hook of closeHooks) await hook.before?.();
      // close(true) finalizes the prepared statements too, so the connection (and with it the
      // file lock) goes now, not whenever the statements are garbage collected.
      db.close(true);
      for (const hook of closeHooks) await hook.after?.();
    },
  };
  return { conn, lifecycle, location };
}
