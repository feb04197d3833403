#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests
# need that cargo does not build, then `cargo test`.
#
# - PostgreSQL server binaries (Debian's `postgresql` package) for the
#   replica tests in tests/replicas.rs. The tests start their own
#   throw-away cluster (as the `postgres` user when run as root) and stop
#   it when they end; nothing is configured system-wide.
# - python3 for the e-mail tests' SMTP server (tests/support/smtp_sink.py).
# - Debian's chromium and chromium-driver for the real-browser tests
#   (tests/browser.rs drives chromedriver over WebDriver).
#
# - schemathesis (from PyPI, pinned, into target/test-venv) for fuzzing the
#   tenants API from its own OpenAPI document (tests/tenants.rs).
# - matrix-synapse (from PyPI, pinned, into the same virtualenv): the Matrix
#   tests start a throw-away homeserver on loopback (tests/matrix.rs).
#
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test replicas`).
set -euo pipefail
cd "$(dirname "$0")/.."

have_pg() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null
}

install_packages() {
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        sudo="sudo"
    fi
    echo "scripts/test.sh: installing $* (apt-get)" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
have_pg || missing+=(postgresql)
command -v python3 >/dev/null || missing+=(python3)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    install_packages "${missing[@]}"
fi
SCHEMATHESIS_VERSION=4.32.5
if ! target/test-venv/bin/schemathesis --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    echo "scripts/test.sh: installing schemathesis $SCHEMATHESIS_VERSION into target/test-venv (pip)" >&2
    python3 -m venv target/test-venv
    target/test-venv/bin/pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
export SCHEMATHESIS="$PWD/target/test-venv/bin/schemathesis"
# A real Matrix homeserver for tests/matrix.rs (tests/common/synapse.rs
# runs it with this Python).
SYNAPSE_VERSION=1.163.2
if ! target/test-venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('matrix-synapse') != '$SYNAPSE_VERSION')" 2>/dev/null; then
    echo "scripts/test.sh: installing matrix-synapse $SYNAPSE_VERSION into target/test-venv (pip)" >&2
    python3 -m venv target/test-venv
    target/test-venv/bin/pip install -q "matrix-synapse==$SYNAPSE_VERSION"
fi
export SYNAPSE_PYTHON="$PWD/target/test-venv/bin/python"
# The replica tests must run here, not skip. (Not HOOKRELAY_*: those are
# config overrides.)
export TESTS_REQUIRE_POSTGRES=1
# The same for the browser tests.
export TESTS_REQUIRE_BROWSER=1
# The same for the Matrix tests (Synapse).
export TESTS_REQUIRE_SYNAPSE=1
exec cargo test "$@"
