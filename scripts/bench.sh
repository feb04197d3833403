#!/usr/bin/env bash
# Runs the benchmark matrix of BENCHMARKS.md and prints its tables.
#
#   scripts/bench.sh            # the full matrix (about 15 minutes)
#   QUICK=1 scripts/bench.sh    # the headline scenario only
#   scripts/bench.sh console    # the web console's pages over 100,000 events only
#   scripts/bench.sh backlog    # 100,000 events queued behind a dead chat service, then a restart
#   scripts/bench.sh storm      # 10,000 alerts at once for a rate-limited, digesting Teams that answers 429s
#   scripts/bench.sh pg         # one replica on PostgreSQL beside the SQLite daemon (scripts/bench-replicas.sh)
#
# The relay under test runs on core 0, the harness (load generator, fake
# alert API and chat services) on core 1; systems are interleaved
# (ceiling, durable ceiling, hookrelay, ceiling, …) and medians compared.
# The reference handler (Sekoia.io's FastAPI sample, a third party's script
# that is not part of this repository) runs only when REFERENCE_DIR names
# its directory (main.py and requirements.txt); its requirements are then
# installed into target/bench-venv from PyPI. Without it, or if that
# install fails, its rows are skipped with a message saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

REFERENCE_DIR=${REFERENCE_DIR:-}
OUT=${OUT:-target/bench/results.jsonl}
REPEATS=${REPEATS:-3}
HEADLINE_EVENTS=${HEADLINE_EVENTS:-20000}   # fewer for a quick smoke run of this script
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

cargo build --release --bin hookrelay --bin hookrelay-bench

# The web console: every page timed over a spool of 100,000 events
# (relay on core 0; one request at a time; JSON line in target/bench/console.jsonl).
console_pages() {
  taskset -c 1 target/release/hookrelay-bench console --events "${CONSOLE_EVENTS:-100000}" \
    --requests 30 --relay-cpu 0 | tee -a target/bench/console.jsonl
}
# A backlog: the chat service down while 100,000 events arrive, then a
# restart with that backlog (JSON line in target/bench/backlog.jsonl).
backlog() {
  taskset -c 1 target/release/hookrelay-bench backlog --count "${BACKLOG_EVENTS:-100000}" \
    --relay-cpu 0 | tee -a target/bench/backlog.jsonl
}
# An alert storm: 10,000 alerts as fast as the daemon takes them, one Teams
# destination with max_per_minute = 30 and digest = true, a chat service
# answering every fifth request with 429 and Retry-After: 2 (JSON line in
# target/bench/storm.jsonl).
storm() {
  taskset -c 1 target/release/hookrelay-bench storm --count "${STORM_EVENTS:-10000}" \
    --relay-cpu 0 | tee -a target/bench/storm.jsonl
}
# One replica on PostgreSQL (database on the relay's core) beside the
# SQLite daemon, with the relay's and the database's CPU per event
# (scripts/bench-replicas.sh; PG_REPLICAS="1 2 3" for more replicas).
pg() {
  if ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
    REPLICAS="${PG_REPLICAS:-1}" COUNT="${PG_EVENTS:-10000}" scripts/bench-replicas.sh
  else
    echo "PostgreSQL server binaries not found (apt install postgresql): the PostgreSQL rows are skipped" >&2
  fi
}
if [ "${1:-}" = pg ]; then
  pg
  exit 0
fi
if [ "${1:-}" = storm ]; then
  storm
  exit 0
fi
if [ "${1:-}" = console ]; then
  console_pages
  exit 0
fi
if [ "${1:-}" = backlog ]; then
  backlog
  exit 0
fi
# The reference handler: only when REFERENCE_DIR says where it is.
REFERENCE=
if [ -z "$REFERENCE_DIR" ]; then
  echo "note: the reference handler is skipped: it is not part of this repository." >&2
  echo "      Set REFERENCE_DIR=/path/to/sekoia-fastapi-sample (its main.py and requirements.txt) to measure it too." >&2
elif [ ! -f "$REFERENCE_DIR/main.py" ]; then
  echo "note: the reference handler is skipped: no main.py in REFERENCE_DIR=$REFERENCE_DIR" >&2
else
  if [ ! -x target/bench-venv/bin/uvicorn ] && [ -f "$REFERENCE_DIR/requirements.txt" ]; then
    python3 -m venv target/bench-venv && target/bench-venv/bin/pip install -q -r "$REFERENCE_DIR/requirements.txt" \
      || echo "warning: could not install the reference handler's requirements; its rows will be missing" >&2
  fi
  REFERENCE=1
fi

trial() { # system, then trial flags
  local system=$1; shift
  local reference=()
  [ -n "$REFERENCE" ] && reference=(--reference-dir "$REFERENCE_DIR")
  if taskset -c 1 target/release/hookrelay-bench trial --system "$system" --relay-cpu 0 \
      "${reference[@]}" "$@" >> "$OUT"; then
    tail -n 1 "$OUT" >&2
  else
    echo "trial failed: $system $*" >&2
  fi
}

# Interleave: ceiling, then each system, repeated; a final ceiling.
scenario() { # systems (comma-separated), then trial flags
  local systems=$1; shift
  for _ in $(seq "$REPEATS"); do
    trial ceiling "$@"
    for s in ${systems//,/ }; do trial "$s" "$@"; done
  done
  trial ceiling "$@"
}

# Headline: 20,000 events at concurrency 32, one destination, against both
# ceilings (in memory; durable: the least a relay that answers 202 only
# after an fsync'd commit must do); also what durability costs (the same
# daemon with its spool on a RAM disk).
scenario ceiling-durable,hookrelay,hookrelay-normal,hookrelay-tmpfs --count "$HEADLINE_EVENTS" --concurrency 32 --destinations 1
if [ -z "${QUICK:-}" ]; then
  for c in 1 32 256; do
    scenario ceiling-durable,hookrelay --count 2000 --concurrency "$c" --destinations 1
    scenario ceiling-durable,hookrelay --count 2000 --concurrency "$c" --destinations 4
  done
  # Slow upstreams: a 50 ms alert API and a 200 ms chat service.
  scenario ceiling-durable,hookrelay --count 2000 --concurrency 32 --destinations 1 --api-delay-ms 50 --chat-delay-ms 200
  scenario ceiling-durable,hookrelay --count 2000 --concurrency 32 --destinations 4 --api-delay-ms 50 --chat-delay-ms 200
  # The reference handler: one destination only; fewer events (it delivers ~100/s).
  if [ -n "$REFERENCE" ]; then
    for c in 1 32 256; do
      REPEATS=1 scenario reference --count 1000 --concurrency "$c" --destinations 1 --stall-secs 30
    done
    REPEATS=1 scenario reference --count 1000 --concurrency 32 --destinations 1 --api-delay-ms 50 --chat-delay-ms 200 --stall-secs 30
  fi
fi

[ -z "${QUICK:-}" ] && console_pages && backlog && storm && pg
target/release/hookrelay-bench report "$OUT"
