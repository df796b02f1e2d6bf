// server.ts: starts a whole node from a Config: picks the store, loads the job types, starts the
// queue, then opens the HTTP port. Returns handles to stop it. Installs no signal handlers.
import { ConfigError, type Config } from "./config.ts";
import { registryFromTypes } from "./handlers/from-config.ts";
import type { HandlerRegistry } from "./handlers/handler.ts";
import { createJobQueue, type JobQueue } from "./jobqueue.ts";
import type { Logger } from "./logger.ts";
import { createPostgresStore } from "./store/postgres.ts";
import { createSqliteStore } from "./store/sqlite.ts";
import type { Store } from "./store/store.ts";
import { loadTypesFile } from "./types-config.ts";

export interface RunningServer {
  queue: JobQueue;
  url: string;
  port: number;
  /** Graceful stop: the queue first (submits get 503 meanwhile), then the port. */
  stop(graceMs: number): Promise<void>;
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

/** The registry of job types: the config file's, or one handed in by a library user. */
export async function loadRegistry(config: Config, logger: Logger): Promise<HandlerRegistry> {
  const defaults = { timeoutMs: config.defaultTimeoutMs, maxAttempts: config.defaultMaxAttempts, priority: 0 };
  if (!config.configPath) {
    logger.warn("no job types configured (--config / JOBQUEUE_CONFIG): every submit will be refused");
    return registryFromTypes(new Map(), defaults);
  }
  const types = await loadTypesFile(config.configPath, defaults);
  return registryFromTypes(types, defaults);
}

export async function startServer(opts: {
  config: Config;
  logger: Logger;
  registry?: HandlerRegistry;
  store?: Store;
}): Promise<RunningServer> {
  const { config, logger } = opts;
  const registry = opts.registry ?? (await loadRegistry(config, logger));
  const store = opts.store ?? openStore(config, logger);
  logger.info("store selected", { store: store.kind, location: store.location });
  const queue = createJobQueue({
    store, registry, logger,
    nodeId: config.nodeId,
    workers: config.workers,
    leaseMs: config.leaseMs,
    agingMs: config.agingMs,
    reapIntervalMs: config.reapIntervalMs,
    backoff: { baseMs: config.backoffBaseMs, capMs: config.backoffCapMs },
    bodyLimitBytes: config.bodyLimitBytes,
  });
  try {
    await queue.start();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  const server = Bun.serve({
    hostname: config.host,
    port: config.port,
    fetch: queue.app.fetch,
    // Hono enforces the body limit; Bun's own cap sits just above it as a backstop.
    maxRequestBodySize: config.bodyLimitBytes + 1024,
    idleTimeout: 30,
  });
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${server.port}`;
  logger.info("listening", { url, workers: config.workers, node: config.nodeId });
  return {
    queue,
    url,
    port: server.port ?? config.port,
    async stop(graceMs) {
      await queue.shutdown(graceMs);
      await server.stop(true);
    },
  };
}
