// server.ts: starts a whole node from a Config: reads the token, picks the store, loads the job
// types, starts the queue, then opens the HTTP port behind the edge, origin and token gates. Returns handles to stop
// it. Installs no signal handlers, and never logs a token, a secret or a database password.
import { isLoopbackHost, loadToken } from "./config/access.ts";
import { httpSettings, queueSettings, type Config } from "./config/config.ts";
import type { Hono } from "hono";
import { createApp } from "./http/app.ts";
import { ConfigError, errorMessage } from "./errors.ts";
import { registryFromTypes } from "./handlers/from-config.ts";
import type { HandlerRegistry } from "./handlers/handler.ts";
import { bearerGate, type FetchHandler } from "./http/auth.ts";
import { edgeGate } from "./http/edge.ts";
import { originGate } from "./http/origin.ts";
import { createJobQueue, type JobQueue } from "./queue/jobqueue.ts";
import type { Logger } from "./logger.ts";
import { createPostgresStore } from "./store/postgres/index.ts";
import { createSqliteStore } from "./store/sqlite/index.ts";
import type { Store } from "./store/store.ts";
import { readTypesFile, type TypeConfig } from "./config/types-file.ts";
import type { ScheduleConfig } from "./config/schedules.ts";

export interface RunningServer {
  queue: JobQueue;
  /** The HTTP API over the queue, without the gates in front of it (for in-process requests). */
  app: Hono;
  url: string;
  port: number;
  /** What the port serves: the app behind the edge, origin and token gates (for in-process requests in tests). */
  fetch: FetchHandler;
  /** Graceful stop: the queue first (submits get 503 meanwhile), then the port. */
  stop(graceMs: number): Promise<void>;
  /**
   * Read the types file again (SIGHUP): a valid one replaces the running job types and schedules for
   * new starts; an invalid one is logged as one error and the running configuration stays. Resolves
   * with whether it took effect.
   */
  reload(): Promise<boolean>;
}

/**
 * The store the config names: DATABASE_URL=postgres://… selects PostgreSQL; sqlite:///abs/path or
 * sqlite:rel/path, or no DATABASE_URL at all (then --db), selects the embedded SQLite store.
 */
export function openStore(config: Config, logger: Logger): Store {
  const url = config.databaseUrl;
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    return createPostgresStore({ url, onNotice: (n) => logger.debug("postgres notice", { notice: n }) });
  }
  const path = url ? sqlitePath(url) : config.dbPath;
  return createSqliteStore({ path, synchronous: config.sqliteSynchronous });
}

/** sqlite:///abs/path → /abs/path; sqlite:rel/path → rel/path. */
export function sqlitePath(url: string): string {
  const rest = url.slice("sqlite:".length);
  const path = rest.startsWith("//") ? rest.slice(2) : rest;
  if (path === "" || path === "/") throw new ConfigError(`DATABASE_URL ${JSON.stringify(url)} names no file: use sqlite:///abs/path or sqlite:rel/path`);
  return path;
}

/** What command types' programs get of the server's environment: nothing that could be a secret. */
const COMMAND_ENV_PASSED = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];

/**
 * The registry of job types from the config file. `env` is where the file's `secret_env` names are
 * looked up, and the few variables command types inherit; --webhook-secret signs the webhook types
 * that set no secret of their own.
 */
export async function loadRegistry(
  config: Config,
  logger: Logger,
  env: Record<string, string | undefined> = {},
): Promise<HandlerRegistry> {
  return (await loadJobTypes(config, logger, env)).registry;
}

/** The job types a types file gave: the registry, its recurring schedules, and what it said (to compare reloads). */
export interface LoadedTypes {
  registry: HandlerRegistry;
  schedules: ScheduleConfig[];
  /** Each type's settings as the file gave them (empty without a file). */
  types: Map<string, TypeConfig>;
  /** The file's SHA-256, when there is a file. */
  hash?: string;
}

/** loadRegistry, with the types file's recurring schedules. */
export async function loadJobTypes(
  config: Config,
  logger: Logger,
  env: Record<string, string | undefined> = {},
): Promise<LoadedTypes> {
  const defaults = { timeoutMs: config.defaultTimeoutMs, maxAttempts: config.defaultMaxAttempts, priority: 0 };
  const commandEnv: Record<string, string> = {};
  for (const name of COMMAND_ENV_PASSED) if (env[name] !== undefined) commandEnv[name] = env[name];
  const webhook = { commandEnv, ...(config.webhookSecret !== undefined && { webhookSecret: config.webhookSecret }) };
  if (!config.configPath) {
    logger.warn("no job types configured (--config / JOBQUEUE_CONFIG): every submit will be refused");
    return { registry: registryFromTypes(new Map(), defaults, webhook), schedules: [], types: new Map() };
  }
  const { types, schedules, hash } = await readTypesFile(config.configPath, defaults, env);
  return { registry: registryFromTypes(types, defaults, webhook), schedules, types, ...(hash !== undefined && { hash }) };
}

