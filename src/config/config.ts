// config.ts: turns env + argv into a checked Config (flag > env > default) from one option table,
// which also writes --help. Pure: never reads process.env or process.argv, never exits or prints.

import { ConfigError, Expected } from "../errors.ts";
import type { LogLevel } from "../logger.ts";
import type { HttpSettings } from "../http/app.ts";
import type { QueueSettings } from "../queue/jobqueue.ts";
import { BOOLEAN_WORDS, KEYS, OPTIONS, specOf, type Ctx } from "./options.ts";


/** The checked settings. Meanings, ranges and defaults are in OPTIONS below. */
export type Config = {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  dbPath: string;
  sqliteSynchronous: "FULL" | "NORMAL";
  configPath: string | undefined;
  workers: number;
  claimAheadMs: number;
  leaseMs: number;
  agingMs: number;
  shutdownGraceMs: number;
  nodeId: string;
  logLevel: LogLevel;
  reapIntervalMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  defaultTimeoutMs: number;
  defaultMaxAttempts: number;
  bodyLimitBytes: number;
  maxQueued: number;
  maxPendingBytes: number;
  keepCompletedMs: number;
  idleTimeoutS: number;
  token: string | undefined;
  tokenFile: string | undefined;
  metricsPublic: boolean;
  allowedHosts: string[];
  noListen: boolean;
  webhookSecret: string | undefined;
};

export type Command = "serve" | "migrate" | "init" | "check-config" | "help" | "version";
/** `file`: the path after init or check-config, when one was given. */
export type LoadResult = { command: Command; config: Config; file?: string };

/** The commands of the command line, as --help shows them (client commands: src/client/cli.ts). */
const COMMANDS = {
  serve: { usage: "serve", meaning: "run the queue server (the default)" },
  migrate: { usage: "migrate", meaning: "create or upgrade the database schema, then exit" },
  init: { usage: "init [file]", meaning: "write a commented starter job types file (default ./jobqueue.toml), never over an existing file" },
  "check-config": {
    usage: "check-config [file]",
    meaning: "check a job types file (default --config) as serve would, start nothing: exit 0 with a summary, 2 with the error",
  },
} as const;
/** Commands that take one path after them. */
const TAKES_FILE = new Set<string>(["init", "check-config"]);


// ---- parsing -------------------------------------------------------------------------------

const isHelp = (a: string) => a === "--help" || a === "-h";
const isVersion = (a: string) => a === "--version" || a === "-v";

