#!/usr/bin/env bash
# How long a hook takes to refuse a request whose `webhook-signature` lists
# N candidates (a 64 KB body, no valid signature: what anyone holding the
# hook URL can send). Prints one JSON line per N with the median and the
# slowest of REPEATS requests, in milliseconds.
#
#   scripts/bench-signatures.sh                      # target/release/hookrelay
#   BIN=/path/to/other/hookrelay scripts/bench-signatures.sh
#   COUNTS="1 20000 90000" REPEATS=5 scripts/bench-signatures.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/hookrelay}
COUNTS=${COUNTS:-"1 20000 90000"}
REPEATS=${REPEATS:-5}
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --bin hookrelay

dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
hook=67a7472b-b43c-415d-b1ce-c135fb1dfb0e
cat > "$dir/hookrelay.toml" <<EOF
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[store]
path = "$dir/spool.db"
[origins.sekoia]
kind = "sekoia"
base_url = "http://127.0.0.1:9"
api_key = "k"
[hooks.soc]
id = "$hook"
origin = "sekoia"
secret = "whsec_c2VjcmV0LWtleS1udW1iZXItdHdvLWZvci1ob29rcmVsYXk="
[destinations.teams]
kind = "teams"
url = "http://127.0.0.1:9/teams"
[[routes]]
name = "all"
to = ["teams"]
EOF
"$BIN" run --config "$dir/hookrelay.toml" 2> "$dir/log" &
pid=$!
for _ in $(seq 100); do
  listen=$(grep -o '"listen":"[^"]*"' "$dir/log" | head -1 | cut -d'"' -f4 || true)
  [ -n "$listen" ] && break
  sleep 0.1
done
[ -n "$listen" ] || { cat "$dir/log" >&2; exit 1; }

python3 - "$dir" <<'EOF'
import json, sys
d = sys.argv[1]
body = {"type": "alert", "action": "created",
        "attributes": {"uuid": "5696845f-9ecf-4431-9f0f-48ee0ee2eff1"},
        "padding": "x" * 64000}
open(f"{d}/body.json", "w").write(json.dumps(body))
EOF
now=$(date +%s)
for n in $COUNTS; do
  python3 -c "import sys; sys.stdout.write('webhook-signature: ' + 'v1, ' * int(sys.argv[1]))" "$n" > "$dir/header"
  times=()
  for _ in $(seq "$REPEATS"); do
    t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' \
      -H 'content-type: application/json' -H 'webhook-id: msg_bench' \
      -H "webhook-timestamp: $now" -H @"$dir/header" \
      --data-binary @"$dir/body.json" "http://$listen/hooks/$hook")
    [ "${t%% *}" = 401 ] || { echo "expected 401, got ${t%% *}" >&2; exit 1; }
    times+=("${t#* }")
  done
  printf '%s\n' "${times[@]}" | python3 -c "
import json, statistics, sys
t = sorted(float(x) * 1000 for x in sys.stdin)
print(json.dumps({'candidates': $n, 'header_bytes': 4 * $n, 'median_ms': round(statistics.median(t), 1), 'max_ms': round(t[-1], 1), 'binary': '$BIN'}))"
done
