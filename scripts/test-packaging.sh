#!/usr/bin/env bash
# The packaging test: the Debian package (scripts/package.sh) with the
# hardened unit, exactly as shipped, under a real systemd, on a minimal
# Debian 12 booted as a container; then the container image.
#
#   scripts/test-packaging.sh
#
# 1. Installs what it needs with apt (debootstrap, systemd-container).
# 2. Builds the package (scripts/package.sh: the `dist` profile, cargo-deb),
#    and a rebuilt one (revision -2) whose example config changed, for the
#    upgrade.
# 3. Builds a minimal Debian root once (debootstrap --variant=minbase with
#    systemd, systemd-sysv, dbus, curl and python3 for the fake upstream),
#    cached in target/packaging/rootfs-base; each run boots a fresh copy.
#    Before booting, the package is installed and purged in that root with
#    chroot (no systemd running): it must install and say how to run it.
# 4. Boots it with `systemd-nspawn --boot` (on a host whose PID 1 is not
#    systemd: --register=no --keep-unit). Inside, a oneshot unit runs
#    tests/packaging/probe.sh after multi-user.target: `apt install
#    ./hookrelay_*.deb` offline (nothing started or enabled; the man pages,
#    completions, conffile, templates, copyright in place), `hookrelay init`
#    (modes, `check` passing, refusing to overwrite), `systemctl enable
#    --now hookrelay`, READY, /healthz and /readyz, a signed event delivered
#    to a fake chat service, `systemctl reload` (same PID, new route; a
#    broken file refused and the old one serving), a restart with pending
#    deliveries, 45 s under the watchdog, the journal free of sandbox
#    failures, a clean stop, a bad config and a missing credential that keep
#    the unit from starting with the reason logged, the upgrade (the
#    operator's config kept, the daemon restarted and delivering), `apt
#    remove` (config, credentials and spool kept) and `apt purge` (gone).
#    The probe writes one line per check to a shared folder and powers off.
# 5. Builds the shipped Containerfile offline with podman and runs the image
#    (see the container section below for how its two FROM images are
#    supplied without a registry): non-root, config and state as volumes,
#    the HEALTHCHECK, an event delivered, state surviving a restart, a clean
#    stop, and a bad config or a missing credential exiting non-zero.
# 6. Prints every check and fails if one failed or the probe did not finish.
#
# HOOKRELAY_DEB=path/to/hookrelay_…-1_….deb tests that package instead of
# building one. Loopback only; bounded by timeouts. The time each part took
# is printed (README, "Packaging tests").
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

