// pushy-target.ts (test support): a webhook target whose answers a test scripts request by request
// (status, headers, how long it holds the answer), recording every delivery with its receipt time
// and how many requests it was answering at once.
export interface Answer {
  status: number;
  headers?: Record<string, string>;
  /** Hold the answer this long (ms) after the request arrived. */
  holdMs?: number;
}

export interface Delivery {
  /** 1-based, in order of arrival. */
  n: number;
  id: string;
  attempt: number;
  /** Receipt time (Date.now()). */
  at: number;
  status: number;
}

export interface PushyTarget {
  readonly url: string;
  readonly deliveries: Delivery[];
  /** Requests being answered now. */
  readonly current: number;
  /** Most requests answered at once since the start or the last resetMost(). */
  readonly most: number;
  resetMost(): void;
  /** How the target answers from now on (n: the request's number, 1-based). */
  answer: (n: number, d: { id: string; attempt: number }) => Answer;
  stop(): void;
}

export function startPushyTarget(answer: PushyTarget["answer"]): PushyTarget {
  const deliveries: Delivery[] = [];
  let current = 0;
  let most = 0;
  const target: PushyTarget = {
    url: "",
    deliveries,
    get current() {
      return current;
    },
    get most() {
      return most;
    },
    resetMost() {
      most = current;
    },
    answer,
    stop: () => void server.stop(true),
  };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 60,
    async fetch(req) {
      const at = Date.now();
      const body = (await req.json()) as { id: string; attempt: number };
      current++;
      most = Math.max(most, current);
      const n = deliveries.length + 1;
      const a = target.answer(n, body);
      deliveries.push({ n, id: body.id, attempt: body.attempt, at, status: a.status });
      try {
        if (a.holdMs) await Bun.sleep(a.holdMs);
      } finally {
        current--;
      }
      return new Response(a.status < 300 ? "ok" : "not now", { status: a.status, headers: a.headers ?? {} });
    },
  });
  (target as { url: string }).url = `http://127.0.0.1:${server.port}/hook`;
  return target;
}
