// log-sync.ts: the embedded store's durability, kept off the event loop. SQLite's synchronous=FULL
// syncs the write-ahead log inside COMMIT, on the one thread that also serves HTTP and runs
// handlers, so every commit stalled all of them for a disk flush (~0.4-0.6 ms here, a few hundred a
// second under load). Instead SQLite runs at NORMAL (COMMIT writes the log, syncs nothing) and this
// syncs the log file on a pool thread: one sync carries every commit made before it began. A store
// call is answered only once a sync that began after the call's last commit has ended, and reads
// wait the same way, so no answer (a 202, a handler's start, a read) ever rests on a commit that a
// power loss could take back. No SQL here.
import { closeSync, fdatasync, fsync, openSync } from "node:fs";
import { dirname } from "node:path";

export interface LogSync {
  /** A commit was made: its log frames are written, not yet synced. */
  wrote(): void;
  /**
   * null when every commit so far is on disk; else a promise that resolves once it is, or rejects
   * (the sync failed: whether those commits will survive a power loss is unknown).
   */
  settled(): Promise<void> | null;
  /** The failure of a sync, once one failed: the store refuses every call after it. */
  readonly failure: Error | null;
  /** Waits for the sync out, then closes the log file. */
  close(): Promise<void>;
}

/** Syncs out at once, at most. */
const MAX_IN_FLIGHT = 4;

interface Waiter {
  /** The commits this caller waits for: every one up to this count. */
  upTo: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Syncs `path` (the database's `-wal` file, which SQLite keeps open, and so on the same inode, until
 * the connection closes). `beforeSync` runs before each sync (tests hold or fail a sync with it).
 */
export function createLogSync(path: string, beforeSync?: () => Promise<void>): LogSync {
  let fd: number | null = null;
  /** Commits made; commits known to be on disk; the most that a sync begun so far covers. */
  let written = 0;
  let synced = 0;
  let covered = 0;
  let inFlight = 0;
  let scheduled = false;
  let waiters: Waiter[] = [];
  let failure: Error | null = null;
  const idle: Array<() => void> = [];

  const syncFile = (file: number, dataOnly = true) =>
    new Promise<void>((resolve, reject) => (dataOnly ? fdatasync : fsync)(file, (err) => (err ? reject(err) : resolve())));

  /**
   * The log file, opened on the first sync. Its directory is synced once then too: SQLite created the
   * file when the store opened, and at FULL its first sync of it would have made the directory entry
   * durable (a power loss could otherwise take the whole file, synced frames and all).
   */
  async function logFile(): Promise<number> {
    if (fd !== null) return fd;
    const dir = openSync(dirname(path), "r");
    try {
      await syncFile(dir, false);
    } finally {
      closeSync(dir);
    }
    fd ??= openSync(path, "r");
    return fd;
  }

  /** One sync: on its end, every commit made before it began is on disk. */
  async function syncOnce(upTo: number): Promise<void> {
    try {
      await beforeSync?.();
      await syncFile(await logFile());
      synced = Math.max(synced, upTo);
      const still: Waiter[] = [];
      for (const w of waiters) (w.upTo <= synced ? w.resolve() : still.push(w));
      waiters = still;
    } catch (err) {
      failure ??= err instanceof Error ? err : new Error(String(err));
      for (const w of waiters.splice(0)) w.reject(failure);
    } finally {
      inFlight--;
      begin();
    }
  }

  /**
   * Begins a sync for the commits no sync under way covers, unless MAX_IN_FLIGHT are out: a commit
   * then waits for one sync of its own, not for the end of one begun before it.
   */
  function begin(): void {
    if (failure === null && written > covered && waiters.length > 0 && inFlight < MAX_IN_FLIGHT) {
      covered = written;
      inFlight++;
      void syncOnce(covered);
      return;
    }
    if (inFlight === 0) for (const done of idle.splice(0)) done();
  }

  return {
    wrote() {
      written++;
    },
    settled() {
      if (failure) return Promise.reject(failure);
      if (synced >= written) return null;
      return new Promise<void>((resolve, reject) => {
        waiters.push({ upTo: written, resolve, reject });
        if (scheduled) return;
        scheduled = true;
        // After the code that asked has run on: commits it makes right after join this sync.
        queueMicrotask(() => {
          scheduled = false;
          begin();
        });
      });
    },
    get failure() {
      return failure;
    },
    async close() {
      if (inFlight > 0 || scheduled) await new Promise<void>((done) => idle.push(done));
      if (fd !== null) closeSync(fd);
      fd = null;
    },
  };
}
