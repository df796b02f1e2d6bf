// receiver.ts (test support): a webhook receiver that records every delivery by job id (and, when
// asked, each request body exactly as its bytes arrived) and answers as the job's payload asks:
// {"mode":"ok"} 200, "flaky" 500 until attempt 3, "fail" 500.
export type Mode = "ok" | "flaky" | "fail" | "slow";

export interface Delivery {
  attempts: number[];
  /** Each attempt's request body as received (UTF-8), with `keepBodies` only. */
  bodies: string[];
  succeeded: boolean;
  mode: Mode;
}

export interface Receiver {
  readonly url: string;
  readonly deliveries: Map<string, Delivery>;
  /** Total deliveries received. */
  readonly count: number;
  /** Deliveries of "slow" jobs still being answered. */
  readonly slowInProgress: number;
  /** How long a "slow" job's delivery takes from now on. */
  setSlowMs(ms: number): void;
  reset(): void;
  stop(): void;
}

export function startReceiver(opts: { slowMs?: number; delayMs?: number; keepBodies?: boolean } = {}): Receiver {
  const deliveries = new Map<string, Delivery>();
  let count = 0;
  let slowMs = opts.slowMs ?? 5000;
  let slowInProgress = 0;
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 60,
    async fetch(req) {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(await req.arrayBuffer());
      const body = JSON.parse(text) as { id: string; payload: { mode: Mode }; attempt: number };
      if (req.headers.get("x-job-id") !== body.id || Number(req.headers.get("x-job-attempt")) !== body.attempt) {
        return new Response("headers do not match the body", { status: 400 });
      }
      const mode = body.payload?.mode ?? "ok";
      const d = deliveries.get(body.id) ?? { attempts: [], bodies: [], succeeded: false, mode };
      deliveries.set(body.id, d);
      d.attempts.push(body.attempt);
      if (opts.keepBodies) d.bodies.push(text);
      count++;
      if (mode === "slow") {
        slowInProgress++;
        await Bun.sleep(slowMs).finally(() => slowInProgress--);
      }
      else if (opts.delayMs) await Bun.sleep(opts.delayMs);
      const ok = mode === "ok" || mode === "slow" || (mode === "flaky" && body.attempt > 2);
      if (ok) d.succeeded = true;
      return new Response(ok ? "ok" : "nope", { status: ok ? 200 : 500 });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    deliveries,
    get count() {
      return count;
    },
    get slowInProgress() {
      return slowInProgress;
    },
    setSlowMs(ms) {
      slowMs = ms;
    },
    reset() {
      deliveries.clear();
      count = 0;
    },
    stop: () => void server.stop(true),
  };
}

/** The mode of job number i in the standard mix: 10 % flaky, 2 % always failing. */
export function modeFor(i: number): Mode {
  if (i % 10 === 3) return "flaky";
  if (i % 50 === 7) return "fail";
  return "ok";
}
