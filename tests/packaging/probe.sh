#!/bin/bash
# Runs inside a minimal Debian booted with systemd as PID 1 (see
# scripts/test-packaging.sh), as a oneshot unit after multi-user.target:
# installs hookrelay from its Debian package as a sysadmin would (`apt
# install ./hookrelay_*.deb`, offline), writes a first configuration with
# `hookrelay init`, drives the shipped unit, upgrades to a rebuilt package
# with a changed conffile, removes and purges it. Writes one line per check
# to /results/checks ("ok NAME" or "FAIL NAME: why") and "done" at the end,
# then powers the machine off.
#
# /src holds the packages and the test files (read-only), /results a folder
# shared with the host.
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
export DEBIAN_FRONTEND=noninteractive
# Standard Webhooks: POSTs file $1 to hook $2 signed with the hook's secret
# (the credential `hookrelay init` wrote); prints the HTTP status.
post_signed() {
  python3 - "$1" "$2" <<'PY'
import base64, hashlib, hmac, sys, time, urllib.error, urllib.request, uuid
body = open(sys.argv[1], "rb").read()
secret = open("/etc/hookrelay/credentials/hook-secret").read().strip()
key = base64.b64decode(secret[len("whsec_"):])
msg, ts = "msg_" + uuid.uuid4().hex, str(int(time.time()))
mac = hmac.new(key, f"{msg}.{ts}.".encode() + body, hashlib.sha256).digest()
request = urllib.request.Request(
    f"http://127.0.0.1:8080/hooks/{sys.argv[2]}", data=body,
    headers={"content-type": "application/json", "webhook-id": msg,
             "webhook-timestamp": ts,
             "webhook-signature": "v1," + base64.b64encode(mac).decode()})
try:
    print(urllib.request.urlopen(request, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}

# 1. The package, installed offline: its only dependency (libc) is here.
DEB=$(ls /src/hookrelay_*-1_*.deb)
DEB2=$(ls /src/hookrelay_*-2_*.deb)
check apt-install bash -c "apt-get install -y $DEB > /tmp/apt-install.log 2>&1 || { cat /tmp/apt-install.log; exit 1; }"
check install-says-not-started grep -q 'NOT started' /tmp/apt-install.log
check install-says-init grep -q 'hookrelay init --dir /etc/hookrelay' /tmp/apt-install.log
check install-says-enable grep -q 'systemctl enable --now hookrelay' /tmp/apt-install.log
check installed-not-started bash -c "! systemctl is-active --quiet hookrelay"
check installed-not-enabled bash -c "! systemctl is-enabled --quiet hookrelay"
check binary-in-usr-bin /usr/bin/hookrelay --version
check unit-known bash -c "systemctl cat hookrelay | grep -q 'ExecStart=hookrelay run'"
check example-is-conffile bash -c "dpkg-query -W -f='\${Conffiles}' hookrelay | grep -q '/etc/hookrelay/hookrelay.toml '"
check man-pages bash -c "test -s /usr/share/man/man1/hookrelay.1.gz && zcat /usr/share/man/man1/hookrelay-init.1.gz | grep -q 'api\\\\-key\\\\-file'"
check completions bash -c "grep -q init /usr/share/bash-completion/completions/hookrelay && test -s /usr/share/zsh/vendor-completions/_hookrelay && test -s /usr/share/fish/vendor_completions.d/hookrelay.fish"
check templates test -s /usr/share/hookrelay/templates/teams.json
check copyright grep -q 'Apache License' /usr/share/doc/hookrelay/copyright
check readme test -s /usr/share/doc/hookrelay/README.md

# 1b. `hookrelay init`: a first configuration from a key and a chat URL.
printf %s packaging-test-key > /root/api-key
printf '%s\n' "$FAKE/chat/teams" > /root/teams-url
check init hookrelay init --dir /etc/hookrelay --api-key-file /root/api-key \
  --teams-url-file /root/teams-url --region fra1 --public-url http://127.0.0.1:8080
INIT_HOOK=$(sed -n 's/^id = "\(.*\)"$/\1/p' /etc/hookrelay/hookrelay.toml)
check init-hook-id bash -c "[ -n '$INIT_HOOK' ]"
check init-modes bash -c '[ "$(stat -c %a /etc/hookrelay/credentials)" = 700 ] && [ "$(stat -c %a /etc/hookrelay/credentials/sekoia-api-key /etc/hookrelay/credentials/teams-url /etc/hookrelay/credentials/hook-secret | sort -u)" = 600 ]'
check init-config-passes-check env CREDENTIALS_DIRECTORY=/etc/hookrelay/credentials \
  hookrelay check --config /etc/hookrelay/hookrelay.toml
check init-refuses-overwrite bash -c "! hookrelay init --dir /etc/hookrelay --api-key-file /root/api-key --teams-url-file /root/teams-url 2>/tmp/init2.err && grep -q -- '--dir' /tmp/init2.err"
# The operator's edits: the alert API is the fake one here (and gives up
# quickly), and a Slack webhook for later steps.
sed -i 's|^region = "fra1"$|&\nbase_url = "http://127.0.0.1:9999"\nenrich_deadline = "5s"|' /etc/hookrelay/hookrelay.toml
printf %s "$FAKE/chat/slack" > /etc/hookrelay/credentials/slack-url
chmod 600 /etc/hookrelay/credentials/slack-url

# 1c. Started as the package said: enable --now.
check enable-now systemctl enable --now hookrelay
until_ok unit-active 20 systemctl is-active --quiet hookrelay
check ready-sent bash -c '[ "$(systemctl show -p StatusText --value hookrelay)" != "" ]'
check healthz curl -sf http://127.0.0.1:8080/healthz
until_ok readyz 10 curl -sf http://127.0.0.1:9091/readyz
check unsigned-refused bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' --data-binary @/src/tests/fixtures/event-alert-created.json http://127.0.0.1:8080/hooks/$INIT_HOOK)\" = 401 ]"
status=$(post_signed "$(event 40)" "$INIT_HOOK")
[ "$status" = 202 ] && ok init-hook-signed-accepted || fail init-hook-signed-accepted "answered $status"
until_ok init-event-delivered-teams 20 has_lines teams 1
check spool-in-state-directory test -f /var/lib/private/hookrelay/hookrelay.db
pid=$(main_pid)

# 2. A config whose alert API is the fake one inside; `systemctl reload`
#    applies it in place.
cp /src/tests/packaging/hookrelay.toml /etc/hookrelay/hookrelay.toml
check reload-applies systemctl reload hookrelay
check reload-same-pid bash -c "[ \"\$(systemctl show -p MainPID --value hookrelay)\" = $pid ]"
check event-accepted post_202 "$(event 1)"
until_ok event-delivered-teams 20 has_lines teams 2

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
systemctl reset-failed hookrelay >/dev/null 2>&1
check restarts-when-fixed systemctl start hookrelay
until_ok active-again 20 systemctl is-active --quiet hookrelay

# 10. An upgrade to a rebuilt package whose example config changed: the
#     operator's file is kept (--force-confold), the new one lands beside
#     it, and the running daemon restarts on the new binary.
cp /etc/hookrelay/hookrelay.toml /tmp/operator.toml
pid=$(main_pid)
slack_before=$(lines slack)
check upgrade bash -c "apt-get install -y -o Dpkg::Options::=--force-confold $DEB2 > /tmp/apt-upgrade.log 2>&1 || { cat /tmp/apt-upgrade.log; exit 1; }"
check upgrade-version bash -c "dpkg-query -W -f='\${Version}' hookrelay | grep -q -- '-2\$'"
check upgrade-keeps-operator-config cmp /etc/hookrelay/hookrelay.toml /tmp/operator.toml
check upgrade-new-conffile-beside grep -q 'changed in the rebuilt package' /etc/hookrelay/hookrelay.toml.dpkg-dist
until_ok upgrade-running 20 systemctl is-active --quiet hookrelay
check upgrade-restarted bash -c "[ \"\$(main_pid)\" != $pid ]"
check upgrade-event-accepted post_202 "$(event 41)"
until_ok upgrade-event-delivered 20 has_lines slack $((slack_before + 1))
journal > /results/journal.txt 2>&1

# 11. apt remove: the daemon stops, the binary goes, the configuration,
#     the credentials and the spool stay.
check remove bash -c "apt-get remove -y hookrelay > /tmp/apt-remove.log 2>&1 || { cat /tmp/apt-remove.log; exit 1; }"
check removed-stopped bash -c "! systemctl is-active --quiet hookrelay"
check removed-binary-gone bash -c "! test -e /usr/bin/hookrelay"
check removed-keeps-config cmp /etc/hookrelay/hookrelay.toml /tmp/operator.toml
check removed-keeps-credentials test -s /etc/hookrelay/credentials/hook-secret
check removed-keeps-spool test -s /var/lib/private/hookrelay/hookrelay.db

# 12. apt purge: configuration, credentials and spool are gone.
check purge bash -c "apt-get purge -y hookrelay > /tmp/apt-purge.log 2>&1 || { cat /tmp/apt-purge.log; exit 1; }"
check purged-config bash -c "! test -e /etc/hookrelay"
check purged-spool bash -c "! test -e /var/lib/private/hookrelay && ! test -e /var/lib/hookrelay"
check purged-package bash -c "! dpkg-query -W -f='\${Status}' hookrelay 2>/dev/null | grep -q installed"

echo done >> "$OUT"
systemctl poweroff
