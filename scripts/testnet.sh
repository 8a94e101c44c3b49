#!/usr/bin/env bash
# The README's run command. At this stage it builds Seisan in release mode, writes the
# testnet genesis and dev keys under .seisan/testnet, and prints the loaded genesis.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data="$root/.seisan/testnet"

cargo build --release --locked -p seisan-node
seisan="$root/target/release/seisan"
mkdir -p "$data"
"$seisan" genesis testnet --out "$data"
"$seisan" genesis check "$data/genesis.json"