apt_install() {
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "test-packaging: installing $* (apt-get)" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

DIR=target/packaging
mkdir -p "$DIR"
if [ -n "${HOOKRELAY_DEB:-}" ]; then
    # A package built elsewhere (e.g. a CI artifact): test it as it is.
    DEB=$HOOKRELAY_DEB
else
    scripts/package.sh >/dev/null
    DEB=$(ls target/debian/hookrelay_*-1_*.deb)
fi
# The container part runs the packaged binary too.
rm -rf "$DIR/deb-contents" && dpkg-deb -x "$DEB" "$DIR/deb-contents"
BIN=$DIR/deb-contents/usr/bin/hookrelay
built=$SECONDS

BASE=$DIR/rootfs-base
ROOT=$DIR/rootfs
SRC=$DIR/src
RESULTS=$DIR/results
mkdir -p "$DIR"

if [ ! -f "$BASE/.complete" ]; then
    rm -rf "$BASE"
    echo "test-packaging: building a minimal Debian 12 root (cached in $BASE)" >&2
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl,python3 \
        bookworm "$BASE" http://deb.debian.org/debian >"$DIR/debootstrap.log" 2>&1 \
        || { tail -20 "$DIR/debootstrap.log"; exit 1; }
    touch "$BASE/.complete"
fi
rm -rf "$ROOT" "$SRC" "$RESULTS"
cp -a "$BASE" "$ROOT"
mkdir -p "$SRC/tests" "$RESULTS"
cp -r tests/fixtures tests/support tests/packaging "$SRC/tests/"
cp "$DEB" "$SRC/"
# The upgrade: the same package rebuilt as revision -2 with a changed
# example config (a conffile the operator has replaced by then).
REBUILT=$DIR/rebuilt
rm -rf "$REBUILT" && dpkg-deb -R "$DEB" "$REBUILT"
printf '\n# changed in the rebuilt package (packaging test)\n' >> "$REBUILT/etc/hookrelay/hookrelay.toml"
sed -i 's/^Version: \(.*\)-1$/Version: \1-2/' "$REBUILT/DEBIAN/control"
(cd "$REBUILT" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$REBUILT/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Zgzip -b "$REBUILT" "$SRC/$(basename "${DEB/-1_/-2_}")" >/dev/null

# Without systemd running (a chroot): the package still installs the
# binary and says how to run it; purged again before the boot.
HOSTCHECKS=$RESULTS/host-checks
: > "$HOSTCHECKS"
cp "$DEB" "$ROOT/tmp/hookrelay.deb"
if out=$(chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/hookrelay.deb 2>&1); then
    echo "ok no-systemd-installs" >> "$HOSTCHECKS"
else
    echo "FAIL no-systemd-installs: $(echo "$out" | tail -3 | tr '\n' ' ')" >> "$HOSTCHECKS"
fi
echo "$out" | grep -q 'does not run systemd' && echo "$out" | grep -q 'hookrelay run --config /etc/hookrelay/hookrelay.toml' \
    && echo "ok no-systemd-says-how-to-run" >> "$HOSTCHECKS" \
    || echo "FAIL no-systemd-says-how-to-run: $(echo "$out" | tail -3 | tr '\n' ' ')" >> "$HOSTCHECKS"
chroot "$ROOT" /usr/bin/hookrelay --version >/dev/null 2>&1 \
    && echo "ok no-systemd-binary-runs" >> "$HOSTCHECKS" || echo "FAIL no-systemd-binary-runs: hookrelay --version failed" >> "$HOSTCHECKS"
chroot "$ROOT" dpkg --purge hookrelay >/dev/null 2>&1 && [ ! -e "$ROOT/etc/hookrelay" ] && [ ! -e "$ROOT/usr/bin/hookrelay" ] \
    && echo "ok no-systemd-purges" >> "$HOSTCHECKS" || echo "FAIL no-systemd-purges: files left" >> "$HOSTCHECKS"
rm -f "$ROOT/tmp/hookrelay.deb"
echo "--- without systemd (chroot):"
cat "$HOSTCHECKS"

# The fake alert API and chat services, and the probe, as units of the
# booted system.
cat > "$ROOT/etc/systemd/system/fake-upstream.service" <<'EOF'
[Unit]
Description=Fake alert API and chat services for the packaging test
[Service]
ExecStart=/usr/bin/python3 /src/tests/support/fake_upstream.py 9999 /results/chat /src/tests/fixtures/alert-full.json
[Install]
WantedBy=multi-user.target
EOF
cat > "$ROOT/etc/systemd/system/packaging-probe.service" <<'EOF'
[Unit]
Description=hookrelay packaging probe
After=multi-user.target fake-upstream.service
Wants=fake-upstream.service
[Service]
Type=oneshot
ExecStart=/bin/bash /src/tests/packaging/probe.sh
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants" "$RESULTS/chat"
for unit in fake-upstream packaging-probe; do
    ln -sf "/etc/systemd/system/$unit.service" "$ROOT/etc/systemd/system/multi-user.target.wants/$unit.service"
done
echo hookrelay-test > "$ROOT/etc/hostname"

PARTS=${PACKAGING_PARTS:-systemd container}
if [[ " $PARTS " == *" systemd "* ]]; then
nspawn=(systemd-nspawn --quiet -D "$ROOT" --bind-ro="$PWD/$SRC:/src" --bind="$PWD/$RESULTS:/results" --boot)
if [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ]; then
    # Not under systemd: nothing to register with.
    nspawn+=(--register=no --keep-unit)
fi
echo "test-packaging: booting the root with systemd-nspawn" >&2
status=0
timeout 420 "${nspawn[@]}" >"$DIR/boot.log" 2>&1 </dev/null || status=$?

echo "--- systemd (systemd $(chroot "$ROOT" systemctl --version | head -1 | cut -d' ' -f2)):"
cat "$RESULTS/checks" 2>/dev/null || true
failed=0
if [ ! -f "$RESULTS/checks" ] || ! grep -qx done "$RESULTS/checks"; then
    echo "test-packaging: the probe did not finish (nspawn exit $status); boot log tail:" >&2
    tail -40 "$DIR/boot.log" >&2
    echo "FAIL probe-finished: nspawn exit $status" >> "$RESULTS/checks"
fi
if grep -q '^FAIL' "$RESULTS/checks" 2>/dev/null; then
    echo "test-packaging: journal of hookrelay.service:" >&2
    tail -60 "$RESULTS/journal.txt" >&2 || true
fi
else
    echo "skipped (PACKAGING_PARTS=$PARTS)" > "$RESULTS/checks"; echo done >> "$RESULTS/checks"
fi
systemd_seconds=$((SECONDS - built))

# ---------------------------------------------------------------------------
# The container image: the shipped Containerfile, built offline with podman.
# There is no image registry here, so the two FROM images are supplied
# locally with --build-context: the build stage ("build") is the host's
# release build (out/hookrelay, out/state), and the runtime base
# (gcr.io/distroless/cc-debian12:nonroot) a minimal root imported from the
# host: the binary's shared libraries (glibc, libgcc) and a nonroot user
# (65532), as distroless has them. Podman here runs rootful with runc and
# needs explicit --ulimit values (its defaults exceed this host's limits).
# ---------------------------------------------------------------------------
# Each check records its own failure; none stops the others.
set +e
container_started=$SECONDS
CHECKS=$RESULTS/container-checks
: > "$CHECKS"
cok() { echo "ok $1" >> "$CHECKS"; }
cfail() { echo "FAIL $1: $2" >> "$CHECKS"; }
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v python3 >/dev/null || missing+=(python3)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
RUNTIME=(--runtime runc)
# Within this host's own limits (podman's defaults ask for more, and runc
# may not raise them): the daemon needs a file per connection, few threads.
nofile=$(ulimit -n); [ "$nofile" = unlimited ] || [ "$nofile" -le 65536 ] || nofile=65536
ULIMITS=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=4096:4096")
IMAGE=localhost/hookrelay:packaging-test
NAME=hookrelay-packaging
VOLUME=hookrelay-packaging-state
podman "${RUNTIME[@]}" rm -f "$NAME" >/dev/null 2>&1 || true
podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true

BASEIMG=$DIR/image-base
BCTX=$DIR/build-stage
rm -rf "$BASEIMG" "$BCTX"
mkdir -p "$BASEIMG/etc" "$BASEIMG/tmp" "$BCTX/out/state"
chmod 1777 "$BASEIMG/tmp"
for lib in $(ldd "$BIN" | grep -o '/[^ ]*'); do
    install -D -m 0755 "$(readlink -f "$lib")" "$BASEIMG$lib"
done
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$BASEIMG/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$BASEIMG/etc/group"
tar -C "$BASEIMG" -cf "$DIR/image-base.tar" .
podman import "$DIR/image-base.tar" localhost/hookrelay-test-base:latest >/dev/null
install -m 0755 "$BIN" "$BCTX/out/hookrelay"
if podman build --pull=never --format docker -t "$IMAGE" \
    --build-context build="$BCTX" \
    --build-context gcr.io/distroless/cc-debian12:nonroot=container-image://localhost/hookrelay-test-base:latest \
    --build-arg BUILD_GIT_REV="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
    -f Containerfile . >"$DIR/podman-build.log" 2>&1; then
    cok image-builds
else
    cfail image-builds "$(tail -5 "$DIR/podman-build.log" | tr '\n' ' ')"
fi
user=$(podman image inspect "$IMAGE" --format '{{.Config.User}}' 2>/dev/null || true)
[ "$user" = 65532:65532 ] && cok image-non-root || cfail image-non-root "user is '$user'"
health=$(podman image inspect "$IMAGE" --format '{{.Config.Healthcheck.Test}}' 2>/dev/null || true)
case "$health" in *"hookrelay health"*|*"/usr/local/bin/hookrelay health"*) cok image-healthcheck ;; *) cfail image-healthcheck "HEALTHCHECK is '$health'" ;; esac

