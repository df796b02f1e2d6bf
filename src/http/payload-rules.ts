// payload-rules.ts: what a payload's parsed value must be beyond valid JSON: nested at most so
// deep, and every string and member name well-formed Unicode (no lone UTF-16 surrogate, which the
// stores cannot keep: SQLite turns it into U+FFFD). Each fault comes with the JSON path to it.

/** A fault in a payload: what is wrong, and where (a JSON path such as `$.a[3]`; none for depth, a path of 128 steps). */
export interface PayloadFault {
  message: string;
  at: string | null;
}

/** One container or value met by the walk, with the way back to the root (for the path). */
interface Step {
  node: unknown;
  depth: number;
  parent: Step | null;
  key: string | number | null;
}

/**
 * The first fault of a parsed JSON value: a container nested deeper than `maxDepth` (the root is
 * at depth 0), or a lone surrogate in a string or a member name. Iterative, so it cannot overflow
 * the stack on a value nested 200,000 deep.
 */
export function payloadFault(value: unknown, maxDepth: number): PayloadFault | null {
  const pending: Step[] = [{ node: value, depth: 0, parent: null, key: null }];
  for (let step = pending.pop(); step !== undefined; step = pending.pop()) {
    const { node, depth } = step;
    if (typeof node === "string") {
      if (!node.isWellFormed()) return { message: "contains a lone UTF-16 surrogate", at: pathOf(step) };
      continue;
    }
    if (typeof node !== "object" || node === null) continue;
    if (depth >= maxDepth) return { message: `must not nest arrays and objects more than ${maxDepth} deep`, at: null };
    if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) pending.push({ node: node[i], depth: depth + 1, parent: step, key: i });
      continue;
    }
    const keys = Object.keys(node);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      if (!key.isWellFormed()) return { message: "contains a lone UTF-16 surrogate in a member name", at: pathOf({ node: null, depth, parent: step, key }) };
      pending.push({ node: (node as Record<string, unknown>)[key], depth: depth + 1, parent: step, key });
    }
  }
  return null;
}

function pathOf(step: Step): string {
  const keys: (string | number)[] = [];
  for (let s: Step | null = step; s !== null && s.key !== null; s = s.parent) keys.push(s.key);
  return jsonPath(keys.reverse());
}

/** `["a", 3, "b c"]` → `$.a[3]["b c"]`: names that are identifiers after a dot, others quoted. */
export function jsonPath(keys: readonly (string | number)[]): string {
  let out = "$";
  for (const key of keys) {
    if (typeof key === "number") out += `[${key}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) out += `.${key}`;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out;
}
