#!/usr/bin/env bash
# Runs every Seisan test: installs what the tests need, builds the workspace and runs
# the whole test suite with cargo-nextest. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

# A run that fills the disk fails in the linker with "No space left on device" (CI's
# stop 27 did, compiling the seisan binary after 578 s): say up front how much there
# was. Incremental compilation only pays when the same tree is rebuilt; on a clean clone
# it wrote 1.8 GB of target/debug/incremental next to 2.7 GB of artifacts, so this run
# builds without it.
export CARGO_INCREMENTAL=0
say "free disk space where the build goes"
df -h . | tail -1

say "the camt.053.001.08 XSD and xmllint for the bank's statement tests (scripts/iso20022.sh)"
scripts/iso20022.sh

say "FUSE for the power-cut tests (crates/powercut, tests/powercut.rs)"
# As root the layer mounts through /dev/fuse directly; anyone else needs fusermount3
# (Debian's fuse3). Without /dev/fuse those tests fail saying so; they never skip.
if [ ! -e /dev/fuse ]; then
    echo "warning: no /dev/fuse here: the power-cut tests will fail" >&2
fi
if [ "$(id -u)" != 0 ] && ! command -v fusermount3 >/dev/null 2>&1; then
    sudo apt-get install -y fuse3
fi

# The tests inject faults (`seisan node --fault`, the bank watcher's crash file, the
# engine's broken rules): their binary is built with the test-hooks feature. The demo
# below runs a normal build.
TEST_HOOKS=(--features seisan-node/test-hooks)

say "building the workspace and its tests (with test hooks)"
cargo build --workspace --all-targets --locked "${TEST_HOOKS[@]}"
du -sh target
df -h . | tail -1

say "running the test suite"
cargo nextest run --workspace --profile ci --locked "${TEST_HOOKS[@]}"

say "schemathesis against /v1/openapi.json of live nodes"
SEISAN_BIN="$(pwd)/target/debug/seisan" scripts/schemathesis.sh

say "the web console in headless chromium (Selenium): pages without console errors, a CLI trade on the page within seconds, figures equal to the API's (scripts/console.sh; screenshots in target/console-artifacts/)"
SEISAN_BIN="$(pwd)/target/debug/seisan" scripts/console.sh

say "promtool: the shipped alert rules (and their unit tests), the Prometheus config, and a live node's /metrics (scripts/promtool.sh)"
SEISAN_BIN="$(pwd)/target/debug/seisan" scripts/promtool.sh

say "deploy rehearsal: four members' nodes on four network namespaces from deploy/seisan-node.toml; one host lost (scripts/deploy-rehearsal.sh)"
SEISAN_BIN="$(pwd)/target/debug/seisan" scripts/deploy-rehearsal.sh

say "chaos: 2 minutes of kill -9, pause, partition, wipe, quorum loss and bank restarts under a signed workload with orders, fiat (bank) and crypto (anvil) deposits and withdrawals"
SEISAN_CHAOS=1 cargo nextest run -p seisan-chaos --profile ci --locked --test chaos --no-capture

say "a normal build has no test hooks: seisan node --help lists no --fault"
cargo build -p seisan-node --locked
if target/debug/seisan node --help | grep -q -- --fault; then
    echo "error: a build without --features test-hooks still offers --fault" >&2
    exit 1
fi

say "the patent's scenario end to end: anvil, the bank and three nodes (scripts/testnet.sh demo)"
# The normal debug binary built above; the README's run command builds release.
SEISAN_BIN="$(pwd)/target/debug/seisan" scripts/testnet.sh demo

say "the same scenario on a five-validator consortium, quorum 3 (scripts/testnet.sh demo --validators 5)"
SEISAN_BIN="$(pwd)/target/debug/seisan" scripts/testnet.sh demo --validators 5
