#!/usr/bin/env bun
// main.ts: the executable. Reads the environment and arguments, runs a command (serve, migrate,
// init, check-config, --help, --version, the client and store commands), and owns process concerns:
// signals, exit codes, last-resort error logs.
import { hostname } from "node:os";
import { versionLine } from "./build-info.ts";
import { checkTypesFile } from "./commands/check-config.ts";
import { DEFAULT_TYPES_PATH, writeStarterTypes } from "./commands/init.ts";
import { CLIENT_HELP, isClientCommand, runClientCommand } from "./client/cli.ts";
import { helpText, loadConfig } from "./config/config.ts";
import { TYPES_FILE_HELP } from "./config/types-file.ts";
import { ConfigError, NodeIdInUseError } from "./errors.ts";
import { createLogger } from "./logger.ts";
import { STORE_HELP, isStoreCommand, runStoreCommand } from "./commands/store-commands.ts";
import { openStore, startServer } from "./server.ts";

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (isClientCommand(argv[0])) {
    if (argv.includes("--help") || argv.includes("-h")) {
      process.stdout.write(CLIENT_HELP);
      return 0;
    }
    return runClientCommand(argv, process.env, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
  }
  if (isStoreCommand(argv[0])) {
    if (argv.includes("--help") || argv.includes("-h")) {
      process.stdout.write(STORE_HELP);
      return 0;
    }
    return runStoreCommand(argv, process.env, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
  }
  let loaded;
  try {
    loaded = loadConfig(process.env, process.argv.slice(2), hostname(), `${process.pid}.${crypto.randomUUID().slice(0, 4)}`);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`jobqueue: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const { command, config, file } = loaded;
  if (command === "help") {
    process.stdout.write(helpText() + "\n" + TYPES_FILE_HELP + CLIENT_HELP + STORE_HELP);
    return 0;
  }
  if (command === "version") {
    process.stdout.write(versionLine() + "\n");
    return 0;
  }
  if (command === "init") {
    const path = file ?? DEFAULT_TYPES_PATH;
    const result = await writeStarterTypes(path);
    if (!result.written) {
      process.stderr.write(`jobqueue: ${result.reason}\n`);
      return 1;
    }
    process.stdout.write(`wrote ${path}: check it with \`jobqueue check-config ${path}\`, start with \`jobqueue serve --config ${path}\`\n`);
    return 0;
  }
  if (command === "check-config") {
    const path = file ?? config.configPath;
    if (path === undefined) {
      process.stderr.write("jobqueue: check-config: name a job types file (jobqueue check-config jobs.toml) or set --config / JOBQUEUE_CONFIG\n");
      return 2;
    }
    try {
      process.stdout.write((await checkTypesFile(path, config, process.env)) + "\n");
      return 0;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`jobqueue: ${err.message}\n`);
      return 2;
    }
  }
  const logger = createLogger(config.logLevel);
  process.on("unhandledRejection", (err) => logger.error("unhandled rejection", { err }));
  process.on("uncaughtException", (err) => logger.error("uncaught exception", { err }));

  if (command === "migrate") {
    const store = openStore(config, logger);
    try {
      await store.migrate();
      logger.info("migrated", { store: store.kind, location: store.location });
    } finally {
      await store.close();
    }
    return 0;
  }

  // Signal handlers go in before start-up, so a SIGTERM that arrives while the queue is loading
  // (or the instant after "listening") still means a graceful stop, never a default kill.
  let signals = 0;
  let stopRequested: (sig: string) => void = () => {};
  const requested = new Promise<string>((resolve) => (stopRequested = resolve));
  const exitNow = new Promise<number>((resolve) => {
    const onSignal = (sig: string) => {
      signals++;
      if (signals > 1) {
        // Nothing is lost: every acknowledged job is in the database; leases bring running ones back.
        logger.warn("second signal: exiting at once", { signal: sig });
        resolve(1);
        return;
      }
      stopRequested(sig);
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
  });
  // SIGHUP reads the types file again (its default action would kill the process, so it is caught
  // from the start; before the server runs there is nothing to reload yet).
  let reload: () => Promise<unknown> = async () => logger.warn("SIGHUP before the server started: nothing to reload");
  process.on("SIGHUP", () => void reload());

  let fatal = false;
  const graceful = (async () => {
    const server = await startServer({
      config, logger, env: process.env,
      onFatal: () => {
        fatal = true;
        stopRequested("fatal");
      },
    });
    reload = () => server.reload();
    const sig = await requested;
    logger.info(fatal ? "stopping after a fatal error" : "signal received: shutting down", { signal: sig, graceMs: config.shutdownGraceMs });
    await server.stop(config.shutdownGraceMs);
    return fatal ? 1 : 0;
  })();
  return await Promise.race([graceful, exitNow]);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "fatal", err: message })}\n`);
    // A setting the operator must change (a bad option, a node id another process holds): 2.
    process.exit(err instanceof ConfigError || err instanceof NodeIdInUseError ? 2 : 1);
  },
);
