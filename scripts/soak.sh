#!/usr/bin/env bash
# Runs the gateway soak test (proxy TestSoak) for longer than CI does:
#   scripts/soak.sh [duration] [extra go test flags...]
# e.g. scripts/soak.sh 10m, or scripts/soak.sh 1h30m -cpu 8. The default is
# 2m. The run uses the race detector; it checks that every request got
# exactly one audit record and the right decision while keys rotate and the
# config reloads, and that goroutines and the heap returned to baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
d="${1:-2m}"
shift || true
# Seconds in a Go duration made of h, m and s parts (for the go test timeout).
secs=0
rest="$d"
while [[ "$rest" =~ ^([0-9]+)(h|m|s)(.*)$ ]]; do
  n="${BASH_REMATCH[1]}"
  case "${BASH_REMATCH[2]}" in
    h) secs=$((secs + n * 3600)) ;;
    m) secs=$((secs + n * 60)) ;;
    s) secs=$((secs + n)) ;;
  esac
  rest="${BASH_REMATCH[3]}"
done
if [[ -n "$rest" || "$secs" -eq 0 ]]; then
  echo "soak.sh: duration $d: use whole h, m and s parts, e.g. 10m or 1h30m" >&2
  exit 2
fi
JWTGATE_SOAK="$d" exec go test -race -count=1 -run '^TestSoak$' -timeout "$((secs + 300))s" -v "$@" ./proxy
