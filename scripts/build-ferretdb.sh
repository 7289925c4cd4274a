#!/usr/bin/env bash
# Build the FerretDB server the MongoDB tests run against, once, outside the clone.
#
#   scripts/build-ferretdb.sh DIR      -> DIR/bin/ferretdb (Go module and build caches in DIR)
#
# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@VERSION` alone builds a binary
# that panics at start: the module zip lacks build/version/version.txt (a file
# FerretDB's release tooling generates). So the module's source is copied from
# the module cache, that file is written, and the binary is built from the copy
# with the module's own go.mod/go.sum (the same dependencies `go install` uses).
set -euo pipefail
dir=${1:?usage: build-ferretdb.sh DIR}
version=${FERRETDB_VERSION:-v1.24.2}
if ! command -v go >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # CI runs as root on a fresh machine; the distribution's go fetches the newer
  # toolchain FerretDB's go.mod names through the Go module proxy (GOTOOLCHAIN=auto).
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null) || true
fi
command -v go >/dev/null 2>&1 || { echo "FerretDB build failed: no Go toolchain (go) on PATH" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
export GOMODCACHE="$dir/gomod" GOCACHE="$dir/gocache" GOFLAGS=-mod=mod GOTOOLCHAIN=auto
log="$dir/build.log"
build() {  # each step must succeed (set -e does not apply inside a `||` list)
  info=$(go mod download -json "github.com/FerretDB/FerretDB@$version")
  src=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] && [ -d "$src" ] || { printf '%s\n' "$info" | grep '"Error"' || echo "go mod download: no module source"; false; } &&
  rm -rf "$dir/src" && cp -r "$src" "$dir/src" && chmod -R u+w "$dir/src" &&
  printf '%s\n' "$version" > "$dir/src/build/version/version.txt" &&
  (cd "$dir/src" && go build -trimpath -o "$dir/bin/ferretdb.tmp" ./cmd/ferretdb) &&
  "$dir/bin/ferretdb.tmp" --version &&
  mv "$dir/bin/ferretdb.tmp" "$dir/bin/ferretdb"
}
build >"$log" 2>&1 || { echo "FerretDB build failed (see $log): $(grep -v '^[[:space:]]*$' "$log" | tail -n 1)" >&2; exit 1; }
echo "built $dir/bin/ferretdb ($version)"