/**
 * Reads argv (the arguments after the executable) and env into a command and a checked config.
 * --help and --version win over everything else and come with the defaults, so a bad setting
 * never hides the help text. Throws ConfigError on any bad flag, argument or value. `instance`
 * makes the default node id unique per process when the port is 0 (main.ts passes its pid and a
 * random suffix); it is the only input not read from env and argv.
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  argv: string[],
  hostname: string,
  instance: string = crypto.randomUUID().slice(0, 8),
): LoadResult {
  const host = { hostname, instance };
  if (argv.some(isHelp)) return { command: "help", config: resolve({}, new Map(), host) };
  if (argv.some(isVersion)) return { command: "version", config: resolve({}, new Map(), host) };

  const byFlag = new Map(KEYS.map((key) => [OPTIONS[key].flag, key]));
  const flags = new Map<keyof Config, string>();
  let command: keyof typeof COMMANDS | undefined;
  let file: string | undefined;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-")) {
      if (command !== undefined && TAKES_FILE.has(command) && file === undefined) {
        file = arg;
        continue;
      }
      if (command !== undefined) throw new ConfigError(`unexpected argument "${arg}": the command is already ${command}`);
      if (!Object.hasOwn(COMMANDS, arg)) {
        throw new ConfigError(`unknown command "${arg}": expected ${Object.keys(COMMANDS).join(", ")} (see --help)`);
      }
      command = arg as keyof typeof COMMANDS;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const key = byFlag.get(name);
    if (key === undefined) {
      if (isHelp(name) || isVersion(name)) throw new ConfigError(`${name} takes no value`);
      throw new ConfigError(`unknown option ${JSON.stringify(name)} (see --help)`);
    }
    let value: string;
    if (eq !== -1) {
      value = arg.slice(eq + 1);
    } else if (specOf(key).boolean && !BOOLEAN_WORDS.has(argv[i + 1]?.toLowerCase() ?? "")) {
      value = "true";
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) {
        throw new ConfigError(`missing value for ${name} (give ${name} <value> or ${name}=<value>)`);
      }
      value = next;
      i++;
    }
    flags.set(key, value);
  }

  return { command: command ?? "serve", config: resolve(env, flags, host), ...(file !== undefined && { file }) };
}

function resolve(env: Record<string, string | undefined>, flags: Map<keyof Config, string>, host: Omit<Ctx, "config">): Config {
  const config: Partial<Config> = {};
  const ctx: Ctx = { ...host, config };
  const out = config as Record<string, unknown>;
  for (const key of KEYS) {
    const spec = specOf(key);
    const envValue = env[spec.env] === "" ? undefined : env[spec.env];
    const fallback = typeof spec.default === "function" ? spec.default(ctx) : spec.default;
    const raw = flags.get(key) ?? envValue ?? fallback;
    if (raw === undefined) {
      out[key] = undefined;
      continue;
    }
    try {
      out[key] = spec.parse(raw, ctx);
    } catch (err) {
      if (!(err instanceof Expected)) throw err;
      const origin = flags.has(key) || envValue !== undefined ? "" : " (the default)";
      throw new ConfigError(`invalid ${spec.flag} / ${spec.env} ${show(raw, spec.secret)}${origin}: expected ${err.message}`);
    }
  }
  if (config.token !== undefined && config.tokenFile !== undefined) {
    throw new ConfigError("--token / JOBQUEUE_TOKEN and --token-file / JOBQUEUE_TOKEN_FILE are both set: give only one");
  }
  return config as Config;
}

/** A value quoted on one line, cut if long; of a secret nothing, or only its URL scheme, is shown. */
function show(raw: string, secret?: "all" | "scheme"): string {
  const text =
    secret === "all" ? "…" : secret === "scheme" ? (/^[a-z][a-z0-9+.-]*:/i.exec(raw)?.[0] ?? "") + "…" : raw;
  return JSON.stringify(text.length > 80 ? text.slice(0, 80) + "…" : text);
}

// ---- help ----------------------------------------------------------------------------------

/** Usage, commands and every option with its flag, env var, default, range and meaning. */
export function helpText(): string {
  const lines = [
    "Usage: jobqueue [serve|migrate|init [file]|check-config [file]] [options]",
    "",
    "A durable priority job queue server.",
    "",
    "Commands:",
    ...Object.values(COMMANDS).map(({ usage, meaning }) => `  ${usage.padEnd(22)}${meaning}`),
    "",
    "Options (a flag beats its environment variable, which beats the default;",
    "--flag value and --flag=value both work; empty variables count as unset):",
  ];
  for (const key of KEYS) {
    const spec = specOf(key);
    const def = spec.defaultText ?? (typeof spec.default === "string" ? spec.default : "");
    lines.push(`  ${`${spec.flag} ${spec.arg}`.padEnd(30)}${spec.env.padEnd(28)}default ${def}`);
    lines.push(`      ${spec.meaning} [${spec.accepts}]`);
  }
  lines.push("  -h, --help                    print this help and exit");
  lines.push("  -v, --version                 print the version, git commit and target, and exit");
  return lines.join("\n") + "\n";
}

// ---- what the parts take -------------------------------------------------------------------

/** Every option at its default: the settings a library user starts from (see queueSettings). */
export function defaultConfig(hostname = "localhost"): Config {
  return loadConfig({}, [], hostname, "library").config;
}

/** The queue's settings from a Config (createJobQueue takes them resolved, so defaults live only in the option table). */
export function queueSettings(config: Config): QueueSettings {
  return {
    nodeId: config.nodeId,
    workers: config.workers,
    claimAheadMs: config.claimAheadMs,
    leaseMs: config.leaseMs,
    agingMs: config.agingMs,
    reapIntervalMs: config.reapIntervalMs,
    backoff: { baseMs: config.backoffBaseMs, capMs: config.backoffCapMs },
    maxPendingBytes: config.maxPendingBytes,
    keepCompletedMs: config.keepCompletedMs,
    listen: !config.noListen,
  };
}

/** The HTTP app's settings from a Config. */
export function httpSettings(config: Config): HttpSettings {
  return { bodyLimitBytes: config.bodyLimitBytes, maxQueued: config.maxQueued };
}
