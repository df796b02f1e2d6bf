// heap.ts: the typed-array binary min-heap behind the scheduler: Float64Array keys and ids, a
// Uint8Array of priorities for ties, grown by doubling, no per-entry objects. Knows no jobs.

export class PriorityHeap {
  private keys: Float64Array;
  private ids: Float64Array;
  private prios: Uint8Array;
  private n = 0;
  /** Key and priority of the entry the last pop() returned (read right after pop). */
  lastKey = Infinity;
  lastPriority = 0;

  constructor(initialCapacity = 64) {
    const cap = Math.max(2, initialCapacity | 0);
    this.keys = new Float64Array(cap);
    this.ids = new Float64Array(cap);
    this.prios = new Uint8Array(cap);
  }

  get size(): number {
    return this.n;
  }

  /** a before b: smaller key, then lower priority (= earlier ready time at equal key), then lower id. */
  private static before(ka: number, pa: number, ia: number, kb: number, pb: number, ib: number): boolean {
    return ka < kb || (ka === kb && (pa < pb || (pa === pb && ia < ib)));
  }

  push(id: number, key: number, priority: number): void {
    if (this.n === this.keys.length) this.grow();
    const keys = this.keys, ids = this.ids, prios = this.prios;
    let pos = this.n++;
    // Sift up with a hole: move parents down until the new entry fits.
    while (pos > 0) {
      const parent = (pos - 1) >> 1;
      const pk = keys[parent]!;
      if (!PriorityHeap.before(key, priority, id, pk, prios[parent]!, ids[parent]!)) break;
      keys[pos] = pk;
      ids[pos] = ids[parent]!;
      prios[pos] = prios[parent]!;
      pos = parent;
    }
    keys[pos] = key;
    ids[pos] = id;
    prios[pos] = priority;
  }

  /** Removes the minimum and returns its id, or -1 when empty. */
  pop(): number {
    if (this.n === 0) return -1;
    const keys = this.keys, ids = this.ids, prios = this.prios;
    const top = ids[0]!;
    this.lastKey = keys[0]!;
    this.lastPriority = prios[0]!;
    const n = --this.n;
    if (n > 0) {
      const key = keys[n]!, id = ids[n]!, prio = prios[n]!;
      const half = n >> 1;
      let pos = 0;
      // Sift down with a hole: pull the smaller child up until the moved entry fits.
      while (pos < half) {
        let child = 2 * pos + 1;
        let ck = keys[child]!, cp = prios[child]!, ci = ids[child]!;
        const right = child + 1;
        if (right < n) {
          const rk = keys[right]!, rp = prios[right]!, ri = ids[right]!;
          if (PriorityHeap.before(rk, rp, ri, ck, cp, ci)) {
            child = right;
            ck = rk;
            cp = rp;
            ci = ri;
          }
        }
        if (!PriorityHeap.before(ck, cp, ci, key, prio, id)) break;
        keys[pos] = ck;
        ids[pos] = ci;
        prios[pos] = cp;
        pos = child;
      }
      keys[pos] = key;
      ids[pos] = id;
      prios[pos] = prio;
    }
    return top;
  }

  peekId(): number {
    return this.n === 0 ? -1 : this.ids[0]!;
  }

  peekKey(): number {
    return this.n === 0 ? Infinity : this.keys[0]!;
  }

  clear(): void {
    this.n = 0;
  }

  /** O(n) visit of every entry, in no particular order (for scrape-time gauges). */
  forEachKeyPriority(fn: (key: number, priority: number, id: number) => void): void {
    for (let i = 0; i < this.n; i++) fn(this.keys[i]!, this.prios[i]!, this.ids[i]!);
  }

  private grow(): void {
    const cap = this.keys.length * 2;
    const keys = new Float64Array(cap), ids = new Float64Array(cap), prios = new Uint8Array(cap);
    keys.set(this.keys);
    ids.set(this.ids);
    prios.set(this.prios);
    this.keys = keys;
    this.ids = ids;
    this.prios = prios;
  }
}
