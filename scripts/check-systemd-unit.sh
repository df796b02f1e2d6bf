#!/usr/bin/env bash
# check-systemd-unit.sh BINARY: checks examples/systemd/jobqueue.service with `systemd-analyze
# verify`, its ExecStart pointed at BINARY (verify insists the program exists and is executable).
# Fails on any complaint: verify exits 0 even for unknown keys and values it ignores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: scripts/check-systemd-unit.sh BINARY" >&2; exit 2; }
command -v systemd-analyze >/dev/null 2>&1 || { echo "check-systemd-unit: systemd-analyze is missing (install systemd)" >&2; exit 1; }
bin=$(realpath "$1")
[ -x "$bin" ] || { echo "check-systemd-unit: $1 is not an executable file" >&2; exit 1; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s#/usr/local/bin/jobqueue#$bin#g" examples/systemd/jobqueue.service >"$dir/jobqueue.service"
out=$(systemd-analyze verify "$dir/jobqueue.service" 2>&1) || { echo "check-systemd-unit: systemd-analyze verify failed: $out" >&2; exit 1; }
[ -z "$out" ] || { echo "check-systemd-unit: systemd-analyze verify complained: $out" >&2; exit 1; }
# systemd's own score of the sandboxing, for the log (0 is the most locked down, 10 the least).
exposure=$(systemd-analyze security --offline=yes "$dir/jobqueue.service" 2>&1 | sed -n 's/.*Overall exposure level for jobqueue.service: \([0-9.]* [A-Z]*\).*/\1/p' || true)
echo "ok: examples/systemd/jobqueue.service passes $(systemd-analyze --version | head -n 1 | cut -d' ' -f1-2) verify; exposure ${exposure:-unknown}"
