// exec.ts: the built-in command handler: runs a program from config (never from the job) in its
// own process group with the job as JSON on stdin; exit 0 = done (the start of stdout is the
// result), anything else a failed attempt (with the end of stderr). An abort (timeout, cancel,
// shutdown) kills the whole process group.
import type { Handler } from "./handler.ts";

export interface ExecOptions {
  /** The program and its arguments. */
  command: string[];
  /** The child's whole environment (the server's own is not passed on: it may hold secrets). */
  env?: Record<string, string>;
  cwd?: string;
}

/** Bytes of stdout kept as the job's result. */
export const RESULT_LIMIT = 4096;
/** Bytes from the end of stderr kept in a failed attempt's error. */
export const STDERR_TAIL = 2048;
/** After the program exits, how long its pipes may stay open (a child it left behind) before we stop reading. */
const DRAIN_AFTER_EXIT_MS = 1000;

/** Text for a result or an error: lossy UTF-8, control characters (NUL among them) made visible. */
function clean(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, "\ufffd");
}

/** Reads a stream to its end (or until cancelled), keeping its first `limit` bytes or its last. */
async function collect(stream: ReadableStream<Uint8Array>, limit: number, keep: "head" | "tail", stop: Promise<void>): Promise<Uint8Array> {
  const reader = stream.getReader();
  let kept = new Uint8Array(0);
  void stop.then(() => reader.cancel().catch(() => {}));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (keep === "head") {
        if (kept.length < limit) {
          const take = value.subarray(0, limit - kept.length);
          const next = new Uint8Array(kept.length + take.length);
          next.set(kept);
          next.set(take, kept.length);
          kept = next;
        }
      } else {
        const next = new Uint8Array(Math.min(limit, kept.length + value.length));
        const joined = new Uint8Array(kept.length + value.length);
        joined.set(kept);
        joined.set(value, kept.length);
        next.set(joined.subarray(joined.length - next.length));
        kept = next;
      }
    }
  } catch {
    // Cancelled after the program exited: keep what arrived.
  }
  return kept;
}

export function createExecHandler(opts: ExecOptions): Handler {
  if (opts.command.length === 0) throw new Error("exec handler: empty command");
  return async (job, signal) => {
    signal.throwIfAborted();
    const input = `{"id":"${job.id}","type":${JSON.stringify(job.type)},"payload":${job.payloadText},"attempt":${job.attempt},"maxAttempts":${job.maxAttempts}}`;
    const proc = Bun.spawn(opts.command, {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      // setsid(): the program leads a new process group, so a kill reaches everything it started.
      detached: true,
      env: {
        ...opts.env,
        JOBQUEUE_JOB_ID: String(job.id),
        JOBQUEUE_JOB_TYPE: job.type,
        JOBQUEUE_JOB_ATTEMPT: String(job.attempt),
        // The producer's trace context, as OpenTelemetry's environment propagation reads it.
        ...(job.traceparent !== null && { TRACEPARENT: job.traceparent }),
      },
      ...(opts.cwd !== undefined && { cwd: opts.cwd }),
    });
    const killGroup = () => {
      try {
        process.kill(-proc.pid, "SIGKILL");
      } catch {
        // The group is gone already.
      }
    };
    signal.addEventListener("abort", killGroup, { once: true });
    let stopReading: () => void = () => {};
    const stop = new Promise<void>((resolve) => (stopReading = resolve));
    const stdout = collect(proc.stdout, RESULT_LIMIT, "head", stop);
    const stderr = collect(proc.stderr, STDERR_TAIL, "tail", stop);
    try {
      try {
        proc.stdin.write(input);
        await proc.stdin.end();
      } catch {
        // The program does not read its input (or exited first): its exit code decides.
      }
      const code = await proc.exited;
      const drained = setTimeout(stopReading, DRAIN_AFTER_EXIT_MS);
      const [out, err] = await Promise.all([stdout, stderr]);
      clearTimeout(drained);
      if (signal.aborted) throw signal.reason;
      if (code === 0) return clean(out);
      const how = proc.signalCode ? `was killed by ${proc.signalCode}` : `exited with code ${code}`;
      const tail = clean(err).trim();
      // The exit code rides on the error into the attempt's record (errors.ts failureCodes).
      throw Object.assign(new Error(`command ${how}${tail ? `: ${tail}` : ""}`), proc.signalCode ? {} : { exitCode: code });
    } finally {
      signal.removeEventListener("abort", killGroup);
      stopReading();
    }
  };
}
