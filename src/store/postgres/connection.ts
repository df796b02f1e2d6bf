// connection.ts: the PostgreSQL store's connections (the shared pool, replaced when it stops answering;
// connections of their own), the two doors every store method is built through (op: the statement
// deadline and driver errors as store faults; exempt, said why) and the server clock. No job SQL here.
import postgres from "postgres";
import { StoreOutcomeUnknownError, StoreRejectedError, StoreUnavailableError, errorMessage } from "../../errors.ts";
import { ms } from "./sql.ts";
import type { Clock } from "../../clock.ts";

export interface PostgresStoreOptions {
  url: string;
  /** Pool size. */
  max?: number;
  /** Seconds to wait for a connection before failing (kept short: see DESIGN pitfalls). */
  connectTimeoutS?: number;
  onNotice?: (notice: unknown) => void;
  /** This process's own clock (epoch ms); store.clock corrects it by its offset from the server's. */
  localClock?: Clock;
}

export type Sql = postgres.Sql<{ bigint: number }>;

/** Statements on the pool, a transaction or a connection of its own. */
export interface Queries {
  /** One statement with $n parameters, sent prepared (PREPARED). */
  query<R>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

/** A transaction's statements, which may also run a schema script. */
export interface Transaction extends Queries {
  /** SQL text that may hold several statements and takes no parameters (migrate.ts): the simple protocol. */
  script(text: string): Promise<unknown>;
}

/**
 * Every statement of this store is `unsafe` text with $n parameters, named and prepared on each
 * connection. `simple: false` keeps one without parameters prepared too (postgres.js would send it
 * over the simple protocol, unprepared).
 */
const PREPARED = { prepare: true, simple: false };

/**
 * A parameter as postgres.js should send it. An array of numbers (and NULLs) becomes its array
 * literal here: postgres.js would quote every element and run two regular expressions over it, which
 * for the id arrays of every claim and settle was a few percent of the process's CPU.
 */
function param(p: unknown): unknown {
  if (!Array.isArray(p) || p.length === 0) return p;
  let nulls = false;
  for (const x of p as unknown[]) {
    if (typeof x === "number") {
      if (!Number.isFinite(x)) return p;
    } else if (x === null) nulls = true;
    else return p;
  }
  return `{${(nulls ? p.map((x: number | null) => (x === null ? "NULL" : x)) : p).join(",")}}`;
}

/** The statements of one pool, transaction or connection. */
export const on = (q: Pick<Sql, "unsafe">): Transaction => ({
  query: <R>(text: string, params: readonly unknown[] = []) =>
    q.unsafe<R[]>(text, params.map(param) as never[], PREPARED) as unknown as Promise<R[]>,
  script: (text: string) => q.unsafe(text),
});

declare const guarded: unique symbol;
/** A store method made by op() or exempt(): the store's type accepts no other, so none escapes the deadline unsaid. */
export type Guarded<F> = F & { readonly [guarded]: true };
/** The methods of a role, each made by op() or exempt(). */
export type Methods<T> = { [K in keyof T]: Guarded<T[K]> };

/** A clock reading whose round trip took longer than this is too vague to keep (ms). */
const MAX_CLOCK_READING_RTT_MS = 50;
/** Longest pause between reconnect attempts (seconds). */
const RECONNECT_CAP_S = 0.5;

/**
 * Longest a state move may take before the pool is presumed broken. After PostgreSQL restarts,
 * postgres.js under Bun was seen leaving a query on a dead connection that never settled, which
 * would stall the batch it carries (and every batch behind it) forever. The cause found (a
 * statement sent between a socket's error and its close) is mended by patches/postgres@3.4.9.patch;
 * the deadline stays for any other.
 */
const STATEMENT_DEADLINE_MS = 15_000;

/** `p`, or the error `late()` makes once `ms` have passed without its answer (p runs on regardless). */
export function within<T>(p: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** Driver error codes raised before a statement left this process: nothing reached the database. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "CONNECT_TIMEOUT", "CONNECTION_ENDED"]);
/** Driver error codes of a connection lost while a statement may have been out. */
const LOST = new Set(["CONNECTION_CLOSED", "CONNECTION_DESTROYED", "ECONNRESET", "EPIPE", "ETIMEDOUT"]);

/**
 * A failed call's error as one of the store fault classes (errors.ts). The server's own error
 * answers (SQLSTATE) roll their transaction back, so nothing took effect: the data classes (22 data
 * exception, 23 integrity, 54 program limit) are the request's fault, the rest (out of disk, too many
 * connections, starting up, serialization) the database's. A connection lost with a statement out,
 * or a statement past its deadline, leaves the outcome unknown. Anything else (a fault in this code)
 * is returned as it is.
 */
export function storeFault(err: unknown, what: string): unknown {
  if (err instanceof StoreUnavailableError || err instanceof StoreOutcomeUnknownError || err instanceof StoreRejectedError) return err;
  const message = `${what}: ${errorMessage(err, 300)}`;
  if (err instanceof postgres.PostgresError) {
    const state = err.code;
    // Terminated by an operator or a crash: the statement may have been committing.
    if (state === "57P01" || state === "57P02") return new StoreOutcomeUnknownError(message, { cause: err });
    if (/^(22|23|54)/.test(state)) return new StoreRejectedError(`${message} (SQLSTATE ${state})`, { cause: err });
    return new StoreUnavailableError(`${message} (SQLSTATE ${state})`, { cause: err });
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && NOT_SENT.has(code)) return new StoreUnavailableError(message, { cause: err });
  if (typeof code === "string" && LOST.has(code)) return new StoreOutcomeUnknownError(message, { cause: err });
  return err;
}

