// rate-window.ts: counts events over the last N seconds in a ring of per-second buckets (two
// typed arrays, no allocation per event). Time comes in as an argument; no timers.

export class RateWindow {
  private counts: Float64Array;
  private stamps: Float64Array;

  /** `seconds`: how far back count() looks, this second included. */
  constructor(readonly seconds = 60) {
    this.counts = new Float64Array(seconds);
    this.stamps = new Float64Array(seconds).fill(-1);
  }

  /** Record `n` events at `now` (epoch ms). */
  add(now: number, n = 1): void {
    const sec = Math.floor(now / 1000);
    const i = sec % this.seconds;
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec;
      this.counts[i] = 0;
    }
    this.counts[i]! += n;
  }

  /** Events in the last `seconds` seconds up to `now`, this second included. */
  count(now: number): number {
    const sec = Math.floor(now / 1000);
    let total = 0;
    for (let i = 0; i < this.seconds; i++) {
      const stamp = this.stamps[i]!;
      if (stamp > sec - this.seconds && stamp <= sec) total += this.counts[i]!;
    }
    return total;
  }
}
