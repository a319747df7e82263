#!/usr/bin/env bash
# Installs the Dendrite homeserver (v0.13.8, matrix-org, Apache-2.0) that the
# Matrix integration tests start, unless it is already there, and prints the
# directory that holds its binaries. Put that directory on PATH before
# running the tests:
#
#   export PATH="$(.ci/dendrite.sh):$PATH"
#
# DENDRITE_BIN_DIR overrides the cache directory ($HOME/.cache/herald/dendrite).
# The first install builds from source through the Go module proxy (a few
# minutes); later runs find the binaries and return at once.
set -euo pipefail

version=v0.13.8
dir="${DENDRITE_BIN_DIR:-$HOME/.cache/herald/dendrite}"
tools=(dendrite generate-config generate-keys create-account)

missing=0
for t in "${tools[@]}"; do
  [ -x "$dir/$t" ] || missing=1
done
if [ -f "$dir/VERSION" ] && [ "$(cat "$dir/VERSION")" != "$version" ]; then
  missing=1
fi

if [ "$missing" = 1 ]; then
  mkdir -p "$dir"
  pkgs=()
  for t in "${tools[@]}"; do
    pkgs+=("github.com/matrix-org/dendrite/cmd/$t@$version")
  done
  echo "installing Dendrite $version into $dir" >&2
  # Dendrite's own go.mod decides its dependencies; it is built outside this
  # module so that Herald's go.mod stays untouched. Dendrite's SQLite driver
  # needs cgo.
  (cd "$dir" && GOFLAGS=-mod=mod GOBIN="$dir" CGO_ENABLED=1 go install "${pkgs[@]}") >&2
  echo "$version" >"$dir/VERSION"
fi

echo "$dir"
