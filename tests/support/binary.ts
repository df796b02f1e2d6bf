// binary.ts (test support): builds dist/jobqueue when missing or older than the sources, starts
// it as a child process, and reads the port it announces in its JSON log.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

const ROOT = join(import.meta.dir, "..", "..");
export const BINARY = join(ROOT, "dist", "jobqueue");

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export async function ensureBinary(): Promise<string> {
  const stale = !existsSync(BINARY) ||
    statSync(BINARY).mtimeMs < Math.max(newestSource(join(ROOT, "src")), newestSource(join(ROOT, "sql")));
  if (stale) {
    const build = Bun.spawn(["bun", "build", "--compile", "src/main.ts", "--outfile", BINARY], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
    if ((await build.exited) !== 0) throw new Error(`build failed: ${await new Response(build.stderr).text()}`);
  }
  return BINARY;
}

/** Every server a test started and has not seen exit: killed when the test process ends, so a
 * failed test never leaves one running. */
const live = new Set<Subprocess>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

export interface RunningBinary {
  proc: Subprocess<"ignore", "ignore", "pipe">;
  url: string;
  /** Every log line so far, parsed. */
  logs: Array<Record<string, unknown>>;
  exited: Promise<number>;
}

/**
 * Starts the binary and resolves once it logs "listening" (or rejects if it exits first). That
 * line is logged at info level: do not raise JOBQUEUE_LOG_LEVEL above info here.
 */
export async function startBinary(args: string[], env: Record<string, string>, cwd?: string): Promise<RunningBinary> {
  const bin = await ensureBinary();
  const proc = Bun.spawn([bin, ...args], {
    cwd: cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  live.add(proc);
  void proc.exited.then(() => live.delete(proc));
  const logs: Array<Record<string, unknown>> = [];
  let onListening: (url: string) => void = () => {};
  const listening = new Promise<string>((resolve) => (onListening = resolve));
  void (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stderr) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === "listening") onListening(String(entry.url));
        } catch {
          logs.push({ raw: line });
        }
      }
    }
  })();
  const exited = proc.exited;
  const url = await Promise.race([
    listening,
    exited.then((code) => {
      throw new Error(`jobqueue exited with ${code} before listening: ${JSON.stringify(logs.slice(-5))}`);
    }),
  ]);
  return { proc, url, logs, exited };
}
