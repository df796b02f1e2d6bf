// heap.ts: the typed-array binary min-heap behind the scheduler: Float64Array keys and ids, a
// Uint8Array of priorities for ties, a Uint16Array of caller tags, grown by doubling, no per-entry
// objects. Knows no jobs or time.

/**
 * Min-heap of (id, key, priority) entries. Order: smaller key first; on equal keys the lower
 * priority, then the lower id. Keys must not be NaN; ids are integers below 2^53; priorities are
 * integers 0-255 (stored in a byte); a tag is an integer 0-65535 carried along (the scheduler's
 * job type code). Sifting moves a hole instead of swapping (as mourner/flatqueue).
 */
export class PriorityHeap {
  private keys: Float64Array;
  private ids: Float64Array;
  private prios: Uint8Array;
  private tags: Uint16Array;
  private n = 0;
  /** Key of the entry the last successful pop() returned. */
  lastKey = Infinity;
  /** Priority of the entry the last successful pop() returned. */
  lastPriority = 0;
  /** Tag of the entry the last successful pop() returned. */
  lastTag = 0;

  constructor(initialCapacity = 64) {
    const cap = Math.max(1, Math.floor(initialCapacity));
    this.keys = new Float64Array(cap);
    this.ids = new Float64Array(cap);
    this.prios = new Uint8Array(cap);
    this.tags = new Uint16Array(cap);
  }

  get size(): number {
    return this.n;
  }

  push(id: number, key: number, priority: number, tag = 0): void {
    if (this.n === this.keys.length) this.grow();
    const keys = this.keys, ids = this.ids, prios = this.prios, tags = this.tags;
    let pos = this.n++;
    // Sift up: pull parents down into the hole while the new entry goes before them.
    while (pos > 0) {
      const parent = (pos - 1) >> 1;
      const pk = keys[parent]!;
      if (pk < key || (pk === key && (prios[parent]! < priority || (prios[parent] === priority && ids[parent]! < id)))) break;
      keys[pos] = pk;
      ids[pos] = ids[parent]!;
      prios[pos] = prios[parent]!;
      tags[pos] = tags[parent]!;
      pos = parent;
    }
    keys[pos] = key;
    ids[pos] = id;
    prios[pos] = priority;
    tags[pos] = tag;
  }

  /** Removes the minimum and returns its id (its key, priority and tag in lastKey/lastPriority/lastTag), or -1. */
  pop(): number {
    const n = this.n;
    if (n === 0) return -1;
    const keys = this.keys, ids = this.ids, prios = this.prios, tags = this.tags;
    const top = ids[0]!;
    this.lastKey = keys[0]!;
    this.lastPriority = prios[0]!;
    this.lastTag = tags[0]!;
    const last = n - 1;
    this.n = last;
    if (last > 0) {
      // Bottom-up: walk the hole down to a leaf along the smaller child (one comparison per
      // level), then sift the former last entry up from there; it rarely climbs far.
      let pos = 0;
      let child = 1;
      while (child < last) {
        const right = child + 1;
        let ck = keys[child]!;
        if (right < last) {
          const rk = keys[right]!;
          if (rk < ck || (rk === ck && (prios[right]! < prios[child]! || (prios[right] === prios[child] && ids[right]! < ids[child]!)))) {
            child = right;
            ck = rk;
          }
        }
        keys[pos] = ck;
        ids[pos] = ids[child]!;
        prios[pos] = prios[child]!;
        tags[pos] = tags[child]!;
        pos = child;
        child = (pos << 1) + 1;
      }
      // The same sift-up as push(), written out again on purpose: as a shared method it measured
      // 0.98× flatqueue on pop-heavy work against 1.16× inline (bun bench/run.ts heap).
      const key = keys[last]!, id = ids[last]!, priority = prios[last]!, tag = tags[last]!;
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        const pk = keys[parent]!;
        if (pk < key || (pk === key && (prios[parent]! < priority || (prios[parent] === priority && ids[parent]! < id)))) break;
        keys[pos] = pk;
        ids[pos] = ids[parent]!;
        prios[pos] = prios[parent]!;
        tags[pos] = tags[parent]!;
        pos = parent;
      }
      keys[pos] = key;
      ids[pos] = id;
      prios[pos] = priority;
      tags[pos] = tag;
    }
    return top;
  }

  /** Id of the minimum, or -1 when empty. */
  peekId(): number {
    return this.n === 0 ? -1 : this.ids[0]!;
  }

  /** Key of the minimum, or Infinity when empty. */
  peekKey(): number {
    return this.n === 0 ? Infinity : this.keys[0]!;
  }

  /** Priority of the minimum (meaningless when empty). */
  peekPriority(): number {
    return this.prios[0]!;
  }

  clear(): void {
    this.n = 0;
  }

  /** O(n) visit of every entry in no particular order (for scrape-time gauges). */
  forEachKeyPriority(fn: (key: number, priority: number, id: number) => void): void {
    const keys = this.keys, ids = this.ids, prios = this.prios;
    for (let i = 0; i < this.n; i++) fn(keys[i]!, prios[i]!, ids[i]!);
  }

  private grow(): void {
    const cap = this.keys.length * 2;
    const keys = new Float64Array(cap), ids = new Float64Array(cap), prios = new Uint8Array(cap), tags = new Uint16Array(cap);
    keys.set(this.keys);
    ids.set(this.ids);
    prios.set(this.prios);
    tags.set(this.tags);
    this.keys = keys;
    this.ids = ids;
    this.prios = prios;
    this.tags = tags;
  }
}
