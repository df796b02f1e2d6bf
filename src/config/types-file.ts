// types-file.ts: reads and checks the job types file (TOML or JSON) into one TypeConfig per type,
// resolving secret_env from the env it is handed. Says what each type runs (webhook, command or
// builtin); builds no handlers, sends no requests, runs nothing, and never puts a secret or header
// value in an error message.

import { readFile } from "node:fs/promises";
import { dirname, extname, resolve as resolvePath } from "node:path";
import { z } from "zod";
import { ConfigError } from "../errors.ts";
import { DURATION_UNITS, durationMs } from "./duration.ts";
import { DEFAULT_SIGNATURE_SCHEME, SIGNATURE_SCHEMES, SIGNING_HEADERS, secretProblem, type SignatureScheme } from "../handlers/signing.ts";
import { flowKeys, toFlowPolicy, type FlowPolicy } from "./flow-policy.ts";
import { schedulesSchema, toSchedules, type ScheduleConfig } from "./schedules.ts";

/** Per-type policy beyond timeout and attempts; each field only present when the file sets it. */
export interface TypeExtras {
  /** Default priority of the type's jobs (0-100). */
  priority?: number;
  /** Most jobs of this type running at once in one process. */
  concurrency?: number;
  /** Retry backoff for this type; a missing half falls back to --backoff-base-ms / --backoff-cap-ms. */
  backoff?: { baseMs?: number; capMs?: number };
  /** Rate limits, per-key limits, pushback and breaker settings (only present when the file sets any). */
  flow?: FlowPolicy;
}

export type TypeConfig = TypeExtras & (
  | {
      kind: "webhook";
      url: string;
      timeoutMs: number;
      maxAttempts: number;
      headers: Record<string, string>;
      /** Signs deliveries; only present when the type sets one (checked against `signature`). */
      secret?: string;
      /** How deliveries are signed (default "standard": Standard Webhooks); only present when the type sets it. */
      signature?: SignatureScheme;
    }
  | {
      kind: "exec";
      /** The program and its arguments; a relative program path ("./bin/x") is resolved against the types file's folder. */
      command: string[];
      timeoutMs: number;
      maxAttempts: number;
    }
  | { kind: "noop"; timeoutMs: number; maxAttempts: number }
  /** Remote workers ask for its jobs over HTTP (POST /claim). */
  | { kind: "pull"; timeoutMs: number; maxAttempts: number });

export type TypeDefaults = { timeoutMs: number; maxAttempts: number };

/** The types file's keys, for --help (docs/configuration.md has the full table). */
export const TYPES_FILE_HELP = `Job types file (--config), one [types.<name>] table per type:
  url = "http://…" | command = ["./bin/x"] | builtin = "noop" | pull = true   what runs a job (exactly one;
                    pull: workers ask for jobs over HTTP, POST /claim)
  timeout = "30s"   max_attempts = 5   priority = 0-100   concurrency = N (per process)
  backoff = { base = "1s", cap = "1h" }
  headers = { … }   secret = "whsec_…" | secret_env = "NAME"  (webhooks)
  signature = "standard" | "jobqueue-v1"   Standard Webhooks headers (default) or x-jobqueue-signature
Flow control (docs/flow-control.md), kept in the store for every node together:
  rate = "100/m" | { limit = 100, per = "1m", burst = 20 }    starts of the type
  key_concurrency = 2    key_rate = "10/s"                     per job key (submit's "key")
  max_throttles = 20     breaker = { failures = 10, cool = "30s" }   (targets that push back)
Recurring jobs, one [schedules.<name>] table each (docs/configuration.md#recurring-schedules):
  cron = "0 3 * * *" | every = "30s"   type = "<a type>"   payload = { … }   timezone = "UTC"
  priority = 0-100   key = "…"   catch_up = "none" | "last" | "all"
`;

const MAX_TIMEOUT_MS = 86_400_000;
const MAX_BACKOFF_MS = 7 * MAX_TIMEOUT_MS;
const MAX_CONCURRENCY = 10_000;
const DURATION_EXPECTED = `expected a duration like "30s" (units ${DURATION_UNITS}) or a whole number of milliseconds`;

