#!/usr/bin/env bash
# The legitimate sender's latency during connection floods (BENCHMARKS.md,
# "Connection floods"): for each binary given (default: the release build),
# starts it on loopback and runs `hookrelay-bench flood` four times —
# slow-loris headers and trickled bodies, from one address (3,000
# connections) and from 200 addresses (10 each) — printing one JSON line
# per flood. Loopback only; each flood lasts 8 s.
#
#   scripts/bench-flood.sh [BINARY ...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- target/release/hookrelay
cargo build --release --bin hookrelay-bench >&2
OUT=${OUT:-target/bench/flood.jsonl}
mkdir -p "$(dirname "$OUT")"
for bin in "$@"; do
    dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    admin=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat > "$dir/hookrelay.toml" <<CONF
[server]
listen = "127.0.0.1:$port"
[admin]
listen = "127.0.0.1:$admin"
[store]
path = "$dir/spool.db"
[origins.sekoia]
kind = "sekoia"
base_url = "http://127.0.0.1:9"
api_key = "bench"
enrich_deadline = "1s"
[hooks.soc]
id = "67a7472b-b43c-415d-b1ce-c135fb1dfb0e"
origin = "sekoia"
[destinations.chat]
kind = "slack"
url = "http://127.0.0.1:9/chat"
[[routes]]
name = "none"
to = ["chat"]
[routes.when]
action = ["never"]
CONF
    taskset -c 0 "$bin" run --config "$dir/hookrelay.toml" 2>"$dir/log" &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break; sleep 0.1; done
    for attack in headers body; do
        for shape in "1 3000" "200 10"; do
            set -- $shape
            taskset -c 1 target/release/hookrelay-bench flood --target "127.0.0.1:$port" --admin "127.0.0.1:$admin" \
                --attack "$attack" --sources "$1" --per-source "$2" --duration-secs 8 --pid "$pid" \
                --label "$bin" | tee -a "$OUT"
        done
    done
    kill "$pid"; wait "$pid" || true
    rm -rf "$dir"
done