/**
 * libpq's way of naming a Unix socket, `?host=/var/run/postgresql` (a directory), which postgres.js
 * does not read from a URL: turned into its `path` option. A database on the same machine answers
 * a round trip over the socket sooner than over loopback TCP.
 */
export function socketOf(url: string): { url: string; path?: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { url };
  }
  const host = u.searchParams.get("host");
  if (host === null || !host.startsWith("/")) return { url };
  u.searchParams.delete("host");
  return { url: u.toString(), path: `${host.replace(/\/+$/, "")}/.s.PGSQL.${u.port || "5432"}` };
}

/** What the parts of the store run on: statements on the shared pool, and the doors of their methods. */
export interface Connection extends Queries {
  /** One transaction on the shared pool. */
  begin<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** A statement's rows in batches of `rows`, through a cursor on the shared pool (unprepared). */
  cursor<R>(text: string, rows: number): AsyncIterable<R[]>;
  /** A pool of `max` connections of its own (a listener, the node id's session), never replaced. */
  open(max: number): Sql;
  /**
   * A store method that runs under the deadline, with the driver's errors turned into store faults
   * named `what`. A call that overruns the deadline fails with an unknown outcome and replaces the pool.
   */
  op<A extends unknown[], R>(what: string, fn: (...args: A) => Promise<R>): Guarded<(...args: A) => Promise<R>>;
  /** A store method that runs without the deadline, its driver's errors as they are, for the reason given. */
  exempt<F extends (...args: never[]) => unknown>(why: string, fn: F): Guarded<F>;
  /** Now in epoch ms on the server's clock: this process's clock corrected by the last measured offset. */
  clock(): number;
  /**
   * One reading of the server's clock against ours (on `q`, the shared pool by default): its reading
   * is taken as of the midpoint of the round trip, so the error is at most half the round trip.
   * Readings over a slow round trip are not kept (the previous offset stays).
   */
  measureClock(q?: Queries): Promise<void>;
  /** Ends the shared pool. */
  close(): Promise<void>;
}

export function createConnection(opts: PostgresStoreOptions): Connection {
  const target = socketOf(opts.url);
  const open = (max = opts.max ?? 10): Sql => postgres(target.url, {
    ...(target.path !== undefined && { path: target.path }),
    max,
    connect_timeout: opts.connectTimeoutS ?? 5,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    onnotice: opts.onNotice ?? (() => {}),
    // int8 ids and counts as JS numbers (ids stay below 2^53).
    types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
    connection: { application_name: "jobqueue" },
    // postgres.js grows its reconnect delay as 3^errors/100 s up to 20 s, shared by the pool, so
    // after a short outage connections sat idle for 10-20 s. Cap it: back within a second.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, RECONNECT_CAP_S),
  }) as unknown as Sql;
  /** The shared pool; every statement reads it as it runs, so a replaced pool serves the next one. */
  let sql = open();

  /** Drop a pool that stopped answering; the next statement opens fresh connections. */
  function replacePool(): void {
    const old = sql;
    sql = open();
    old.end({ timeout: 0 }).catch(() => {});
  }

  const localClock = opts.localClock ?? Date.now;
  /** The server's clock minus this process's, from the last good measurement (measureClock). */
  let clockOffsetMs = 0;

  return {
    query: (text, params) => on(sql).query(text, params),
    begin: <T>(fn: (tx: Transaction) => Promise<T>) => sql.begin((tx) => fn(on(tx))) as Promise<T>,
    cursor: <R>(text: string, rows: number) => sql.unsafe<R[]>(text).cursor(rows) as AsyncIterable<R[]>,
    open,

    op<A extends unknown[], R>(what: string, fn: (...args: A) => Promise<R>) {
      const method = (...args: A): Promise<R> => {
        const pool = sql;
        return within(fn(...args), STATEMENT_DEADLINE_MS, () => {
          if (sql === pool) replacePool();
          return new StoreOutcomeUnknownError(`${what} got no answer from PostgreSQL within ${STATEMENT_DEADLINE_MS} ms; the connection pool was replaced`);
        }).catch((err: unknown) => {
          throw storeFault(err, what);
        });
      };
      return method as Guarded<typeof method>;
    },

    exempt: <F extends (...args: never[]) => unknown>(_why: string, fn: F) => fn as Guarded<F>,

    clock: () => localClock() + clockOffsetMs,

    async measureClock(q = on(sql)) {
      const before = localClock();
      const [row] = await q.query<{ now: number }>(`SELECT ${ms("clock_timestamp()")} AS now`);
      const after = localClock();
      if (row && after - before <= MAX_CLOCK_READING_RTT_MS) clockOffsetMs = row.now - (before + after) / 2;
    },

    async close() {
      // Callers drain their own work first. After an outage postgres.js (3.4.9 on Bun) can keep a
      // dead connection that makes end() wait out its whole timeout, so keep the timeout short.
      await sql.end({ timeout: 1 });
    },
  };
}
