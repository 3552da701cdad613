#!/usr/bin/env bash
# Runs every Go fuzz target for a bounded time: scripts/fuzz.sh [duration]
# (default 5s each). Run longer locally, e.g. scripts/fuzz.sh 10m.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-5s}"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "-- $pkg $f ($t)"
    go test -run='^$' -fuzz="^${f}\$" -fuzztime="$t" "$pkg"
  done
done
