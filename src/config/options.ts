// options.ts: the option table: every setting's flag, environment variable, default, accepted
// values and parser, in one place (loadConfig reads it, --help prints it, nothing else states a
// default). Pure: no environment, no files.
import { Expected } from "../errors.ts";
import type { Config } from "./config.ts";
import { DURATION_UNITS, durationMs } from "./duration.ts";
import { ALLOWED_HOST_RULE, TOKEN_RULE, isAllowedHostPattern, isValidToken } from "./access.ts";
import { LOG_LEVELS } from "../logger.ts";
import { ANY_SECRET_RULE, isValidSecret } from "../handlers/signing.ts";

export type Ctx = { hostname: string; instance: string; config: Partial<Config> };

export type Spec<T> = {
  flag: string;
  env: string;
  /** Placeholder shown in --help, e.g. "<ms>". */
  arg: string;
  meaning: string;
  /** What the parser accepts, for --help. */
  accepts: string;
  /** Shown in --help when the default is computed. */
  defaultText?: string;
  /** Hides the value in error messages: all of it, or all but a URL's scheme (it may hold a password). */
  secret?: "all" | "scheme";
  /** A switch: the bare flag means true; it takes a value only when the next word is true/false. */
  boolean?: boolean;
  parse: (raw: string, ctx: Ctx) => T;
};

/** Required options carry a default, as raw text parsed like user input; optional ones must not. */
type Option<T> = Spec<NonNullable<T>> &
  (undefined extends T ? { default?: never } : { default: string | ((ctx: Ctx) => string) });

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

function integer(raw: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(raw)) throw new Expected(`an integer from ${min} to ${max}`);
  const n = Number(raw) + 0; // + 0 turns "-0" into 0
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Expected(`an integer from ${min} to ${max}`);
  return n;
}

function int(o: { flag: string; env: string; min: number; max: number; default: number; meaning: string }): Option<number> {
  const arg = o.flag.endsWith("-ms") ? "<ms>" : o.flag.endsWith("-bytes") ? "<bytes>" : o.flag.endsWith("-s") ? "<s>" : "<n>";
  return {
    flag: o.flag,
    env: o.env,
    arg,
    meaning: o.meaning,
    accepts: `${o.min}-${o.max}`,
    default: String(o.default),
    parse: (raw) => integer(raw, o.min, o.max),
  };
}

function nonEmpty(raw: string): string {
  if (raw === "") throw new Expected("a non-empty path");
  return raw;
}

export const BOOLEAN_WORDS = new Set(["true", "false"]);

function bool(raw: string): boolean {
  const word = raw.toLowerCase();
  if (!BOOLEAN_WORDS.has(word)) throw new Expected("true or false");
  return word === "true";
}

