// cli.ts: the client subcommands of the executable (submit, stats, schedules, dead list|retry|purge,
// types [pause|resume]), which
// talk to a running server over HTTP with the typed client. Parses its own arguments (flag > env >
// default, like config.ts); prints JSON on stdout and one-line errors on stderr; returns the exit
// code. Reads no process state itself: main.ts hands in argv, env and the output streams.
import { readFile } from "node:fs/promises";
import { JobQueueClientError, createClient, type JobQueueClient, type SubmitJob } from "./client.ts";
import { ConfigError } from "../errors.ts";
import { TOKEN_RULE, isValidToken } from "../config/access.ts";

export const CLIENT_COMMANDS = ["submit", "stats", "schedules", "dead", "types"] as const;

export function isClientCommand(word: string | undefined): boolean {
  return (CLIENT_COMMANDS as readonly string[]).includes(word ?? "");
}

const DEFAULT_URL = "http://127.0.0.1:8080";

export const CLIENT_HELP = `Client commands (talk to a running server):
  jobqueue submit <type> [--payload <json>] [--priority <0-100>] [--idempotency-key <key>] [--delay-ms <ms>]
                  [--key <flow-control key>] [--ttl-ms <ms> | --expires-at <ISO date-time>]
  jobqueue stats
  jobqueue schedules
  jobqueue dead list [--type <type>] [--limit <1-500>] [--after <id>]
  jobqueue dead retry (--type <type> | <id>)
  jobqueue dead purge (--type <type> | <id>)
  jobqueue types                  every job type: policy, paused, jobs running and waiting
  jobqueue types pause <type>     pause a type on every node (its jobs wait; running ones finish)
  jobqueue types resume <type>
Client options:
  --url <url>          JOBQUEUE_URL         default ${DEFAULT_URL}
  --token <token>      JOBQUEUE_TOKEN       bearer token, when the server has one
  --token-file <path>  JOBQUEUE_TOKEN_FILE  read the token from a file (not with --token)
Answers are JSON on stdout. Exit codes: 0 done, 1 the server refused or could not be reached
(or the job or type was not found), 2 bad arguments.
`;

/** What a client command line asks for. */
export interface ClientArgs {
  command: "submit" | "stats" | "schedules" | "dead list" | "dead retry" | "dead purge" | "types" | "types pause" | "types resume";
  /** Positional words after the command (a type for submit and types pause/resume, an id for dead retry/purge). */
  words: string[];
  flags: Map<string, string>;
  url: string;
  token: string | undefined;
  tokenFile: string | undefined;
}

/** Flags each command takes besides --url, --token and --token-file. */
const FLAGS: Record<ClientArgs["command"], string[]> = {
  submit: ["--payload", "--priority", "--idempotency-key", "--delay-ms", "--key", "--ttl-ms", "--expires-at"],
  stats: [],
  schedules: [],
  "dead list": ["--type", "--limit", "--after"],
  "dead retry": ["--type"],
  "dead purge": ["--type"],
  types: [],
  "types pause": [],
  "types resume": [],
};
const COMMON = ["--url", "--token", "--token-file"];

