#!/usr/bin/env bash
# release.sh [TARGET...]: builds the release executables into dist/release/, one per target, named
# jobqueue-<version>-<target>, puts the systemd unit and its environment file beside them
# (examples/systemd), and writes a SHA256SUMS file that `sha256sum -c SHA256SUMS` checks there.
# Every target named must build: one that cannot (its runtime could not be fetched) fails the whole
# release, naming it; none is skipped. Default targets: linux-x64 linux-arm64 linux-x64-musl darwin-arm64.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/release-env.sh
source scripts/release-env.sh "$@"

rm -rf "$dir"
mkdir -p "$dir"
failed=()
for target in "${targets[@]}"; do
  start=$SECONDS
  if scripts/build-binary.sh "$target" "$dir/jobqueue-$version-$target" >"$dir/.build-$target.log" 2>&1; then
    echo "built $dir/jobqueue-$version-$target ($((SECONDS - start)) s)"
    rm -f "$dir/.build-$target.log"
  else
    echo "FAILED $target:" >&2
    sed 's/^/  /' "$dir/.build-$target.log" >&2
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "release: ${#failed[@]} target(s) could not be built: ${failed[*]}" >&2
  exit 1
fi

cp examples/systemd/jobqueue.service examples/systemd/jobqueue.env "$dir/"
(cd "$dir" && sha256sum jobqueue-"$version"-* jobqueue.service jobqueue.env >SHA256SUMS && sha256sum -c --quiet SHA256SUMS)
echo "wrote $dir/SHA256SUMS ($(wc -l <"$dir/SHA256SUMS") files, checked)"