export const OPTIONS: { [K in keyof Config]-?: Option<Config[K]> } = {
  port: int({ flag: "--port", env: "PORT", min: 0, max: 65535, default: 8080, meaning: "HTTP port to listen on; 0 picks a free port" }),
  host: {
    flag: "--host",
    env: "HOST",
    arg: "<addr>",
    meaning: "address to listen on",
    accepts: "a host name or IP address",
    default: "127.0.0.1",
    parse: (raw) => {
      if (!/^\S+$/.test(raw)) throw new Expected("a non-empty host name or address without spaces");
      return raw;
    },
  },
  databaseUrl: {
    flag: "--database-url",
    env: "DATABASE_URL",
    arg: "<url>",
    meaning: "database to use; unset means the embedded store at --db",
    accepts: "postgres://…, postgresql://… or sqlite:…",
    defaultText: "(unset)",
    secret: "scheme",
    parse: (raw) => {
      if (!/^(postgres:\/\/|postgresql:\/\/|sqlite:)/.test(raw)) {
        throw new Expected("a URL starting with postgres://, postgresql:// or sqlite:");
      }
      return raw;
    },
  },
  dbPath: {
    flag: "--db",
    env: "JOBQUEUE_DB",
    arg: "<path>",
    meaning: "file of the embedded store (used when --database-url is unset)",
    accepts: "a file path",
    default: "./data/jobqueue.db",
    parse: nonEmpty,
  },
  sqliteSynchronous: {
    flag: "--sqlite-synchronous",
    env: "JOBQUEUE_SQLITE_SYNCHRONOUS",
    arg: "<mode>",
    meaning: "embedded store durability: FULL survives power loss; NORMAL survives a process crash but may lose the last commits on power loss",
    accepts: "FULL|NORMAL",
    default: "FULL",
    parse: (raw) => {
      const mode = raw.toUpperCase();
      if (mode !== "FULL" && mode !== "NORMAL") throw new Expected("FULL or NORMAL");
      return mode;
    },
  },
  configPath: {
    flag: "--config",
    env: "JOBQUEUE_CONFIG",
    arg: "<path>",
    meaning: "job types file (.toml or .json) mapping each type to a webhook, a command or a builtin",
    accepts: "a file path",
    defaultText: "(unset)",
    parse: nonEmpty,
  },
  workers: int({ flag: "--workers", env: "JOBQUEUE_WORKERS", min: 1, max: 10_000, default: 32, meaning: "jobs run at once by this process" }),
  claimAheadMs: int({
    flag: "--claim-ahead-ms", env: "JOBQUEUE_CLAIM_AHEAD_MS", min: 0, max: 1000, default: 2,
    meaning: "claim beyond the free workers as many short jobs as they run in this long (0: never), so a claim fetches more at once; a job submitted later waits behind them about this long",
  }),
  leaseMs: int({ flag: "--lease-ms", env: "JOBQUEUE_LEASE_MS", min: 1000, max: DAY_MS, default: 30_000, meaning: "a claimed job returns to pending if its lease is not extended within this time" }),
  agingMs: int({ flag: "--aging-ms", env: "JOBQUEUE_AGING_MS", min: 0, max: DAY_MS, default: 1000, meaning: "waiting this long is worth one priority level (0: priority is ignored, first ready runs first)" }),
  shutdownGraceMs: int({ flag: "--shutdown-grace-ms", env: "JOBQUEUE_SHUTDOWN_GRACE_MS", min: 0, max: 3_600_000, default: 25_000, meaning: "on SIGTERM, time running jobs get to finish before they are aborted" }),
  nodeId: {
    flag: "--node-id",
    env: "JOBQUEUE_NODE_ID",
    arg: "<id>",
    meaning: "owner name on claimed jobs, held by one live process at a time (a second one with the same id is refused at start); stable across restarts, so a restart after a crash takes its jobs back at once",
    accepts: "1-200 characters",
    defaultText: "<hostname>:<port>, or <hostname>:0-<pid>.<random> with --port 0",
    default: (ctx) => (ctx.config.port === 0 ? `${ctx.hostname}:0-${ctx.instance}` : `${ctx.hostname}:${ctx.config.port}`),
    parse: (raw) => {
      if (raw.length < 1 || raw.length > 200) throw new Expected("1 to 200 characters");
      return raw;
    },
  },
  logLevel: {
    flag: "--log-level",
    env: "JOBQUEUE_LOG_LEVEL",
    arg: "<level>",
    meaning: "least severe log level written to stderr",
    accepts: LOG_LEVELS.join("|"),
    default: "info",
    parse: (raw) => {
      const level = LOG_LEVELS.find((l) => l === raw);
      if (level === undefined) throw new Expected(`one of ${LOG_LEVELS.join(", ")}`);
      return level;
    },
  },
  reapIntervalMs: int({ flag: "--reap-interval-ms", env: "JOBQUEUE_REAP_INTERVAL_MS", min: 100, max: 600_000, default: 2000, meaning: "how often expired leases are looked for" }),
  backoffBaseMs: int({ flag: "--backoff-base-ms", env: "JOBQUEUE_BACKOFF_BASE_MS", min: 1, max: DAY_MS, default: 1000, meaning: "ceiling of the random delay before the first retry (full jitter); doubles with each attempt up to --backoff-cap-ms" }),
  backoffCapMs: {
    flag: "--backoff-cap-ms",
    env: "JOBQUEUE_BACKOFF_CAP_MS",
    arg: "<ms>",
    meaning: "longest delay between retries",
    accepts: `--backoff-base-ms to ${WEEK_MS}`,
    default: "3600000",
    parse: (raw, ctx) => {
      const base = ctx.config.backoffBaseMs ?? 1;
      const expected = `an integer from ${base} (--backoff-base-ms) to ${WEEK_MS}`;
      try {
        return integer(raw, base, WEEK_MS);
      } catch {
        throw new Expected(expected);
      }
    },
  },
  defaultTimeoutMs: int({ flag: "--timeout-ms", env: "JOBQUEUE_TIMEOUT_MS", min: 1, max: DAY_MS, default: 30_000, meaning: "time limit of one attempt, for job types that set none" }),
  defaultMaxAttempts: int({ flag: "--max-attempts", env: "JOBQUEUE_MAX_ATTEMPTS", min: 1, max: 100, default: 5, meaning: "runs before a job is dead-lettered, for job types that set none" }),
  bodyLimitBytes: int({ flag: "--body-limit-bytes", env: "JOBQUEUE_BODY_LIMIT_BYTES", min: 1024, max: 104_857_600, default: 1_048_576, meaning: "largest accepted request body" }),
  maxQueued: int({ flag: "--max-queued", env: "JOBQUEUE_MAX_QUEUED", min: 0, max: 1_000_000_000, default: 1_000_000, meaning: "submits that would queue more jobs than this (ready + scheduled on this node) get 429 queue_full; 0: no limit" }),
  maxPendingBytes: int({ flag: "--max-pending-bytes", env: "JOBQUEUE_MAX_PENDING_BYTES", min: 0, max: 17_179_869_184, default: 67_108_864, meaning: "most bytes of submitted jobs held while they wait for the store to commit them (a stalled database); submits beyond get 503 overloaded; 0: no limit" }),
  keepCompletedMs: {
    flag: "--keep-completed",
    env: "JOBQUEUE_KEEP_COMPLETED",
    arg: "<duration>",
    meaning: "keep a small record of each completed job this long (GET /jobs/:id then answers state completed); 0 keeps none",
    accepts: `0 or a duration like 90s, 30m, 24h, 7d (${DURATION_UNITS}; at most 365d)`,
    default: "0",
    parse: (raw) => {
      const ms = durationMs(/^\d{1,16}$/.test(raw) ? Number(raw) : raw);
      if (ms === null || ms > 365 * DAY_MS) throw new Expected(`0 or a duration like 90s, 30m, 24h, 7d (at most 365d)`);
      return ms;
    },
  },
  idleTimeoutS: int({ flag: "--idle-timeout-s", env: "JOBQUEUE_IDLE_TIMEOUT_S", min: 1, max: 255, default: 30, meaning: "a connection that is idle, or whose request body is still arriving, this long is closed (slow clients)" }),
  token: {
    flag: "--token",
    env: "JOBQUEUE_TOKEN",
    arg: "<token>",
    meaning: "require Authorization: Bearer <token> on every endpoint but /health, /ready, the /ui page and /openapi.json (prefer the env var or --token-file: flags show in ps)",
    accepts: TOKEN_RULE,
    defaultText: "(unset: no auth)",
    secret: "all",
    parse: (raw) => {
      if (!isValidToken(raw)) throw new Expected(TOKEN_RULE);
      return raw;
    },
  },
  tokenFile: {
    flag: "--token-file",
    env: "JOBQUEUE_TOKEN_FILE",
    arg: "<path>",
    meaning: "read the token from this file at start (trimmed); not with --token",
    accepts: "a file path",
    defaultText: "(unset)",
    parse: nonEmpty,
  },
  allowedHosts: {
    flag: "--allowed-hosts",
    env: "JOBQUEUE_ALLOWED_HOSTS",
    arg: "<hosts>",
    meaning: "without a token, requests are served only when their Host is a loopback name (localhost, *.localhost, 127.0.0.0/8, [::1]) or one of these; /health and /ready answer any Host",
    accepts: `comma-separated ${ALLOWED_HOST_RULE}`,
    defaultText: "(none)",
    default: "",
    parse: (raw) => {
      const hosts = raw.split(",").map((h) => h.trim()).filter((h) => h !== "");
      const bad = hosts.find((h) => !isAllowedHostPattern(h));
      if (bad !== undefined) throw new Expected(`comma-separated ${ALLOWED_HOST_RULE}; ${JSON.stringify(bad)} is none of these`);
      return hosts.map((h) => h.toLowerCase());
    },
  },
  noListen: {
    flag: "--no-listen",
    env: "JOBQUEUE_NO_LISTEN",
    arg: "[true|false]",
    meaning: "PostgreSQL: do not LISTEN for other nodes' new-job hints (for PgBouncer transaction pooling); idle nodes then poll every --reap-interval-ms",
    accepts: "true|false",
    default: "false",
    boolean: true,
    parse: bool,
  },
  metricsPublic: {
    flag: "--metrics-public",
    env: "JOBQUEUE_METRICS_PUBLIC",
    arg: "[true|false]",
    meaning: "serve /metrics without the token",
    accepts: "true|false",
    default: "false",
    boolean: true,
    parse: bool,
  },
  webhookSecret: {
    flag: "--webhook-secret",
    env: "JOBQUEUE_WEBHOOK_SECRET",
    arg: "<secret>",
    meaning: "sign webhook deliveries (Standard Webhooks, HMAC-SHA256) of types that set no secret of their own",
    accepts: ANY_SECRET_RULE,
    defaultText: "(unset: unsigned)",
    secret: "all",
    // Which scheme it signs with is each type's choice: loadJobTypes checks it against each type it signs.
    parse: (raw) => {
      if (!isValidSecret(raw)) throw new Expected(ANY_SECRET_RULE);
      return raw;
    },
  },
};

export const KEYS = Object.keys(OPTIONS) as (keyof Config)[];
export const specOf = (key: keyof Config): Spec<unknown> & { default?: string | ((ctx: Ctx) => string) } => OPTIONS[key];
