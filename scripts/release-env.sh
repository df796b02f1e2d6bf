# release-env.sh: sourced by release.sh and release-smoke.sh (from the repository root) with their
# arguments: the targets named (default: every one), the version, and the folder releases go to.
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(linux-x64 linux-arm64 linux-x64-musl darwin-arm64)
version=$(bun -e 'console.log(require("./package.json").version)')
dir=dist/release
