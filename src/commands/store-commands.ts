// store-commands.ts: the executable's commands that copy or move a whole store: `backup <file>`
// (a running server's over HTTP, or a stopped server's file with --db) and `move-to-postgres`.
// Parses its own arguments like the client commands (flag > env > default); prints a JSON summary
// on stdout and one-line errors on stderr; returns the exit code. main.ts hands in argv, env and io.
import { resolve } from "node:path";
import { clientTarget, readToken, splitArgs, type ClientIo } from "../client/cli.ts";
import { JobQueueClientError, createClient } from "../client/client.ts";
import { BackupInvalidError, ConfigError, NotAStoreError, StoreLockedError, TargetNotEmptyError, errorMessage } from "../errors.ts";
import { createSqliteStore } from "../store/sqlite/index.ts";
import { writeBackupFile, type BackupSummary } from "../ops/backup-file.ts";
import { moveToPostgres } from "../ops/move-to-postgres.ts";

export const STORE_COMMANDS = ["backup", "move-to-postgres"] as const;
type StoreCommand = (typeof STORE_COMMANDS)[number];

export function isStoreCommand(word: string | undefined): word is StoreCommand {
  return (STORE_COMMANDS as readonly string[]).includes(word ?? "");
}

export const STORE_HELP = `Store commands (copy or move a whole store):
  jobqueue backup <file> [--url <url>] [--token <token> | --token-file <path>]
                  a consistent copy of a running server's embedded store, written to <file>
                  atomically and checked (GET /admin/backup; --url, --token and --token-file as
                  for the client commands: JOBQUEUE_URL, JOBQUEUE_TOKEN, JOBQUEUE_TOKEN_FILE)
  jobqueue backup <file> --db <path>
                  the same from a stopped server's file (refused while a server holds it)
  jobqueue move-to-postgres --from <path> [--to <postgres://…>]
                  move a stopped server's embedded store into a PostgreSQL database that holds no
                  jobs yet (--to defaults to DATABASE_URL), in one transaction
Restore a backup: stop the server, put the file in place of its --db file (removing any -wal file
beside it), start the server. Answers are JSON on stdout. Exit codes: 0 done, 1 refused or failed
(no backup file written, no job moved), 2 bad arguments.
`;

/** Flags each command takes. */
const FLAGS: Record<StoreCommand, string[]> = {
  backup: ["--url", "--token", "--token-file", "--db"],
  "move-to-postgres": ["--from", "--to"],
};

interface StoreArgs {
  command: StoreCommand;
  words: string[];
  flags: Map<string, string>;
}

function parse(argv: string[]): StoreArgs {
  const command = argv[0];
  if (!isStoreCommand(command)) throw new ConfigError(`unknown command ${JSON.stringify(command ?? "")}`);
  const { words, flags } = splitArgs(command, argv.slice(1), new Set(FLAGS[command]), true);
  return { command, words, flags };
}

async function backup(args: StoreArgs, env: Record<string, string | undefined>, io: ClientIo): Promise<BackupSummary> {
  if (args.words.length !== 1) {
    throw new ConfigError(`backup: expected one file to write: jobqueue backup <file> [--url <url> | --db <path>]${args.words.length > 1 ? ` (got ${args.words.length})` : ""}`);
  }
  const out = args.words[0]!;
  const db = args.flags.get("--db");
  if (db === undefined) {
    const target = clientTarget(args.flags, env);
    const token = await readToken(target);
    const client = createClient({ baseUrl: target.url, ...(token !== undefined && { token }), ...(io.fetch !== undefined && { fetch: io.fetch }) });
    const copy = await client.backup();
    return writeBackupFile({ stream: copy.body, bytes: copy.bytes, sha256: copy.sha256, out });
  }
  for (const flag of ["--url", "--token", "--token-file"]) {
    if (args.flags.has(flag)) throw new ConfigError(`backup: --db copies a stopped server's file; ${flag} is for a running one: give one or the other`);
  }
  if (resolve(db) === resolve(out)) throw new ConfigError("backup: the backup file must not be the store's own file");
  // The store's own lock: refused (StoreLockedError) while a server holds the file.
  const store = createSqliteStore({ path: db, existing: true });
  let copy;
  try {
    copy = await store.snapshot();
  } finally {
    await store.close();
  }
  return writeBackupFile({ stream: copy.stream, bytes: copy.bytes, sha256: copy.sha256, out });
}

function move(args: StoreArgs, env: Record<string, string | undefined>) {
  if (args.words.length > 0) throw new ConfigError(`move-to-postgres: unexpected argument ${JSON.stringify(args.words[0])}`);
  const from = args.flags.get("--from");
  if (from === undefined) throw new ConfigError("move-to-postgres: give the embedded store's file: --from <path>");
  const to = args.flags.get("--to") ?? (env.DATABASE_URL === "" ? undefined : env.DATABASE_URL);
  if (to === undefined) throw new ConfigError("move-to-postgres: give the PostgreSQL database: --to postgres://… (or DATABASE_URL)");
  if (!/^postgres(ql)?:\/\//.test(to)) throw new ConfigError("move-to-postgres: --to / DATABASE_URL must be a postgres:// URL");
  return moveToPostgres({ from, to });
}

/** Runs one store command line; resolves with the exit code. */
export async function runStoreCommand(argv: string[], env: Record<string, string | undefined>, io: ClientIo): Promise<number> {
  let command = argv[0] ?? "";
  try {
    const args = parse(argv);
    command = args.command;
    const summary = args.command === "backup" ? await backup(args, env, io) : await move(args, env);
    io.out(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`jobqueue: ${err.message}\n`);
      return 2;
    }
    const nothing = command === "backup" ? "no backup file was written" : "no job was moved";
    if (err instanceof StoreLockedError) {
      const hint = command === "backup" ? "back up the running server with --url instead, or stop it first" : "stop the server first";
      io.err(`jobqueue: ${command}: refused: ${err.message}: ${hint}\n`);
      return 1;
    }
    if (err instanceof NotAStoreError || err instanceof TargetNotEmptyError || err instanceof BackupInvalidError) {
      io.err(`jobqueue: ${command}: refused: ${err.message}; ${nothing}\n`);
      return 1;
    }
    if (err instanceof JobQueueClientError) {
      io.err(`jobqueue: ${command}: the server answered ${err.status} ${err.code}: ${err.message}\n`);
      return 1;
    }
    io.err(`jobqueue: ${command} failed: ${errorMessage(err, 500)}; ${nothing}\n`);
    return 1;
  }
}
