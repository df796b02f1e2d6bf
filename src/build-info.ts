// build-info.ts: what this executable is: its version, the git commit it was built from and the
// target it was built for. scripts/build-binary.sh fixes the last two with `bun build --define`; a
// run from source (or a build without them) says "commit unknown" and the platform it runs on.

import pkg from "../package.json" with { type: "json" };

// Replaced by their values at build time; never declared at run time.
declare const JOBQUEUE_BUILD_COMMIT: string | undefined;
declare const JOBQUEUE_BUILD_TARGET: string | undefined;

export interface BuildInfo {
  version: string;
  /** Short git commit, with "-dirty" when the tree had uncommitted changes; "unknown" from source. */
  commit: string;
  /** "linux-x64", "linux-arm64", "linux-x64-musl", "darwin-arm64", …: the platform it was built for. */
  target: string;
}

export const BUILD_INFO: BuildInfo = {
  version: pkg.version,
  commit: typeof JOBQUEUE_BUILD_COMMIT === "string" ? JOBQUEUE_BUILD_COMMIT : "unknown",
  target: typeof JOBQUEUE_BUILD_TARGET === "string" ? JOBQUEUE_BUILD_TARGET : `${process.platform}-${process.arch}`,
};

/** The line --version prints: `jobqueue 0.1.0 (commit abc1234, linux-arm64)`. */
export function versionLine(info: BuildInfo = BUILD_INFO): string {
  return `jobqueue ${info.version} (commit ${info.commit}, ${info.target})`;
}