# Config and credentials as volumes, the fake upstream on the host.
CONF=$DIR/container-conf
rm -rf "$CONF" && mkdir -p "$CONF/credentials" "$RESULTS/container-chat"
cp tests/packaging/hookrelay.toml "$CONF/hookrelay.toml"
printf %s packaging-test-key > "$CONF/credentials/sekoia-api-key"
printf %s http://127.0.0.1:9999/chat/teams > "$CONF/credentials/teams-url"
printf %s http://127.0.0.1:9999/chat/slack > "$CONF/credentials/slack-url"
chmod -R a+rX "$CONF"
python3 tests/support/fake_upstream.py 9999 "$RESULTS/container-chat" tests/fixtures/alert-full.json &
fake_pid=$!
trap 'kill $fake_pid 2>/dev/null; podman "${RUNTIME[@]}" rm -f "$NAME" >/dev/null 2>&1 || true' EXIT
run_container() { # extra podman args...
    podman "${RUNTIME[@]}" run "${ULIMITS[@]}" --network host \
        -v "$PWD/$CONF/hookrelay.toml:/etc/hookrelay/hookrelay.toml:ro" \
        -v "$PWD/$CONF/credentials:/run/credentials:ro" -e CREDENTIALS_DIRECTORY=/run/credentials \
        -v "$VOLUME:/var/lib/hookrelay" "$@"
}
HOOK=http://127.0.0.1:8080/hooks/67a7472b-b43c-415d-b1ce-c135fb1dfb0e
post() { curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' --data-binary @"$1" "$HOOK"; }
event() { sed "s/2022-01-14T15:06:57/2022-01-14T15:07:$(printf %02d "$1")/" tests/fixtures/event-alert-created.json > "$DIR/event-$1.json"; echo "$DIR/event-$1.json"; }
lines() { [ -f "$RESULTS/container-chat/$1.jsonl" ] && wc -l < "$RESULTS/container-chat/$1.jsonl" || echo 0; }
wait_for() { # name, seconds, command...
    local name=$1 secs=$2; shift 2
    local end=$((SECONDS + secs))
    while [ $SECONDS -lt $end ]; do "$@" >/dev/null 2>&1 && { cok "$name"; return 0; }; sleep 0.2; done
    cfail "$name" "not within ${secs}s"
}
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }

