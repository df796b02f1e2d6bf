// backup.ts: the embedded store's consistent copy of its own file while it serves (snapshot), for
// GET /admin/backup and `jobqueue backup`. Holds up the store's writers only for one checkpoint; no
// job tables are read here, and no file of the store is ever closed before the store itself.
import { createHash } from "node:crypto";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { StoreUnavailableError } from "../../errors.ts";
import type { Snapshot } from "../store.ts";
import type { Connection, Part } from "./connection.ts";

/** Bytes moved per read while copying and while streaming the copy. */
const CHUNK_BYTES = 1 << 20;

/**
 * Why the copy is consistent: in WAL mode SQLite writes the database file only when it checkpoints
 * (moves committed pages from the WAL into it); commits only append to the WAL. So the snapshot
 * turns automatic checkpoints off and runs one TRUNCATE checkpoint, in one synchronous step on the
 * store's only connection (no transaction can be open in between): the file then holds every
 * committed transaction, and nothing writes it until checkpoints come back on. The copy of its
 * first page_count × page_size bytes is that moment's database, however many commits go to the WAL
 * meanwhile, and writers are held up only for the checkpoint. The copy goes to a temporary file
 * beside the store (unlinked at once, so nothing is left behind whatever happens) at disk speed, and
 * is streamed from there at the reader's pace, with checkpoints back on.
 *
 * The store's file is read through a descriptor of its own that stays open until the store has
 * closed: closing it any earlier would drop the process's lock on the file (POSIX record locks).
 * close() waits for a copy under way to stop before SQLite's closing checkpoint writes the file.
 */
export function createBackup({ conn, location }: { conn: Connection; location: string }): Part<"snapshot"> {
  const { db, op, prepare } = conn;
  const checkpoint = prepare<{ busy: number; log: number; checkpointed: number }, []>("PRAGMA wal_checkpoint(TRUNCATE)");
  const autoCheckpoint = prepare<{ wal_autocheckpoint: number }, []>("PRAGMA wal_autocheckpoint");
  const pageCount = prepare<{ page_count: number }, []>("PRAGMA page_count");
  const pageSize = prepare<{ page_size: number }, []>("PRAGMA page_size");

  /** The store's file, read-only; opened on the first snapshot, closed only after the store. */
  let source: FileHandle | null = null;
  /** The snapshot under way (one at a time: a second checkpoint would write the file mid-copy). */
  let running: Promise<void> = Promise.resolve();
  let closing = false;
  conn.onClose({
    before: async () => {
      closing = true;
      await running;
    },
    after: async () => {
      await source?.close().catch(() => {});
      source = null;
    },
  });

  const stopIfClosing = () => {
    if (closing) throw new StoreUnavailableError(`snapshot: the embedded store ${location} is closing`);
  };

  /** Copy the file's first `bytes` into `out`, hashing them; checkpoints must be off throughout. */
  async function copyFile(from: FileHandle, out: FileHandle, bytes: number): Promise<string> {
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    for (let pos = 0; pos < bytes;) {
      stopIfClosing();
      const { bytesRead } = await from.read(buf, 0, Math.min(CHUNK_BYTES, bytes - pos), pos);
      if (bytesRead === 0) throw new Error(`snapshot: ${location} ended at byte ${pos} of ${bytes}`);
      await out.write(buf, 0, bytesRead, pos);
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return hash.digest("hex");
  }

  async function take(): Promise<Snapshot> {
    stopIfClosing();
    source ??= await open(location, "r");
    const from = source;
    // A temporary file beside the store (same disk, known to be writable), gone from the directory
    // at once: its blocks are freed when the last handle on it closes, even if this process dies.
    const tempPath = `${location}.backup-${crypto.randomUUID()}`;
    const out = await open(tempPath, "wx+", 0o600);
    let handedOver = false;
    try {
      await unlink(tempPath);
      stopIfClosing();
      if (db.inTransaction) throw new Error("snapshot: a transaction is open on the store's connection");
      const restore = autoCheckpoint().get()?.wal_autocheckpoint ?? 1000;
      db.run("PRAGMA wal_autocheckpoint = 0");
      let bytes: number;
      let sha256: string;
      try {
        const done = checkpoint().get();
        if (done === null || done.busy !== 0) throw new StoreUnavailableError(`snapshot: the checkpoint of ${location} could not finish`);
        bytes = pageCount().get()!.page_count * pageSize().get()!.page_size;
        sha256 = await copyFile(from, out, bytes);
      } finally {
        // Checkpoints back on, and the WAL that grew meanwhile into the file now (the next commit
        // would pay for it otherwise), cut back to nothing. Closing the store does both itself.
        db.run(`PRAGMA wal_autocheckpoint = ${restore}`);
        if (!closing) checkpoint().get();
      }
      handedOver = true;
      return { bytes, sha256, stream: streamOf(out, bytes) };
    } finally {
      if (!handedOver) await out.close().catch(() => {});
    }
  }

  return {
    snapshot: op("snapshot", () => {
      const next = running.then(take);
      // What the next snapshot and close() wait for: this one's end, not its result (nor its stream).
      running = next.then(() => {}, () => {});
      return next;
    }),
  };
}

/** The first `bytes` of `file`, a chunk per read as the reader asks; the file is closed at the end or on cancel. */
function streamOf(file: FileHandle, bytes: number): ReadableStream<Uint8Array> {
  let pos = 0;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await file.close().catch(() => {});
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (pos >= bytes) {
          await close();
          controller.close();
          return;
        }
        const chunk = new Uint8Array(Math.min(CHUNK_BYTES, bytes - pos));
        const { bytesRead } = await file.read(chunk, 0, chunk.length, pos);
        if (bytesRead === 0) throw new Error(`the backup copy ended at byte ${pos} of ${bytes}`);
        pos += bytesRead;
        controller.enqueue(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead));
      } catch (err) {
        await close();
        controller.error(err);
      }
    },
    cancel: close,
  });
}
