#!/usr/bin/env bash
# Regenerates the committed genesis/testnet.json from `seisan genesis testnet`.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo run --quiet -p seisan-node -- genesis testnet --out "$tmp" >/dev/null
cp "$tmp/genesis.json" genesis/testnet.json
echo "wrote genesis/testnet.json"
