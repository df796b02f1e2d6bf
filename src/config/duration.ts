// duration.ts: reads "250ms", "30s", "5m", "1h", "7d" (or a whole number of milliseconds) into
// milliseconds. Pure; callers word their own errors.

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export const DURATION_UNITS = "ms, s, m, h, d";

/** The duration in ms, or null when `s` is not one (negative, fractional, unknown unit, too big). */
export function durationMs(s: string | number): number | null {
  if (typeof s === "number") return Number.isSafeInteger(s) && s >= 0 ? s : null;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s);
  const ms = m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : NaN;
  return Number.isSafeInteger(ms) ? ms : null;
}