run_container -d --name "$NAME" "$IMAGE" >"$DIR/podman-run.log" 2>&1 \
    && cok container-starts || cfail container-starts "$(tail -3 "$DIR/podman-run.log" | tr '\n' ' ')"
wait_for container-healthcheck 20 podman "${RUNTIME[@]}" healthcheck run "$NAME"
uid=$(podman "${RUNTIME[@]}" top "$NAME" huser 2>/dev/null | tail -1 | tr -d ' ')
[ "$uid" = 65532 ] && cok container-runs-as-65532 || cfail container-runs-as-65532 "host user is '$uid'"
[ "$(post "$(event 1)")" = 202 ] && cok container-event-accepted || cfail container-event-accepted "not 202"
wait_for container-event-delivered 20 has_lines teams 1
# State in the volume survives a restart: a delivery pending while the
# chat service is down goes out after it.
touch "$RESULTS/container-chat/teams.down"
[ "$(post "$(event 2)")" = 202 ] && cok container-event-2-accepted || cfail container-event-2-accepted "not 202"
sleep 1
podman "${RUNTIME[@]}" restart -t 30 "$NAME" >/dev/null 2>&1 && cok container-restart || cfail container-restart "podman restart failed"
rm -f "$RESULTS/container-chat/teams.down"
wait_for container-state-survives-restart 30 has_lines teams 2
podman "${RUNTIME[@]}" stop -t 30 "$NAME" >/dev/null 2>&1
code=$(podman inspect "$NAME" --format '{{.State.ExitCode}}' 2>/dev/null || echo '?')
[ "$code" = 0 ] && cok container-stops-cleanly || cfail container-stops-cleanly "exit code $code"
podman logs "$NAME" > "$RESULTS/container.log" 2>&1 || true
podman "${RUNTIME[@]}" rm -f "$NAME" >/dev/null 2>&1 || true
# Bad input: a config that fails check, a missing credential: exit non-zero
# with the reason.
sed 's/^to = \["teams"\]/to = ["nowhere"]/' tests/packaging/hookrelay.toml > "$CONF/hookrelay.toml"
out=$(run_container --rm "$IMAGE" 2>&1) && cfail container-bad-config "exited 0" \
    || { echo "$out" | grep -q 'no destination named' && cok container-bad-config || cfail container-bad-config "$(echo "$out" | tail -2 | tr '\n' ' ')"; }
cp tests/packaging/hookrelay.toml "$CONF/hookrelay.toml"
mv "$CONF/credentials/slack-url" "$DIR/slack-url.moved"
out=$(run_container --rm "$IMAGE" 2>&1) && cfail container-missing-credential "exited 0" \
    || { echo "$out" | grep -q 'slack-url' && cok container-missing-credential || cfail container-missing-credential "$(echo "$out" | tail -2 | tr '\n' ' ')"; }
echo "--- container (podman $(podman --version | awk '{print $3}')):"
cat "$CHECKS"
container_seconds=$((SECONDS - container_started))

passed=$(cat "$HOSTCHECKS" "$RESULTS/checks" "$CHECKS" | grep -c '^ok ' || true)
failures=$(cat "$HOSTCHECKS" "$RESULTS/checks" "$CHECKS" | grep -c '^FAIL' || true)
echo "test-packaging: package build $((built - started)) s, systemd ${systemd_seconds} s (root included), container ${container_seconds} s, total $((SECONDS - started)) s"
echo "packaging: ${passed:-0} passed, ${failures:-0} failed"
[ "${failures:-0}" = 0 ]
