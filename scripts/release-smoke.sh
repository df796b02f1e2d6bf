#!/usr/bin/env bash
# release-smoke.sh [TARGET...]: proves the release executables in dist/release (make release) start
# and work. Each Linux binary this machine can run (natively, or under qemu-user for another
# architecture) prints its --version, checks a types file, migrates a fresh SQLite file and runs one
# noop job end to end (serve, POST /submit, GET /jobs/:id until completed, SIGTERM, exit 0). What
# cannot run here is checked as far as it can be, and the script says so; nothing is skipped
# silently: a missing tool or binary fails the run. Last, systemd-analyze verifies the example
# unit. Needs qemu-user-static, libc6-arm64-cross, musl, file, binutils, curl and systemd
# (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/release-env.sh
source scripts/release-env.sh "$@"

fail() { echo "release-smoke: FAIL: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is missing (install $2)"; }
need file file
need readelf binutils
need curl curl
need sha256sum coreutils

# The commit the binaries must name: the one make release built them from.
commit=unknown
if head=$(git rev-parse --short=7 HEAD 2>/dev/null); then
  commit=$head
  git diff --quiet HEAD -- 2>/dev/null || commit="$head-dirty"
fi

(cd "$dir" && sha256sum -c --quiet SHA256SUMS) || fail "sha256sum -c SHA256SUMS failed in $dir"
echo "ok: $dir/SHA256SUMS matches"

work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || kill -KILL "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

printf '[types.noop]\nbuiltin = "noop"\n' >"$work/types.toml"

host_arch=$(uname -m)
case "$host_arch" in amd64) host_arch=x86_64 ;; arm64) host_arch=aarch64 ;; esac

# The command prefix that runs a Linux binary of ARCH (x86_64 or aarch64) here: nothing natively,
# qemu-user with that architecture's glibc otherwise.
runner_for() {
  local arch=$1
  if [ "$arch" = "$host_arch" ]; then return 0; fi
  need "qemu-$arch-static" qemu-user-static
  local cross=arm64
  [ "$arch" = aarch64 ] || cross=amd64
  compgen -G "/usr/$arch-linux-gnu/lib/ld-linux-*.so.*" >/dev/null || fail "/usr/$arch-linux-gnu has no glibc loader (install libc6-$cross-cross)"
  echo "qemu-$arch-static -L /usr/$arch-linux-gnu"
}

# Runs the whole smoke on one binary: RUN... is the command prefix (may be empty).
end_to_end() {
  local target=$1 bin=$2
  shift 2
  local run=("$@" "$bin") out db log url id state code
  local started=$SECONDS

  out=$("${run[@]}" --version 2>&1) || fail "$target --version exited $?: $out"
  [ "$out" = "jobqueue $version (commit $commit, $target)" ] ||
    fail "$target --version said \"$out\", expected \"jobqueue $version (commit $commit, $target)\""
  echo "ok: $target --version: $out"

  out=$("${run[@]}" check-config "$work/types.toml" 2>&1) || fail "$target check-config exited $?: $out"
  [ "$out" = "ok: 1 job type, 0 schedules" ] || fail "$target check-config said \"$out\""

  db="$work/$target.db"
  JOBQUEUE_DB="$db" JOBQUEUE_LOG_LEVEL=error "${run[@]}" migrate || fail "$target migrate exited $?"
  [ -s "$db" ] || fail "$target migrate left no database file at $db"
  echo "ok: $target migrate created $db"

  log="$work/$target.log"
  JOBQUEUE_DB="$db" JOBQUEUE_KEEP_COMPLETED=1h "${run[@]}" serve --port 0 --config "$work/types.toml" 2>"$log" &
  server_pid=$!
  url=""
  for _ in $(seq 1 600); do
    url=$(grep -o '"msg":"listening".*' "$log" | grep -o '"url":"[^"]*"' | head -n 1 | cut -d'"' -f4 || true)
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || fail "$target serve exited before listening: $(tail -n 5 "$log")"
    sleep 0.1
  done
  [ -n "$url" ] || fail "$target serve did not log \"listening\" within 60 s"

  out=$(curl -sS --max-time 10 -XPOST "$url/submit" -H 'content-type: application/json' -d '{"type":"noop","payload":{"smoke":true}}')
  id=$(grep -o '"id":"[0-9]*"' <<<"$out" | cut -d'"' -f4 || true)
  [ -n "$id" ] || fail "$target POST /submit answered $out"
  state=""
  for _ in $(seq 1 600); do
    out=$(curl -sS --max-time 10 "$url/jobs/$id")
    state=$(grep -o '"state":"[a-z_]*"' <<<"$out" | head -n 1 | cut -d'"' -f4 || true)
    [ "$state" = completed ] && break
    sleep 0.1
  done
  [ "$state" = completed ] || fail "$target job $id did not complete within 60 s: $out"

  kill -TERM "$server_pid"
  for _ in $(seq 1 600); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then fail "$target serve still running 60 s after SIGTERM"; fi
  code=0
  wait "$server_pid" || code=$?
  server_pid=""
  [ "$code" -eq 0 ] || fail "$target serve exited $code after SIGTERM: $(tail -n 5 "$log")"
  echo "ok: $target served job $id to completed at $url and exited 0 on SIGTERM ($((SECONDS - started)) s${1:+, under $*})"
}

