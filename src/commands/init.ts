// init.ts: `jobqueue init [file]`: writes the commented starter job types file
// (src/config/starter-types.toml, carried inside the executable). Never overwrites a file.
import { writeFile } from "node:fs/promises";
import { extname } from "node:path";
import starter from "../config/starter-types.toml" with { type: "text" };

export const DEFAULT_TYPES_PATH = "./jobqueue.toml";

/** The starter file's text (it passes check-config as it is). */
export const STARTER_TYPES: string = starter;

export type InitResult = { written: true } | { written: false; reason: string };

/** Creates `path` with the starter text; refuses a path that exists or is not a .toml file. */
export async function writeStarterTypes(path: string): Promise<InitResult> {
  if (extname(path).toLowerCase() !== ".toml") {
    return { written: false, reason: `${path}: the starter file is TOML: give a path ending in .toml` };
  }
  try {
    // "wx": created here or not at all, so an existing file is never touched, even in a race.
    await writeFile(path, STARTER_TYPES, { flag: "wx", mode: 0o644 });
    return { written: true };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return { written: false, reason: `${path} already exists: not overwriting it (remove it, or name another file)` };
    return { written: false, reason: `${path}: cannot write it (${code ?? String(err)})` };
  }
}