/** "250ms" | "30s" | "5m" | "1h" | a whole number of ms → ms. Throws ConfigError on anything else. */
export function parseDurationMs(s: string | number): number {
  const ms = durationMs(s);
  if (ms === null) throw new ConfigError(`${DURATION_EXPECTED}, got ${typeof s === "number" ? s : JSON.stringify(s)}`);
  return ms;
}

const TYPE_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[^\r\n\0]*$/;
/** Headers the webhook handler sets itself; a types file may not set or shadow them. */
const RESERVED_HEADERS = new Set(["content-type", "x-job-id", "x-job-attempt", "traceparent", ...SIGNING_HEADERS]);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,200}$/;

const isHttpUrl = (s: string) => {
  try {
    const u = new URL(s);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
};

const timeout = z
  .union([z.string(), z.number()], { error: 'expected a duration like "30s"' })
  .transform((v, ctx) => {
    let ms: number;
    try {
      ms = parseDurationMs(v);
    } catch {
      ctx.addIssue({ code: "custom", message: 'expected a duration like "30s"' });
      return z.NEVER;
    }
    if (ms < 1 || ms > MAX_TIMEOUT_MS) {
      ctx.addIssue({ code: "custom", message: "expected a duration from 1ms to 24h" });
      return z.NEVER;
    }
    return ms;
  });

/** A duration from 1 ms to 7 days, for backoff. */
const backoffDuration = z
  .union([z.string(), z.number()], { error: 'expected a duration like "1s"' })
  .transform((v, ctx) => {
    let ms: number;
    try {
      ms = parseDurationMs(v);
    } catch {
      ctx.addIssue({ code: "custom", message: 'expected a duration like "1s"' });
      return z.NEVER;
    }
    if (ms < 1 || ms > MAX_BACKOFF_MS) {
      ctx.addIssue({ code: "custom", message: "expected a duration from 1ms to 168h" });
      return z.NEVER;
    }
    return ms;
  });

const intFrom = (min: number, max: number) => {
  const error = `expected an integer from ${min} to ${max}`;
  return z.number({ error }).int(error).min(min, error).max(max, error);
};

const typeEntry = z
  .object({
    url: z.string({ error: "expected a URL string" }).refine(isHttpUrl, "expected an http:// or https:// URL").optional(),
    builtin: z.literal("noop", { error: 'expected "noop" (the only builtin)' }).optional(),
    pull: z.literal(true, { error: "expected true (remote workers ask for this type's jobs over HTTP)" }).optional(),
    command: z
      .array(
        z.string({ error: "expected a string" }).min(1, "must not be empty").max(4096, "must be at most 4096 characters")
          .regex(/^[^\0]*$/, "must not contain NUL"),
        { error: 'expected an array of strings like ["./bin/resize", "--stdin"]' },
      )
      .min(1, 'expected an array of strings like ["./bin/resize", "--stdin"]')
      .max(256, "expected at most 256 arguments")
      .optional(),
    timeout: timeout.optional(),
    max_attempts: z
      .number({ error: "expected an integer from 1 to 100" })
      .int("expected an integer from 1 to 100")
      .min(1, "expected an integer from 1 to 100")
      .max(100, "expected an integer from 1 to 100")
      .optional(),
    headers: z
      .record(
        z
          .string()
          .regex(HEADER_NAME, "expected an HTTP header name")
          .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), "is set by the webhook itself and cannot be configured"),
        z.string({ error: "expected a string" }).regex(HEADER_VALUE, "expected a header value without line breaks"),
        { error: "expected a table of header name = value" },
      )
      .optional(),
    // Checked below, against the type's signature scheme.
    secret: z.string({ error: "expected a string" }).optional(),
    secret_env: z
      .string({ error: "expected the name of an environment variable" })
      .regex(ENV_NAME, "expected the name of an environment variable")
      .optional(),
    signature: z
      .enum(SIGNATURE_SCHEMES, { error: 'expected "standard" (the Standard Webhooks headers) or "jobqueue-v1" (the x-jobqueue-signature header)' })
      .optional(),
    priority: intFrom(0, 100).optional(),
    concurrency: intFrom(1, MAX_CONCURRENCY).optional(),
    backoff: z
      .object({ base: backoffDuration.optional(), cap: backoffDuration.optional() }, { error: 'expected a table like { base = "1s", cap = "1h" }' })
      .strict()
      .refine((b) => b.base === undefined || b.cap === undefined || b.base <= b.cap, { message: "base must not be above cap", path: ["base"] })
      .optional(),
    ...flowKeys,
  }, { error: "expected a table with url, builtin, command or pull" })
  .strict()
  .superRefine((t, ctx) => {
    if ([t.url, t.builtin, t.command, t.pull].filter((x) => x !== undefined).length !== 1) {
      ctx.addIssue({ code: "custom", message: "expected exactly one of url, builtin, command or pull" });
    } else if (t.headers !== undefined && t.url === undefined) {
      ctx.addIssue({ code: "custom", path: ["headers"], message: "only allowed with url" });
    } else if (t.url === undefined && (t.secret !== undefined || t.secret_env !== undefined)) {
      ctx.addIssue({ code: "custom", path: [t.secret !== undefined ? "secret" : "secret_env"], message: "only allowed with url" });
    } else if (t.secret !== undefined && t.secret_env !== undefined) {
      ctx.addIssue({ code: "custom", path: ["secret_env"], message: "give secret or secret_env, not both" });
    } else if (t.url === undefined && t.signature !== undefined) {
      ctx.addIssue({ code: "custom", path: ["signature"], message: "only allowed with url" });
    } else if (t.secret !== undefined && secretProblem(t.signature ?? DEFAULT_SIGNATURE_SCHEME, t.secret) !== null) {
      ctx.addIssue({ code: "custom", path: ["secret"], message: secretProblem(t.signature ?? DEFAULT_SIGNATURE_SCHEME, t.secret)! });
    } else if (t.breaker !== undefined && t.url === undefined) {
      ctx.addIssue({ code: "custom", path: ["breaker"], message: "only allowed with url (it watches the target host)" });
    }
  });

