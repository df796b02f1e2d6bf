// producer.ts (test support): submits numbered jobs over real HTTP the way a producer would, and
// remembers which ones were acknowledged (202) so tests can hold the server to them.
import { modeFor, type Mode } from "./receiver.ts";

export const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

/**
 * Submits job numbers `todo` (one request each, `concurrency` at a time) as type `type` with
 * payload {mode, i}; records acknowledged ids in `acked`; returns the numbers not acknowledged.
 */
export async function submitAll(
  url: string, todo: number[], acked: Map<string, Mode>,
  opts: { concurrency?: number; type?: string; token?: string; onStatus?: (status: number) => void } = {},
): Promise<number[]> {
  const queue = [...todo];
  const unacked: number[] = [];
  const worker = async () => {
    while (queue.length > 0) {
      const i = queue.shift()!;
      const mode = modeFor(i);
      try {
        const res = await fetch(`${url}/submit`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
          body: JSON.stringify({ type: opts.type ?? "hook", payload: { mode, i }, priority: Math.floor(Math.random() * 101) }),
        });
        opts.onStatus?.(res.status);
        if (res.status === 202) acked.set(((await res.json()) as { id: string }).id, mode);
        else {
          unacked.push(i);
          await res.body?.cancel();
        }
      } catch {
        // The server died under this request: not acknowledged, so nothing is promised.
        unacked.push(i);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 16 }, worker));
  return unacked;
}

/** Parses a /metrics scrape into "name{labels}" → value. */
export async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** True when this node holds no ready, scheduled or in-flight job. */
export async function drained(url: string): Promise<boolean> {
  const m = await scrape(url);
  return m.get("jobqueue_jobs_ready") === 0 && m.get("jobqueue_jobs_scheduled") === 0 && m.get("jobqueue_jobs_inflight") === 0;
}
