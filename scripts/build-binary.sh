#!/usr/bin/env bash
# build-binary.sh TARGET OUTFILE: compiles src/main.ts into one executable, with the git commit and
# the target fixed inside it (src/build-info.ts reads them; `jobqueue --version` prints them).
# TARGET is "native" (the Bun that runs this script, as `make build` has always done) or one of
# linux-x64, linux-arm64, linux-x64-musl, darwin-arm64. For a target other than this machine's,
# Bun fetches that platform's runtime from the npm registry (@oven/bun-<os>-<arch>[-musl]) into its
# install cache on first use; a failed fetch fails this script and names the target.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: scripts/build-binary.sh native|linux-x64|linux-arm64|linux-x64-musl|darwin-arm64 OUTFILE" >&2; exit 2; }
target=$1
out=$2

# The platform this machine's Bun builds for when given no --target.
native_target() {
  local os arch libc=""
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) echo "build-binary.sh: unsupported build system $(uname -s)" >&2; return 1 ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "build-binary.sh: unsupported architecture $(uname -m)" >&2; return 1 ;;
  esac
  if [ "$os" = linux ] && ldd --version 2>&1 | grep -qi musl; then libc=-musl; fi
  echo "$os-$arch$libc"
}

# Bun's name for each release target. x64 asks for the "modern" (AVX2, Haswell and later) build
# explicitly, so the result does not depend on which x64 build of Bun runs this script.
target_flags=()
case "$target" in
  native) target=$(native_target) ;;
  linux-x64) target_flags=(--target=bun-linux-x64-modern) ;;
  linux-arm64) target_flags=(--target=bun-linux-arm64) ;;
  linux-x64-musl) target_flags=(--target=bun-linux-x64-musl-modern) ;;
  darwin-arm64) target_flags=(--target=bun-darwin-arm64) ;;
  *) echo "build-binary.sh: unknown target \"$target\" (expected native, linux-x64, linux-arm64, linux-x64-musl or darwin-arm64)" >&2; exit 2 ;;
esac

# The commit, marked -dirty when tracked files differ from it; "unknown" outside a git checkout.
commit=unknown
if head=$(git rev-parse --short=7 HEAD 2>/dev/null); then
  commit=$head
  git diff --quiet HEAD -- 2>/dev/null || commit="$head-dirty"
fi

mkdir -p "$(dirname "$out")"
if ! bun build --compile --bytecode --format=esm --minify --sourcemap "${target_flags[@]}" \
  --define "JOBQUEUE_BUILD_COMMIT=\"$commit\"" --define "JOBQUEUE_BUILD_TARGET=\"$target\"" \
  src/main.ts --outfile "$out"; then
  echo "build-binary.sh: could not build $target (for another platform Bun must fetch its runtime from registry.npmjs.org; see docs/operations.md#release-builds)" >&2
  exit 1
fi
# The source map is inside the executable (stack traces name src/… lines); the copy beside it is not needed.
rm -f "$out.map"