const typesFile = z
  .object({
    types: z
      .record(
        z.string().regex(TYPE_NAME, "expected a type name of 1-100 characters from A-Z a-z 0-9 _ . : -"),
        typeEntry,
        { error: "expected a table of job types" },
      )
      .refine((types) => Object.keys(types).length > 0, "expected at least one job type"),
    schedules: schedulesSchema.optional(),
  }, { error: 'expected a table with a "types" section' })
  .strict();

/** A types file's job types and its recurring schedules. */
export interface TypesFile {
  types: Map<string, TypeConfig>;
  schedules: ScheduleConfig[];
  /** SHA-256 of the file's bytes, hex (readTypesFile only): which version of the file is in force. */
  hash?: string;
}

/** parseTypesFile's job types alone. */
export function parseTypesConfig(...args: Parameters<typeof parseTypesFile>): Map<string, TypeConfig> {
  return parseTypesFile(...args).types;
}

/**
 * Checks the text of a types file. `source` names the file in error messages, which are one line:
 * `jobs.toml: types.email.timeout: expected a duration like "30s"`. `env` is where `secret_env`
 * names are looked up (main.ts hands in the process environment).
 */
export function parseTypesFile(
  text: string,
  format: "toml" | "json",
  defaults: TypeDefaults,
  source = `types file (${format})`,
  env: Record<string, string | undefined> = {},
  /** The types file's folder: relative command paths ("./bin/x") are resolved against it. */
  baseDir?: string,
): TypesFile {
  let data: unknown;
  try {
    data = format === "toml" ? Bun.TOML.parse(text) : JSON.parse(text);
  } catch (err) {
    // Parsers quote the offending text, which may be a secret or a header value: elide what they
    // quote, keeping only short tokens such as "]" that say what was expected.
    const why = (err instanceof Error ? err.message : String(err)).replace(/"[^"]{4,}("|$)|'[^']{4,}('|$)/g, '"…"');
    throw new ConfigError(`${source}: not valid ${format.toUpperCase()}: ${why.replace(/\s+/g, " ")}`);
  }
  const parsed = typesFile.safeParse(data);
  if (!parsed.success) throw new ConfigError(`${source}: ${describe(parsed.error.issues[0])}`);

  const types = new Map<string, TypeConfig>();
  for (const [name, t] of Object.entries(parsed.data.types)) {
    const timeoutMs = t.timeout ?? defaults.timeoutMs;
    const maxAttempts = t.max_attempts ?? defaults.maxAttempts;
    const flow = toFlowPolicy(t);
    const extras: TypeExtras = {
      ...(Object.keys(flow).length > 0 && { flow }),
      ...(t.priority !== undefined && { priority: t.priority }),
      ...(t.concurrency !== undefined && { concurrency: t.concurrency }),
      ...(t.backoff !== undefined && {
        backoff: { ...(t.backoff.base !== undefined && { baseMs: t.backoff.base }), ...(t.backoff.cap !== undefined && { capMs: t.backoff.cap }) },
      }),
    };
    if (t.command !== undefined) {
      const [program, ...args] = t.command;
      const resolved = baseDir !== undefined && /^\.\.?\//.test(program!) ? resolvePath(baseDir, program!) : program!;
      types.set(name, { kind: "exec", command: [resolved, ...args], timeoutMs, maxAttempts, ...extras });
      continue;
    }
    if (t.pull === true) {
      types.set(name, { kind: "pull", timeoutMs, maxAttempts, ...extras });
      continue;
    }
    if (t.url === undefined) {
      types.set(name, { kind: "noop", timeoutMs, maxAttempts, ...extras });
      continue;
    }
    const scheme = t.signature ?? DEFAULT_SIGNATURE_SCHEME;
    const secret = t.secret ?? (t.secret_env !== undefined ? secretFromEnv(env, t.secret_env, scheme, `${source}: ${keyPath(["types", name, "secret_env"])}`) : undefined);
    types.set(name, {
      kind: "webhook", url: t.url, timeoutMs, maxAttempts, headers: t.headers ?? {},
      ...(secret !== undefined && { secret }),
      ...(t.signature !== undefined && { signature: t.signature }),
      ...extras,
    });
  }
  const { schedules, problem } = toSchedules(parsed.data.schedules ?? {}, new Set(types.keys()));
  if (problem) throw new ConfigError(`${source}: ${keyPath(problem.path)}: ${problem.message}`);
  return { types, schedules };
}

/** The value of the variable a secret_env names; errors name the variable, never a value. */
function secretFromEnv(env: Record<string, string | undefined>, name: string, scheme: SignatureScheme, where: string): string {
  const value = env[name];
  if (value === undefined || value === "") throw new ConfigError(`${where}: environment variable ${name} is not set`);
  const problem = secretProblem(scheme, value);
  if (problem !== null) throw new ConfigError(`${where}: environment variable ${name}: ${problem}`);
  return value;
}

/** Reads a .toml or .json types file; errors name the path. */
export async function loadTypesFile(
  path: string,
  defaults: TypeDefaults,
  env: Record<string, string | undefined> = {},
): Promise<Map<string, TypeConfig>> {
  return (await readTypesFile(path, defaults, env)).types;
}

/** loadTypesFile, with the file's [schedules] too. */
export async function readTypesFile(
  path: string,
  defaults: TypeDefaults,
  env: Record<string, string | undefined> = {},
): Promise<TypesFile> {
  const ext = extname(path).toLowerCase();
  if (ext !== ".toml" && ext !== ".json") {
    throw new ConfigError(`${path}: unsupported file type ${JSON.stringify(ext)}: expected .toml or .json`);
  }
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`${path}: cannot read the job types file (${code ?? String(err)})`);
  }
  const parsed = parseTypesFile(text, ext === ".toml" ? "toml" : "json", defaults, path, env, dirname(resolvePath(path)));
  return { ...parsed, hash: new Bun.CryptoHasher("sha256").update(text).digest("hex") };
}

/** One zod issue as "key.path: what was expected", keys quoted the way TOML would need them. */
function describe(issue: z.core.$ZodIssue | undefined): string {
  if (issue === undefined) return "invalid";
  const path = issue.path.map((p) => String(p));
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    path.push(issue.keys[0] ?? "");
    message = "unknown key";
  } else if (issue.code === "invalid_key") {
    message = issue.issues[0]?.message ?? message;
  }
  const where = keyPath(path);
  return where === "" ? message : `${where}: ${message}`;
}

/** Keys joined with dots, quoted the way TOML would need them. */
function keyPath(path: string[]): string {
  return path.map((k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k))).join(".");
}
