// heap.ts: the typed-array binary min-heap behind the scheduler: Float64Array keys and ids, a
// Uint8Array of priorities for ties, a Uint16Array of caller tags, grown by doubling, no per-entry
// objects. Knows no jobs or time.

/**
 * Min-heap of (id, key, priority) entries. Order: smaller key first; on equal keys the lower
 * priority, then the lower id. Keys must not be NaN; ids are integers below 2^53; priorities are
 * integers 0-255 (stored in a byte); a tag is an integer 0-65535 carried along (the scheduler's
 * job type code). Sifting moves a hole instead of swapping (as mourner/flatqueue).
 *
 * pop() is lazy: it takes the root's entry and leaves the root empty (a hole). A following push()
 * drops its entry into that hole and sifts it down from the root, one sift where eager pop + push
 * do two (pop's walk to a leaf, then push's sift-up; Python's heapq.heapreplace does the same).
 * A pop() with the hole pending takes the root's smaller child and refills that child's place
 * from the last entry, leaving the root the hole. The peeks and forEachKeyPriority first fill the
 * hole the eager way (fill(): the last entry to the root, bottom-up). size never counts the hole;
 * clear() forgets it.
 */
export class PriorityHeap {
  private keys: Float64Array;
  private ids: Float64Array;
  private prios: Uint8Array;
  private tags: Uint16Array;
  /** Slots in use, counting the root hole when there is one. */
  private n = 0;
  /** Whether slot 0 is a hole left by pop() (its old entry is gone; n still counts the slot). */
  private hole = false;
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
    return this.hole ? this.n - 1 : this.n;
  }

  push(id: number, key: number, priority: number, tag = 0): void {
    if (this.hole) {
      // Into the root hole: walk it down along the smaller child while that child goes before the
      // new entry. Top-down, not fill()'s bottom-up, because the entry usually stops a few levels
      // below the root, where an eager pop and push each walk the whole height.
      this.hole = false;
      const keys = this.keys, ids = this.ids, prios = this.prios, tags = this.tags;
      const n = this.n;
      let pos = 0;
      let child = 1;
      while (child < n) {
        const right = child + 1;
        let ck = keys[child]!;
        if (right < n) {
          const rk = keys[right]!;
          if (rk < ck || (rk === ck && (prios[right]! < prios[child]! || (prios[right] === prios[child] && ids[right]! < ids[child]!)))) {
            child = right;
            ck = rk;
          }
        }
        if (key < ck || (key === ck && (priority < prios[child]! || (priority === prios[child] && id < ids[child]!)))) break;
        keys[pos] = ck;
        ids[pos] = ids[child]!;
        prios[pos] = prios[child]!;
        tags[pos] = tags[child]!;
        pos = child;
        child = (pos << 1) + 1;
      }
      keys[pos] = key;
      ids[pos] = id;
      prios[pos] = priority;
      tags[pos] = tag;
      return;
    }
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

  /**
   * Removes the minimum and returns its id (its key, priority and tag in lastKey/lastPriority/lastTag), or -1.
   * Leaves the root a hole for the next push() (or fill()) to fill.
   */
  pop(): number {
    const keys = this.keys, ids = this.ids, prios = this.prios, tags = this.tags;
    if (!this.hole) {
      if (this.n === 0) return -1;
      this.lastKey = keys[0]!;
      this.lastPriority = prios[0]!;
      this.lastTag = tags[0]!;
      this.hole = true;
      return ids[0]!;
    }
    // A hole is pending, so the minimum is the root's smaller child. Take that one and fill its
    // place from the last entry as an eager pop would (walk down, sift up, but not above it),
    // and the root stays the hole. fill() and then taking the root would move one entry more on
    // every pop after a pop (bench/heap.ts measures both).
    const n = this.n;
    if (n === 1) {
      this.n = 0;
      this.hole = false;
      return -1;
    }
    let top = 1;
    if (n > 2) {
      const k1 = keys[1]!, k2 = keys[2]!;
      if (k2 < k1 || (k2 === k1 && (prios[2]! < prios[1]! || (prios[2] === prios[1] && ids[2]! < ids[1]!)))) top = 2;
    }
    const topId = ids[top]!;
    this.lastKey = keys[top]!;
    this.lastPriority = prios[top]!;
    this.lastTag = tags[top]!;
    const last = n - 1;
    this.n = last;
    this.closeHole(top, last);
    return topId;
  }

  /**
   * Removes the entry with this id (an O(n) scan, for rare removals such as a cancel); false when no
   * entry has it. The removed slot's ancestors each move one level down, which keeps every path
   * ordered, and the root is left a hole exactly as pop() leaves it.
   */
  remove(id: number): boolean {
    if (this.hole) this.fill();
    const keys = this.keys, ids = this.ids, prios = this.prios, tags = this.tags;
    let pos = ids.subarray(0, this.n).indexOf(id);
    if (pos === -1) return false;
    while (pos > 0) {
      const parent = (pos - 1) >> 1;
      keys[pos] = keys[parent]!;
      ids[pos] = ids[parent]!;
      prios[pos] = prios[parent]!;
      tags[pos] = tags[parent]!;
      pos = parent;
    }
    this.hole = true;
    return true;
  }

  /** Fills the root hole pop() left with the last entry, making the heap valid again (an eager pop's second half). */
  private fill(): void {
    this.hole = false;
    const last = --this.n;
    if (last > 0) this.closeHole(0, last);
  }

  /**
   * Closes a hole at `start` (its entry already taken) with the entry at `last`, which leaves the
   * heap: the hole walks down to a leaf along the smaller child (one comparison per level), then
   * that entry sifts up from there, never above `start`; it rarely climbs far.
   */
  private closeHole(start: number, last: number): void {
    const keys = this.keys, ids = this.ids, prios = this.prios, tags = this.tags;
    let pos = start;
    let child = (pos << 1) + 1;
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
    // The same sift-up as push(), written out again on purpose: a shared sift-up method was slower
    // on pop-heavy work in bench/heap.ts (the figures are in commit 7bd542d).
    const key = keys[last]!, id = ids[last]!, priority = prios[last]!, tag = tags[last]!;
    while (pos > start) {
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

  /** Id of the minimum, or -1 when empty. */
  peekId(): number {
    if (this.hole) this.fill();
    return this.n === 0 ? -1 : this.ids[0]!;
  }

  /** Key of the minimum, or Infinity when empty. */
  peekKey(): number {
    if (this.hole) this.fill();
    return this.n === 0 ? Infinity : this.keys[0]!;
  }

  /** Priority of the minimum (meaningless when empty). */
  peekPriority(): number {
    if (this.hole) this.fill();
    return this.prios[0]!;
  }

  clear(): void {
    this.n = 0;
    this.hole = false;
  }

  /** O(n) visit of every entry in no particular order (for scrape-time gauges). */
  forEachKeyPriority(fn: (key: number, priority: number, id: number) => void): void {
    if (this.hole) this.fill();
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