/** Which types a reload adds, changes (any setting) and removes, by name. */
export function typesDiff(before: Map<string, TypeConfig>, after: Map<string, TypeConfig>): { added: string[]; changed: string[]; removed: string[] } {
  const added = [...after.keys()].filter((t) => !before.has(t)).sort();
  const removed = [...before.keys()].filter((t) => !after.has(t)).sort();
  const changed = [...after.keys()].filter((t) => before.has(t) && !Bun.deepEquals(before.get(t), after.get(t))).sort();
  return { added, changed, removed };
}

export async function startServer(opts: {
  config: Config;
  logger: Logger;
  registry?: HandlerRegistry;
  /** With `registry`: its recurring schedules (without, they come from the types file). */
  schedules?: ScheduleConfig[];
  store?: Store;
  /** Where the types file's secret_env names are looked up; main.ts passes process.env. */
  env?: Record<string, string | undefined>;
  /** The node can no longer run safely and must stop (see JobQueueOptions.onFatal). */
  onFatal?: (err: Error) => void;
}): Promise<RunningServer> {
  const { config, logger } = opts;
  const token = await loadToken(config);
  if (token === undefined && !isLoopbackHost(config.host)) {
    logger.warn("listening beyond this machine without a token: anyone who can reach the port can submit and read jobs (set JOBQUEUE_TOKEN or --token-file)", { host: config.host });
  }
  const loaded: LoadedTypes | null = opts.registry !== undefined ? null : await loadJobTypes(config, logger, opts.env ?? {});
  const { registry, schedules } = loaded ?? { registry: opts.registry!, schedules: opts.schedules ?? [] };
  const store = opts.store ?? openStore(config, logger);
  logger.info("store selected", { store: store.kind, location: store.location });
  const queue = createJobQueue({
    ...queueSettings(config), store, registry, logger, schedules,
    ...(loaded?.hash !== undefined && { configHash: loaded.hash }),
    ...(opts.onFatal !== undefined && { onFatal: opts.onFatal }),
  });
  try {
    await queue.start();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  const app = createApp(queue.api, httpSettings(config));
  // Outside in: the edge (a readable URL, the body limit), the token (who), the origin (from where).
  const fetch = edgeGate({
    bodyLimitBytes: config.bodyLimitBytes,
    fetch: bearerGate({
      token,
      metricsPublic: config.metricsPublic,
      fetch: originGate({ token, allowedHosts: config.allowedHosts, fetch: app.fetch }),
    }),
  });
  const server = Bun.serve({
    hostname: config.host,
    port: config.port,
    fetch,
    // Hono handles every error itself; this only catches a fault outside it, without details.
    error(err) {
      logger.error("request failed outside the app", { err });
      return Response.json({ error: { code: "internal", message: "internal error" } }, { status: 500 });
    },
    // The app enforces the body limit (a declared length at the edge, streamed bytes in /submit)
    // and answers with its JSON error; a cap of Bun's own would answer first with a bare 413. Bun
    // buffers no body the app does not read (it stops reading the socket), and drains a refused
    // one so the connection serves the next request, so no cap is needed.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    // Closes connections idle this long and requests whose body trickles in slower (Bun also
    // closes a connection whose request headers are not complete within about 10 s).
    idleTimeout: config.idleTimeoutS,
  });
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${server.port}`;
  /** The types file in force (replaced by a good reload). */
  let current = loaded ?? { types: new Map<string, TypeConfig>() };
  logger.info("listening", {
    url, workers: config.workers, node: config.nodeId,
    auth: token === undefined ? "none" : config.metricsPublic ? "bearer (metrics public)" : "bearer",
  });
  return {
    queue,
    app,
    url,
    fetch,
    port: server.port ?? config.port,
    async stop(graceMs) {
      await queue.shutdown(graceMs);
      await server.stop(true);
    },
    async reload() {
      if (loaded === null || !config.configPath) {
        logger.warn("reload asked for, but this server has no types file to read again (--config)");
        return false;
      }
      let next: LoadedTypes;
      try {
        next = await loadJobTypes(config, logger, opts.env ?? {});
      } catch (err) {
        queue.reloadFailed();
        logger.error("the types file was not reloaded: the running configuration stays", { err: errorMessage(err) });
        return false;
      }
      const diff = typesDiff(current.types, next.types);
      await queue.reloadTypes(next.registry, next.schedules, next.hash);
      current = next;
      logger.info("types file reloaded", { ...diff, schedules: next.schedules.length, hash: next.hash });
      return true;
    },
  };
}