/** Parses a client command line; throws ConfigError with one line on anything wrong. */
export function parseClientArgs(argv: string[], env: Record<string, string | undefined>): ClientArgs {
  let command: ClientArgs["command"];
  let rest: string[];
  if (argv[0] === "dead") {
    const sub = argv[1];
    if (sub !== "list" && sub !== "retry" && sub !== "purge") throw new ConfigError(`dead: expected list, retry or purge, got ${JSON.stringify(sub ?? "")}`);
    command = `dead ${sub}`;
    rest = argv.slice(2);
  } else if (argv[0] === "types") {
    const sub = argv[1];
    if (sub === "pause" || sub === "resume") {
      command = `types ${sub}`;
      rest = argv.slice(2);
    } else if (sub === undefined || sub.startsWith("--")) {
      command = "types";
      rest = argv.slice(1);
    } else {
      throw new ConfigError(`types: expected pause or resume, got ${JSON.stringify(sub)}`);
    }
  } else if (argv[0] === "submit" || argv[0] === "stats" || argv[0] === "schedules") {
    command = argv[0];
    rest = argv.slice(1);
  } else {
    throw new ConfigError(`unknown command ${JSON.stringify(argv[0] ?? "")}`);
  }
  const { words, flags } = splitArgs(command, rest, new Set([...COMMON, ...FLAGS[command]]));
  const { url, token, tokenFile } = clientTarget(flags, env);
  const oneWord: ClientArgs["command"][] = ["submit", "dead retry", "dead purge", "types pause", "types resume"];
  const maxWords = oneWord.includes(command) ? 1 : 0;
  if (words.length > maxWords) throw new ConfigError(`${command}: unexpected argument ${JSON.stringify(words[maxWords])}`);
  if (command === "submit" && words.length === 0) throw new ConfigError("submit: expected a job type: jobqueue submit <type> [--payload <json>]");
  if ((command === "types pause" || command === "types resume") && words.length === 0) {
    throw new ConfigError(`${command}: expected a job type: jobqueue ${command} <type>`);
  }
  if ((command === "dead retry" || command === "dead purge") && (words.length === 0) === !flags.has("--type")) {
    throw new ConfigError(`${command}: give either --type <type> (every dead job of it) or one job id`);
  }
  return { command, words, flags, url, token, tokenFile };
}

/** The server a client command talks to and its token, from --url, --token and --token-file (flag > env > default). */
export function clientTarget(flags: ReadonlyMap<string, string>, env: Record<string, string | undefined>): Pick<ClientArgs, "url" | "token" | "tokenFile"> {
  const emptyIsUnset = (v: string | undefined) => (v === "" ? undefined : v);
  const url = flags.get("--url") ?? emptyIsUnset(env.JOBQUEUE_URL) ?? DEFAULT_URL;
  if (!/^https?:\/\/[^\s]+$/.test(url)) throw new ConfigError(`invalid --url / JOBQUEUE_URL ${JSON.stringify(url)}: expected http://host:port or https://…`);
  const token = flags.get("--token") ?? emptyIsUnset(env.JOBQUEUE_TOKEN);
  const tokenFile = flags.get("--token-file") ?? emptyIsUnset(env.JOBQUEUE_TOKEN_FILE);
  if (token !== undefined && tokenFile !== undefined) {
    throw new ConfigError("--token / JOBQUEUE_TOKEN and --token-file / JOBQUEUE_TOKEN_FILE are both set: give only one");
  }
  if (token !== undefined && !isValidToken(token)) throw new ConfigError(`invalid --token / JOBQUEUE_TOKEN "…": expected ${TOKEN_RULE}`);
  return { url, token, tokenFile };
}