# The musl build needs the C++ runtime (libstdc++.so.6, libgcc_s) built for musl, as Alpine ships it.
# Debian has musl itself (/lib/ld-musl-x86_64.so.1, musl 1.2.x) but no musl libstdc++, so here the
# binary can only be loaded, not run: check it is a musl executable and that musl resolves every
# symbol it needs except the C++ runtime's. Where it does run, it gets the whole smoke instead.
check_musl() {
  local target=$1 bin=$2 desc needed out missing other
  desc=$(file -b "$bin")
  grep -q 'ELF 64-bit LSB.*x86-64.*interpreter /lib/ld-musl-x86_64.so.1' <<<"$desc" || fail "$target is not an x86-64 musl ELF: $desc"
  needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
  for lib in $needed; do
    case "$lib" in libc.musl-x86_64.so.1 | libstdc++.so.6 | libgcc_s.so.1) ;; *) fail "$target needs $lib, not a musl system library" ;; esac
  done
  if readelf -V "$bin" | grep -q 'GLIBC_'; then fail "$target requires glibc symbol versions"; fi
  echo "ok: $target is a musl ELF ($desc); needs only: $needed; no glibc symbol versions"
  [ -e /lib/ld-musl-x86_64.so.1 ] || fail "/lib/ld-musl-x86_64.so.1 is missing (install musl)"
  if [ "$host_arch" = x86_64 ] && out=$("$bin" --version 2>&1); then
    end_to_end "$target" "$bin"
    return
  fi
  # The loader names every library and symbol it could not find before giving up.
  missing=$(grep -o 'Error relocating [^:]*: [^:]*: symbol not found' <<<"$out" | awk -F': ' '{print $2}' | sort -u || true)
  [ -n "$missing" ] || fail "$target neither ran nor reported unresolved symbols under musl: $out"
  other=$(grep -vE '^(_Z|__cxa_|__gxx_|__dynamic_cast$|__once_proxy$|_Unwind_)' <<<"$missing" || true)
  [ -z "$other" ] || fail "$target needs symbols musl does not provide: $other"
  if grep 'Error loading shared library' <<<"$out" | grep -qv 'libstdc++.so.6\|libgcc_s.so.1'; then
    fail "$target could not load a library other than the C++ runtime: $(grep 'Error loading' <<<"$out")"
  fi
  echo "ok: $target loads under musl $(/lib/ld-musl-x86_64.so.1 --version 2>&1 | sed -n 's/^Version //p'): every C library symbol resolves;" \
    "the $(wc -l <<<"$missing") unresolved are the C++ runtime's (libstdc++.so.6, which Debian has no musl build of), so it cannot run here"
}

for target in "${targets[@]}"; do
  bin="$dir/jobqueue-$version-$target"
  [ -x "$bin" ] || fail "$bin is missing: run make release"
  case "$target" in
    linux-x64)
      grep -q 'ELF 64-bit LSB.*x86-64.*/lib64/ld-linux-x86-64.so.2' <<<"$(file -b "$bin")" || fail "$target is not an x86-64 glibc ELF"
      runner=$(runner_for x86_64)
      read -r -a prefix <<<"$runner"
      end_to_end "$target" "$bin" "${prefix[@]}"
      ;;
    linux-arm64)
      grep -q 'ELF 64-bit LSB.*ARM aarch64.*/lib/ld-linux-aarch64.so.1' <<<"$(file -b "$bin")" || fail "$target is not an aarch64 glibc ELF"
      runner=$(runner_for aarch64)
      read -r -a prefix <<<"$runner"
      end_to_end "$target" "$bin" "${prefix[@]}"
      ;;
    linux-x64-musl)
      check_musl "$target" "$bin"
      ;;
    darwin-arm64)
      grep -q 'Mach-O 64-bit arm64 executable' <<<"$(file -b "$bin")" || fail "$target is not a Mach-O arm64 executable: $(file -b "$bin")"
      echo "ok: $target is a Mach-O arm64 executable (macOS binaries cannot run on Linux: not started)"
      ;;
    *) fail "no smoke test for target $target" ;;
  esac
done
# The systemd unit shipped beside the binaries, pointed at one of them (verify needs the program).
scripts/check-systemd-unit.sh "$dir/jobqueue-$version-${targets[0]}"
echo "release-smoke: all ${#targets[@]} target(s) passed"
