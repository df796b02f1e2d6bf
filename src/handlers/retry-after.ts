// retry-after.ts: reads an HTTP Retry-After header (RFC 9110 §10.2.3) as a delay in milliseconds.
// Pure: it only parses; how long a job really waits is the settler's call.

/**
 * The delay a Retry-After value asks for, in ms: delta-seconds ("120"), or an HTTP-date (a date
 * already past is 0). null when the header is absent or neither form (then it says nothing).
 */
export function retryAfterMs(value: string | null, now: number): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP-date always names its weekday and zone (IMF-fixdate, RFC 850 or asctime): insist on a
  // letter so that bare numbers in other shapes ("1.5", "-3") are not taken for dates.
  if (!/^[A-Za-z]{3}/.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}
