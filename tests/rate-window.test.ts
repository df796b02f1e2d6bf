// rate-window.test.ts: the per-second ring behind "completions in the last minute", on a fake clock.
import { expect, test } from "bun:test";
import { RateWindow } from "../src/queue/rate-window.ts";

test("events count for exactly the last 60 seconds, this one included", () => {
  const w = new RateWindow(60);
  const t0 = 1_700_000_000_000;
  w.add(t0);
  w.add(t0 + 999, 2);
  w.add(t0 + 30_000, 5);
  expect(w.count(t0)).toBe(3);
  expect(w.count(t0 + 30_500)).toBe(8);
  expect(w.count(t0 + 59_999)).toBe(8);
  expect(w.count(t0 + 60_000)).toBe(5); // the first second has left the window
  expect(w.count(t0 + 90_000)).toBe(0);
});

test("a bucket reused after a full turn of the ring starts from zero", () => {
  const w = new RateWindow(60);
  const t0 = 1_700_000_000_000;
  w.add(t0, 7);
  w.add(t0 + 60_000, 1); // the same slot, a minute later
  expect(w.count(t0 + 60_000)).toBe(1);
});

test("a window checked against a plain list of events agrees on random data", () => {
  const w = new RateWindow(60);
  const events: number[] = [];
  let now = 1_700_000_000_000;
  let seed = 3;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 5000; i++) {
    now += Math.floor(rand() * 400);
    w.add(now);
    events.push(now);
    if (i % 97 === 0) {
      const sec = Math.floor(now / 1000);
      expect(w.count(now)).toBe(events.filter((e) => Math.floor(e / 1000) > sec - 60).length);
    }
  }
});