function intFlag(args: ClientArgs, name: string, min: number, max: number): number | undefined {
  const raw = args.flags.get(name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${args.command}: ${name} ${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`);
  }
  return n;
}

/** The token to send: --token's, or the one --token-file holds. */
export async function readToken(args: Pick<ClientArgs, "token" | "tokenFile">): Promise<string | undefined> {
  if (args.tokenFile === undefined) return args.token;
  let text: string;
  try {
    text = await readFile(args.tokenFile, "utf8");
  } catch (err) {
    throw new ConfigError(`--token-file / JOBQUEUE_TOKEN_FILE ${JSON.stringify(args.tokenFile)}: cannot read it (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  const token = text.trim();
  if (!isValidToken(token)) throw new ConfigError(`--token-file / JOBQUEUE_TOKEN_FILE ${JSON.stringify(args.tokenFile)}: expected the file to hold one token of ${TOKEN_RULE}`);
  return token;
}

/** What a parsed command sends and prints; null means "not found" (exit 1). */
async function perform(args: ClientArgs, client: JobQueueClient): Promise<unknown> {
  const type = args.flags.get("--type");
  const id = args.words[0];
  switch (args.command) {
    case "submit": {
      const job: SubmitJob = { type: id! };
      const payload = args.flags.get("--payload");
      if (payload !== undefined) {
        try {
          job.payload = JSON.parse(payload);
        } catch {
          throw new ConfigError("submit: --payload is not valid JSON");
        }
      }
      const priority = intFlag(args, "--priority", 0, 100);
      if (priority !== undefined) job.priority = priority;
      const delayMs = intFlag(args, "--delay-ms", 0, 365 * 86_400_000);
      if (delayMs !== undefined) job.delayMs = delayMs;
      const key = args.flags.get("--idempotency-key");
      if (key !== undefined) job.idempotencyKey = key;
      const flowKey = args.flags.get("--key");
      if (flowKey !== undefined) job.key = flowKey;
      const ttlMs = intFlag(args, "--ttl-ms", 1, 365 * 86_400_000);
      if (ttlMs !== undefined) job.ttlMs = ttlMs;
      const expiresAt = args.flags.get("--expires-at");
      if (expiresAt !== undefined) job.expiresAt = expiresAt;
      const r = await client.submit(job);
      return r.duplicate ? r : { id: r.id };
    }
    case "stats":
      return client.stats();
    case "schedules":
      return client.schedules();
    case "dead list": {
      const limit = intFlag(args, "--limit", 1, 500);
      const after = args.flags.get("--after");
      return client.dead.list({ ...(type !== undefined && { type }), ...(after !== undefined && { after }), ...(limit !== undefined && { limit }) });
    }
    case "dead retry":
      if (type !== undefined) return { count: await client.dead.retryType(type) };
      return (await client.dead.retry(id!)) ? { id } : null;
    case "dead purge":
      if (type !== undefined) return { count: await client.dead.purgeType(type) };
      return (await client.dead.delete(id!)) ? { id } : null;
    case "types":
      return { types: await client.types.list() };
    case "types pause":
      return client.types.pause(id!);
    case "types resume":
      return client.types.resume(id!);
  }
}

export interface ClientIo {
  out(text: string): void;
  err(text: string): void;
  fetch?: typeof fetch;
}

/** Runs one client command line; resolves with the exit code. */
export async function runClientCommand(argv: string[], env: Record<string, string | undefined>, io: ClientIo): Promise<number> {
  try {
    const args = parseClientArgs(argv, env);
    const token = await readToken(args);
    const client = createClient({ baseUrl: args.url, ...(token !== undefined && { token }), ...(io.fetch !== undefined && { fetch: io.fetch }) });
    const answer = await perform(args, client);
    if (answer === null) {
      io.err(`jobqueue: ${args.command}: job ${args.words[0]} is not a dead job\n`);
      return 1;
    }
    io.out(`${JSON.stringify(answer, null, args.command === "stats" || args.command === "types" ? 2 : undefined)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`jobqueue: ${err.message}\n`);
      return 2;
    }
    if (err instanceof JobQueueClientError) {
      io.err(`jobqueue: the server answered ${err.status} ${err.code}: ${err.message}\n`);
      return 1;
    }
    io.err(`jobqueue: cannot reach the server: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/**
 * A command's arguments: bare words, and `--name value` / `--name=value` flags from `allowed`
 * (anything else is a ConfigError naming it; an empty value too, when `nonEmpty`).
 */
export function splitArgs(command: string, rest: string[], allowed: ReadonlySet<string>, nonEmpty = false): { words: string[]; flags: Map<string, string> } {
  const flags = new Map<string, string>();
  const words: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (!arg.startsWith("--")) {
      words.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (!allowed.has(name)) throw new ConfigError(`${command}: unknown option ${JSON.stringify(name)} (see --help)`);
    const value = eq === -1 ? rest[++i] : arg.slice(eq + 1);
    if (value === undefined || (nonEmpty && value === "")) throw new ConfigError(`${command}: missing value for ${name}`);
    flags.set(name, value);
  }
  return { words, flags };
}
