// payload-spans.ts: finds, in the text of a submit body that JSON.parse has already accepted, where
// each job's payload value begins and ends, so the payload is stored and delivered exactly as sent.
// Also finds the first member name an object repeats. Reads only; validates nothing else.

/** A value's place in the text: text.slice(start, end) is the value as sent, without the spaces around it. */
export interface Span {
  start: number;
  end: number;
}

export interface BodySpans {
  /** The top-level `payload` member's value (a single job), when the body has one. */
  payload: Span | undefined;
  /** Each `jobs[i].payload` member's value (a batch), by i; a hole where job i has none. */
  jobs: (Span | undefined)[];
  /** The first member name an object repeats, and the path of that object (`[]` is the body). */
  duplicate: { name: string; path: (string | number)[] } | null;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** An object or array the scan is inside: where it began, and (objects) the names seen so far. */
interface Frame {
  start: number;
  names: Set<string> | null;
}

/**
 * Scans valid JSON `text` once, iteratively (no recursion, whatever the nesting). Names are
 * compared as JSON.parse reads them, so `"pay\u006coad"` is `payload`; a `"payload"` inside a
 * string or a nested object is never taken for the member. Members repeated in one object make
 * JSON.parse keep the last; the spans here do the same.
 */
export function scanBody(text: string): BodySpans {
  const out: BodySpans = { payload: undefined, jobs: [], duplicate: null };
  const frames: Frame[] = [];
  // The path of the value being read: member names and array indices from the body down.
  const path: (string | number)[] = [];
  let i = skipSpace(text, 0);

  /** At a member's name: reads it and its colon, records it, and returns where its value starts. */
  function member(at: number, frame: Frame): number {
    const end = stringEnd(text, at);
    const raw = text.slice(at + 1, end - 1);
    const name = raw.includes("\\") ? (JSON.parse(text.slice(at, end)) as string) : raw;
    if (frame.names!.has(name) && out.duplicate === null) out.duplicate = { name, path: path.slice() };
    frame.names!.add(name);
    path.push(name);
    const colon = skipSpace(text, end);
    if (text.charCodeAt(colon) !== COLON) throw new Error(`payload-spans: expected ':' at ${colon}`);
    return skipSpace(text, colon + 1);
  }

  for (;;) {
    // At the start of a value.
    let start = i;
    const c = text.charCodeAt(i);
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      const frame: Frame = { start, names: c === OPEN_OBJECT ? new Set() : null };
      i = skipSpace(text, i + 1);
      const close = c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY;
      if (text.charCodeAt(i) !== close) {
        frames.push(frame);
        if (frame.names !== null) i = member(i, frame);
        else path.push(0);
        continue;
      }
      i++; // an empty object or array ends here
    } else if (c === QUOTE) {
      i = stringEnd(text, i);
    } else {
      i = scalarEnd(text, i);
    }
    // A value [start, i) has ended; so may the containers it closes.
    for (;;) {
      record(out, path, start, i);
      const frame = frames[frames.length - 1];
      if (frame === undefined) return out;
      i = skipSpace(text, i);
      if (text.charCodeAt(i) === COMMA) {
        i = skipSpace(text, i + 1);
        if (frame.names !== null) {
          path.pop();
          i = member(i, frame);
        } else {
          (path[path.length - 1] as number)++;
        }
        break;
      }
      // The closing bracket of the innermost container: it is the value that ended.
      frames.pop();
      path.pop();
      start = frame.start;
      i++;
    }
  }
}

/** Keeps the span of a value whose path is ["payload"] or ["jobs", i, "payload"]. */
function record(out: BodySpans, path: (string | number)[], start: number, end: number): void {
  if (path.length === 1 && path[0] === "payload") out.payload = { start, end };
  else if (path.length === 3 && path[0] === "jobs" && typeof path[1] === "number" && path[2] === "payload") {
    out.jobs[path[1]] = { start, end };
  }
}

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** Just past the closing quote of the string whose opening quote is at `at`. */
function stringEnd(text: string, at: number): number {
  let from = at + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote === -1) throw new Error(`payload-spans: unterminated string at ${at}`);
    // The quote is escaped when an odd number of backslashes precede it.
    let slashes = 0;
    while (text.charCodeAt(quote - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

/** Just past a number, true, false or null: they end at a delimiter, a space or the text's end. */
function scalarEnd(text: string, at: number): number {
  let i = at;
  for (;;) {
    const c = text.charCodeAt(i);
    if (Number.isNaN(c) || c === COMMA || c === CLOSE_ARRAY || c === CLOSE_OBJECT || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      if (i === at) throw new Error(`payload-spans: expected a value at ${at}`);
      return i;
    }
    i++;
  }
}
