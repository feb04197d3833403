#!/bin/bash
# Runs inside a minimal Debian booted with systemd as PID 1 (see
# scripts/test-packaging.sh), as a oneshot unit after multi-user.target:
# installs hookrelay the way the README says, drives the shipped unit like a
# sysadmin would, writes one line per check to /results/checks ("ok NAME" or
# "FAIL NAME: why") and "done" at the end, then powers the machine off.
#
# /src is the repository (read-only), /results a folder shared with the host.
set -u
OUT=/results/checks
: > "$OUT"
HOOK=http://127.0.0.1:8080/hooks/67a7472b-b43c-415d-b1ce-c135fb1dfb0e
CHAT=/results/chat
FAKE=http://127.0.0.1:9999

ok() { echo "ok $1" >> "$OUT"; }
fail() { echo "FAIL $1: $2" >> "$OUT"; }
check() { # name, command...
  local name=$1; shift
  if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(echo "$out" | tail -5 | tr '\n' ' ')"; fi
}
# Waits up to $2 s for a command to succeed.
until_ok() {
  local name=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    if "$@" >/dev/null 2>&1; then ok "$name"; return 0; fi
    sleep 0.2
  done
  fail "$name" "not within ${secs}s"
  return 1
}
lines() { [ -f "$CHAT/$1.jsonl" ] && wc -l < "$CHAT/$1.jsonl" || echo 0; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }
post() { # body file → HTTP status
  curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    --data-binary @"$1" "$HOOK"
}
post_202() { [ "$(post "$1")" = 202 ]; }
main_pid() { systemctl show -p MainPID --value hookrelay; }
journal() { journalctl -u hookrelay --no-pager -o cat; }
# An event about a new alert each time (a repeated body is a sender retry).
event() { # n → file
  sed "s/2022-01-14T15:06:57/2022-01-14T15:06:$(printf %02d "$1")/" \
    /src/tests/fixtures/event-alert-created.json > "/tmp/event-$1.json"
  echo "/tmp/event-$1.json"
}

mkdir -p "$CHAT"
# `sudo` in the README's commands: this probe is root already.
printf '#!/bin/sh\nexec env "$@"\n' > /usr/local/bin/sudo && chmod +x /usr/local/bin/sudo

# 1. The README's install block, as written (the binary is already built).
export SEKOIA_API_KEY=packaging-test-key
export TEAMS_WEBHOOK_URL=$FAKE/chat/teams
export SLACK_WEBHOOK_URL=$FAKE/chat/slack
block=$(awk '/packaging test \(scripts\/test-packaging.sh\) runs this block/{f=1; next} f && /^```sh/{g=1; next} g && /^```/{exit} g' /src/README.md \
  | grep -v '^cargo build')
# A checkout as the README assumes it: the built binary, the unit, the config.
mkdir -p /tmp/checkout/target/release && cd /tmp/checkout
cp /src/hookrelay-release target/release/hookrelay
ln -sfn /src/systemd systemd && ln -sfn /src/config config
check readme-install-block bash -euxc "$block"
until_ok unit-active 20 systemctl is-active --quiet hookrelay
check ready-sent bash -c '[ "$(systemctl show -p StatusText --value hookrelay)" != "" ]'
check healthz curl -sf http://127.0.0.1:8080/healthz
until_ok readyz 10 curl -sf http://127.0.0.1:9091/readyz
pid=$(main_pid)

# 2. A config whose alert API is the fake one inside; `systemctl reload`
#    applies it in place.
cp /src/tests/packaging/hookrelay.toml /etc/hookrelay/hookrelay.toml
check reload-applies systemctl reload hookrelay
check reload-same-pid bash -c "[ \"\$(systemctl show -p MainPID --value hookrelay)\" = $pid ]"
check event-accepted post_202 "$(event 1)"
until_ok event-delivered-teams 20 has_lines teams 1

# 3. A changed route is effective after a reload.
sed -i 's/^to = \["teams"\]/to = ["slack"]/' /etc/hookrelay/hookrelay.toml
check reload-new-route systemctl reload hookrelay
check event-accepted-2 post_202 "$(event 2)"
until_ok new-route-delivered-slack 20 has_lines slack 1

# 4. A broken config: the reload fails, the journal says why, the old one serves.
cp /etc/hookrelay/hookrelay.toml /tmp/good.toml
sed -i 's/^to = \["slack"\]/to = ["nowhere"]/' /etc/hookrelay/hookrelay.toml
if systemctl reload hookrelay >/dev/null 2>&1; then
  fail broken-reload-refused "systemctl reload succeeded with a broken config"
else
  ok broken-reload-refused
fi
check broken-reload-explained bash -c "journalctl -u hookrelay --no-pager -o cat | grep -q 'no destination named'"
check old-config-serves post_202 "$(event 3)"
until_ok old-config-delivers 20 has_lines slack 2
check still-same-pid bash -c "[ \"\$(systemctl show -p MainPID --value hookrelay)\" = $pid ]"
cp /tmp/good.toml /etc/hookrelay/hookrelay.toml

# 5. A restart with deliveries pending loses nothing.
touch "$CHAT/slack.down"
for n in 10 11 12 13 14; do post "$(event $n)" > /dev/null; done
sleep 1
check restart systemctl restart hookrelay
until_ok active-after-restart 20 systemctl is-active --quiet hookrelay
rm -f "$CHAT/slack.down"
until_ok pending-survive-restart 30 has_lines slack 7

# 6. The watchdog does not kill a healthy daemon.
pid=$(main_pid)
sleep 45
check watchdog-spares-healthy bash -c "[ \"\$(systemctl show -p MainPID --value hookrelay)\" = $pid ] && [ \"\$(systemctl show -p NRestarts --value hookrelay)\" = 0 ]"

# 7. The sandbox: no seccomp kill (SIGSYS), no W^X or permission failure.
check no-sandbox-failure bash -c "! journalctl -u hookrelay --no-pager -o cat | grep -Ei 'SIGSYS|status=31|code=killed|memory deny|Permission denied|Operation not permitted'"

# 8. A clean stop within TimeoutStopSec.
t0=$SECONDS
check stop systemctl stop hookrelay
check stop-in-time bash -c "[ $((SECONDS - t0)) -lt 30 ]"
check stop-clean bash -c "[ \"\$(systemctl show -p Result --value hookrelay)\" = success ]"

# 9. Bad input: a config that fails `check`, then a missing credential file:
#    the unit fails to start, with the reason in the journal.
sed -i 's/^to = \["slack"\]/to = ["nowhere"]/' /etc/hookrelay/hookrelay.toml
systemctl start hookrelay >/dev/null 2>&1
check bad-config-not-started bash -c "! systemctl is-active --quiet hookrelay"
check bad-config-explained bash -c "journalctl -u hookrelay --no-pager -o cat | grep -q 'routes\[0\].to: no destination named'"
systemctl reset-failed hookrelay >/dev/null 2>&1
cp /tmp/good.toml /etc/hookrelay/hookrelay.toml
mv /etc/hookrelay/credentials/slack-url /tmp/slack-url
systemctl start hookrelay >/dev/null 2>&1
check missing-credential-not-started bash -c "! systemctl is-active --quiet hookrelay"
check missing-credential-explained bash -c "journalctl -u hookrelay --no-pager -o cat | grep -qi 'credential'"
mv /tmp/slack-url /etc/hookrelay/credentials/slack-url

journal > /results/journal.txt 2>&1
echo done >> "$OUT"
systemctl poweroff
