// check-config.ts: `jobqueue check-config [file]`: loads a job types file the way serve does (the
// same checks and messages, secret_env looked up in the environment, --webhook-secret applied to the
// types it signs) and summarises it. Opens no store and no port, and runs no handler.
import type { Config } from "../config/config.ts";
import { createLogger } from "../logger.ts";
import { loadJobTypes } from "../server.ts";

/** "ok: 3 job types, 1 schedule". Throws ConfigError, with serve's message, when the file is not valid. */
export async function checkTypesFile(path: string, config: Config, env: Record<string, string | undefined>): Promise<string> {
  const { registry, schedules } = await loadJobTypes({ ...config, configPath: path }, createLogger("silent"), env);
  return `ok: ${count(registry.types().length, "job type")}, ${count(schedules.length, "schedule")}`;
}

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;
