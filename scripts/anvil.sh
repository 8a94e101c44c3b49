#!/usr/bin/env bash
# The public chain of the Seisan testnet: a local anvil (Ethereum dev node).
#
#   scripts/anvil.sh install          install anvil from npm into .tools/anvil (if missing)
#   scripts/anvil.sh start [DIR]      start anvil on $ANVIL_HOST:$ANVIL_PORT (default
#                                     127.0.0.1:8545),
#                                     1-second blocks, state in DIR (default .seisan/anvil);
#                                     deploys the WBTC token; writes DIR/chain.json
#   scripts/anvil.sh stop [DIR]       stop the anvil started with DIR
#   scripts/anvil.sh compile          recompile contracts-evm/src with the solc npm package
#                                     (refreshes the committed contracts-evm/artifacts)
#   scripts/anvil.sh path             print the anvil binary's path (installing it first)
#
# Only the npm registry is contacted (packages @foundry-rs/anvil-linux-amd64, solc,
# @openzeppelin/contracts). Anvil's dev accounts are the well-known ones of the
# "test test ... junk" mnemonic; they hold no real value.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ANVIL_VERSION=1.7.1
TOOLS="$ROOT/.tools/anvil"
ANVIL="$TOOLS/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
PORT="${ANVIL_PORT:-8545}"
HOST="${ANVIL_HOST:-127.0.0.1}"

install() {
    if [ -x "$ANVIL" ]; then
        return
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "installing nodejs and npm (apt) to fetch anvil from the npm registry" >&2
        if ! (apt-get update -qq && apt-get install -y -qq nodejs npm) >/dev/null 2>&1; then
            echo "error: npm is needed to install anvil and apt-get could not install it; install nodejs and npm" >&2
            exit 1
        fi
    fi
    echo "installing anvil $ANVIL_VERSION into $TOOLS" >&2
    mkdir -p "$TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS" \
        "@foundry-rs/anvil-linux-amd64@$ANVIL_VERSION" >&2
    test -x "$ANVIL"
}

rpc() {
    curl -sf -X POST -H 'content-type: application/json' \
        --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":[]}" \
        "http://$HOST:$PORT"
}

start() {
    local dir="${1:-$ROOT/.seisan/anvil}"
    install
    mkdir -p "$dir"
    if [ -f "$dir/anvil.pid" ] && kill -0 "$(cat "$dir/anvil.pid")" 2>/dev/null; then
        echo "anvil already running (pid $(cat "$dir/anvil.pid"))" >&2
        exit 1
    fi
    "$ANVIL" --host "$HOST" --port "$PORT" --block-time 1 --chain-id 31337 \
        --silent >"$dir/anvil.log" 2>&1 &
    echo $! >"$dir/anvil.pid"
    for _ in $(seq 1 100); do
        if rpc eth_chainId >/dev/null 2>&1; then
            break
        fi
        sleep 0.1
    done
    rpc eth_chainId >/dev/null || { echo "error: anvil did not start; see $dir/anvil.log" >&2; exit 1; }
    node "$ROOT/contracts-evm/deploy.js" "http://$HOST:$PORT" "$dir/chain.json" >&2
    echo "anvil running on http://$HOST:$PORT (pid $(cat "$dir/anvil.pid")); $dir/chain.json" >&2
}

stop() {
    local dir="${1:-$ROOT/.seisan/anvil}"
    if [ -f "$dir/anvil.pid" ]; then
        kill "$(cat "$dir/anvil.pid")" 2>/dev/null || true
        rm -f "$dir/anvil.pid"
    fi
}

compile() {
    (cd "$ROOT/contracts-evm" && npm install --silent --no-audit --no-fund && node compile.js)
}

case "${1:-}" in
    install) install ;;
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    compile) compile ;;
    path) install; echo "$ANVIL" ;;
    *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
