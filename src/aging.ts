// aging.ts: the one rule of order. A job's place in line is its aging key, readyAt − priority ×
// agingMs (epoch ms): smaller runs first, and since every waiting job gains priority at the same
// rate, a key fixed when the job becomes ready never needs re-sorting. The heaps, the stores'
// "most urgent" queries and the cluster's adoption all rank by it; nothing else restates it.

/** The aging key of a job ready at `readyAt` (ms) with this priority. */
export function agingKey(readyAt: number, priority: number, agingMs: number): number {
  return readyAt - priority * agingMs;
}

/** When a job with this key and priority became ready (the key's inverse). */
export function readyAtOf(key: number, priority: number, agingMs: number): number {
  return key + priority * agingMs;
}

/** The aging key in SQL, over SQL expressions for the ready time (epoch ms), the priority and the aging. */
export function agingKeySql(readyAtMs: string, priority: string, agingMs: string): string {
  return `(${readyAtMs} - ${priority} * ${agingMs})`;
}
