// payload-spans.test.ts: the scanner that finds each payload's text in a submit body, against hand-
// picked traps (the word "payload" in strings, escapes, nested objects) and against random bodies
// whose payload text is known because the test wrote it there.
import { describe, expect, test } from "bun:test";
import { scanBody, type Span } from "../src/http/payload-spans.ts";
import { prng } from "./support/prng.ts";

const slice = (text: string, span: Span | undefined) => (span === undefined ? undefined : text.slice(span.start, span.end));

/** The payload text the scanner finds in a single-job body. */
function single(text: string): string | undefined {
  JSON.parse(text); // the scanner is only ever given valid JSON
  return slice(text, scanBody(text).payload);
}

describe("a single job's payload", () => {
  test("is the value's exact text, without the spaces around it", () => {
    expect(single('{"type":"t","payload":{"a" : [1 ,2.0, 1e400 ],"b":"\\u00e9"}}')).toBe('{"a" : [1 ,2.0, 1e400 ],"b":"\\u00e9"}');
    expect(single('{ "payload" :\n\t  9007199254740993 \r\n, "type":"t"}')).toBe("9007199254740993");
    expect(single('{"payload":"x"}')).toBe('"x"');
    expect(single('{"payload":null}')).toBe("null");
    expect(single('{"payload":-0.0e-7}')).toBe("-0.0e-7");
    expect(single('{"payload":true}')).toBe("true");
    expect(single('{"payload":{}}')).toBe("{}");
    expect(single('{"payload":[ ]}')).toBe("[ ]");
    expect(single('{"type":"t"}')).toBeUndefined();
  });

  test("is never fooled by the word payload inside strings, escapes or nested objects", () => {
    expect(single('{"type":"\\"payload\\":1","payload":2}')).toBe("2");
    expect(single('{"note":"\\\\","payload":3}')).toBe("3"); // a string that ends in an escaped backslash
    expect(single('{"note":"\\\\\\"payload\\":9","payload":4}')).toBe("4");
    expect(single('{"a":{"payload":1},"payload":5,"b":[{"payload":6}]}')).toBe("5");
    expect(single('{"a":{"payload":1},"b":[{"payload":6}]}')).toBeUndefined();
    expect(single('{"payload":{"payload":{"payload":7}}}')).toBe('{"payload":{"payload":7}}');
    expect(single('{"payload":"{\\"payload\\":8}"}')).toBe('"{\\"payload\\":8}"');
    expect(single('["payload",{"payload":1}]')).toBeUndefined();
    expect(single('"payload"')).toBeUndefined();
  });

  test("a name spelt with escapes is the name JSON.parse reads", () => {
    expect(single('{"pay\\u006coad":[1]}')).toBe("[1]");
    expect(single('{"payload\\u0000":[1]}')).toBeUndefined();
  });

  test("of several payload members, the last is the one (as JSON.parse keeps it), and the repeat is found", () => {
    const text = '{"payload":1,"type":"t","payload":[2]}';
    expect(single(text)).toBe("[2]");
    expect(scanBody(text).duplicate).toEqual({ name: "payload", path: [] });
  });

  test("nesting 200,000 deep is scanned without recursion", () => {
    const deep = "[".repeat(200_000) + "]".repeat(200_000);
    expect(single(`{"payload":${deep},"type":"t"}`)).toBe(deep);
  });
});

describe("a batch's payloads", () => {
  test("each job's payload is found by its index, with a hole where a job has none", () => {
    const text = '{"jobs":[{"type":"a","payload":{"x":1}} , {"type":"b"},{"payload":  "three" ,"type":"c"},{"type":"d","payload":[[]]}]}';
    const spans = scanBody(text);
    expect(spans.jobs.map((s) => slice(text, s))).toEqual(['{"x":1}', undefined, '"three"', "[[]]"]);
    expect(spans.jobs.length).toBe(4);
    expect(spans.payload).toBeUndefined();
  });

  test("jobs and payloads nested inside a payload are not taken for the batch's", () => {
    const text = '{"jobs":[{"type":"a","payload":{"jobs":[{"payload":1}],"payload":2}}]}';
    const spans = scanBody(text);
    expect(spans.jobs.map((s) => slice(text, s))).toEqual(['{"jobs":[{"payload":1}],"payload":2}']);
    const single = '{"type":"a","payload":{"jobs":[{"payload":1}]}}';
    expect(scanBody(single).jobs).toEqual([]);
  });
});

