#!/usr/bin/env bash
# Builds the Debian package: target/debian/hookrelay_<version>-1_<arch>.deb
#
#   scripts/package.sh
#
# 1. Installs cargo-deb (pinned) with `cargo install --locked` if missing.
# 2. Builds the binary with the `dist` profile (fat LTO, one codegen unit:
#    what the package and the container ship).
# 3. Generates the man pages and the bash/zsh/fish completions with the
#    binary itself (`hookrelay generate`, from its clap definitions) into
#    target/package-assets/.
# 4. Runs `cargo deb --no-build --profile dist` ([package.metadata.deb] in
#    Cargo.toml: binary, unit, /etc/hookrelay/hookrelay.toml as a conffile,
#    templates, man pages, completions, README, copyright from LICENSE;
#    maintainer scripts in debian/).
#
# Install it with `sudo apt install ./target/debian/hookrelay_*.deb`.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    echo "package: installing cargo-deb $CARGO_DEB_VERSION (cargo install --locked)" >&2
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi

cargo build --profile dist --bin hookrelay
bin="${CARGO_TARGET_DIR:-target}/dist/hookrelay"

assets=target/package-assets
rm -rf "$assets"
"$bin" generate man "$assets/man" >/dev/null
gzip -9n "$assets"/man/*.1
for shell in bash zsh fish; do
    "$bin" generate completions "$shell" "$assets/completions" >/dev/null
done

rm -f target/debian/hookrelay_*.deb
cargo deb --no-build --profile dist --output target/debian/ "$@"
ls -1 target/debian/hookrelay_*.deb
