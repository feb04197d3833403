#!/usr/bin/env bash
# Delivered/s with 1, 2 and 3 hookrelay replicas on one PostgreSQL database
# (BENCHMARKS.md, "Several replicas"), beside the single SQLite daemon.
#
#   scripts/bench-replicas.sh                  # 3 rounds of 10,000 events at c=32
#   COUNT=2000 REPEATS=1 scripts/bench-replicas.sh
#   REPLICAS=1 BEFORE=/tmp/hookrelay-old scripts/bench-replicas.sh
#                                              # one replica, this build against an older one
#
# Each trial reports the relay's CPU and the PostgreSQL server's (the
# postmaster and its backends) per event.
# Starts a throw-away PostgreSQL cluster (Debian's postgresql package;
# fsync and synchronous_commit on, as in production) in a temporary
# directory, as the postgres user when run as root. The replicas and the
# database share core 0 (RELAY_CPU), the load generator and the fake
# upstreams run on core 1; replica counts are interleaved in each round.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-target/bench/replicas.jsonl}
REPEATS=${REPEATS:-3}
COUNT=${COUNT:-10000}
CONCURRENCY=${CONCURRENCY:-32}
RELAY_CPU=${RELAY_CPU:-0}
REPLICAS=${REPLICAS:-1 2 3}
BEFORE=${BEFORE:-}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

cargo build --release --bin hookrelay --bin hookrelay-bench

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PGBIN" ]; then
  echo "PostgreSQL server binaries not found: apt install postgresql" >&2
  exit 1
fi
DIR=$(mktemp -d /tmp/hookrelay-benchpg-XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$DIR"
  as_pg=(runuser -u postgres --)
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$PGBIN/initdb" -A trust -U postgres -E UTF8 -D "$DIR/data" >/dev/null
stop_pg() {
  "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap stop_pg EXIT
taskset -c "$RELAY_CPU" "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=128MB" start >/dev/null
PG_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
PG_PID=$(head -n 1 "$DIR/data/postmaster.pid")

trial() { # system, then trial flags
  local system=$1; shift
  if taskset -c 1 target/release/hookrelay-bench trial --system "$system" --relay-cpu "$RELAY_CPU" \
      --count "$COUNT" --concurrency "$CONCURRENCY" --destinations 1 "$@" >> "$OUT"; then
    tail -n 1 "$OUT" >&2
  else
    echo "trial failed: $system $*" >&2
  fi
}

for _ in $(seq "$REPEATS"); do
  trial hookrelay
  for n in $REPLICAS; do
    if [ -n "$BEFORE" ]; then
      trial hookrelay-pg --replicas "$n" --pg-url "$PG_URL" --server-pid "$PG_PID" \
        --hookrelay "$BEFORE" --label before
    fi
    trial hookrelay-pg --replicas "$n" --pg-url "$PG_URL" --server-pid "$PG_PID"
  done
done

# The reference handler in the same run (it delivers ~100/s: fewer events).
# It is not part of this repository: only with REFERENCE_DIR (see scripts/bench.sh).
REFERENCE_DIR=${REFERENCE_DIR:-}
if [ -n "$REFERENCE_DIR" ] && [ -x target/bench-venv/bin/uvicorn ]; then
  COUNT=1000 trial reference --reference-dir "$REFERENCE_DIR" --stall-secs 30
else
  echo "note: the reference handler is skipped: set REFERENCE_DIR=/path/to/sekoia-fastapi-sample (scripts/bench.sh installs its requirements)" >&2
fi

target/release/hookrelay-bench report "$OUT"