describe("repeated member names", () => {
  test("the first repeat is reported with the path of the object that holds it", () => {
    expect(scanBody('{"type":"a","type":"b"}').duplicate).toEqual({ name: "type", path: [] });
    expect(scanBody('{"payload":{"a":{"x":1,"y":2,"x":3}}}').duplicate).toEqual({ name: "x", path: ["payload", "a"] });
    expect(scanBody('{"jobs":[{"type":"a"},{"type":"b","payload":[0,{"k":1,"k":1}]}]}').duplicate).toEqual({ name: "k", path: ["jobs", 1, "payload", 1] });
    expect(scanBody('{"payload":{"a":1,"\\u0061":2}}').duplicate).toEqual({ name: "a", path: ["payload"] });
  });

  test("the same name in different objects, or as a string value, is no repeat", () => {
    expect(scanBody('{"a":{"a":{"a":1}},"b":["a","a"],"c":[{"a":1},{"a":2}]}').duplicate).toBeNull();
    expect(scanBody('{"a":1,"A":2,"a ":3}').duplicate).toBeNull();
  });
});

describe("random bodies whose payload text the test placed itself", () => {

  test("2,000 random bodies: every payload is found exactly as written", () => {
    const random = prng(20_261_202);
    const int = (n: number) => Math.floor(random() * n);
    const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
    const space = () => pick(["", "", " ", "\n", "\t", " \r\n  "]);
    const STRINGS = ['"payload"', '"jobs"', '"\\"payload\\":1"', '"\\\\"', '"a\\\\\\"b"', '"\\u0070ayload"', '"é🚀"', '""', '"}]{["', '"\\/\\b\\f\\n\\r\\t"'];
    const SCALARS = ["0", "-1", "1.0", "1e400", "9007199254740993", "-0.5E+3", "true", "false", "null"];
    const NAMES = ['"payload"', '"jobs"', '"type"', '"a"', '"pay\\u006coad"', '"x y"', '""'];

    // Writes a random JSON value, with random spaces inside (never around: the span excludes those).
    function value(depth: number): string {
      const roll = int(depth > 4 ? 2 : 4);
      if (roll === 0) return pick(STRINGS);
      if (roll === 1) return pick(SCALARS);
      if (roll === 2) return "[" + space() + Array.from({ length: int(4) }, () => value(depth + 1)).join(space() + "," + space()) + space() + "]";
      // Distinct names per object, so no random body repeats a member.
      const names = [...new Set(Array.from({ length: int(4) }, () => pick(NAMES)))].filter((n, i, all) => all.findIndex((m) => JSON.parse(m) === JSON.parse(n)) === i);
      return "{" + space() + names.map((n) => n + space() + ":" + space() + value(depth + 1)).join(space() + "," + space()) + space() + "}";
    }

    for (let round = 0; round < 2000; round++) {
      if (random() < 0.5) {
        const payload = value(0);
        const before = random() < 0.5 ? `"type"${space()}:${space()}"t"${space()},${space()}` : "";
        const after = random() < 0.5 ? `${space()},${space()}"note"${space()}:${space()}${value(2)}` : "";
        const text = `${space()}{${space()}${before}"payload"${space()}:${space()}${payload}${after}${space()}}${space()}`;
        expect(JSON.parse(slice(text, scanBody(text).payload)!)).toEqual(JSON.parse(payload));
        expect(single(text)).toBe(payload);
      } else {
        const payloads = Array.from({ length: 1 + int(5) }, () => (random() < 0.8 ? value(0) : undefined));
        const jobs = payloads.map((p) => `{${space()}"type":"t"${p === undefined ? "" : `${space()},${space()}"payload"${space()}:${space()}${p}`}${space()}}`);
        const text = `{"jobs"${space()}:${space()}[${space()}${jobs.join(space() + "," + space())}${space()}]}`;
        JSON.parse(text);
        const spans = scanBody(text);
        expect(payloads.map((_, i) => slice(text, spans.jobs[i]))).toEqual(payloads);
        expect(spans.duplicate).toBeNull();
      }
    }
  });
});
