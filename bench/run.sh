#!/usr/bin/env bash
# jwtgate load benchmark: one command, from a fresh clone.
#   bash bench/run.sh            # defaults: 3 alternating rounds of 5 s per scenario
#   DURATION=10s ROUNDS=5 bash bench/run.sh
# Builds jwtgate and the bench kit, installs wrk (and haproxy, for the
# reference row) from Debian when missing, then runs every scenario against
# the bare backend, a bare httputil.ReverseProxy and jwtgate in one run,
# alternating, and prints the table and ratios (results in bench/results/).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || { [ "${HAPROXY:-1}" = 1 ] && ! need haproxy; }; then
  if need apt-get; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    need wrk || $SUDO apt-get install -y -qq wrk
    if [ "${HAPROXY:-1}" = 1 ]; then need haproxy || $SUDO apt-get install -y -qq haproxy || true; fi
  fi
fi
need wrk || { echo "wrk is required (apt-get install wrk)"; exit 1; }

out=bench/results
mkdir -p "$out"
go build -trimpath -o "$out/jwtgate" ./cmd/jwtgate
go build -trimpath -o "$out/benchkit" ./bench/benchkit

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr), $(go version | cut -d' ' -f3)"
hap=""
if [ "${HAPROXY:-1}" = 1 ] && need haproxy; then hap="$(command -v haproxy)"; echo "# haproxy: $(haproxy -v | head -1)"; fi
exec "$out/benchkit" run -gateway "$out/jwtgate" -dir "$out" \
  -duration "${DURATION:-5s}" -rounds "${ROUNDS:-3}" -fresh "${FRESH:-100000}" -haproxy "$hap"
