#!/usr/bin/env bash
# The README's run command: a local three-node Seisan testnet on loopback.
#
#   scripts/testnet.sh          build (release); start the public chain (anvil, installed from
#                               npm when missing, with the WBTC token deployed), the bank and
#                               the clearing house and exchanges A and B; run the patent's
#                               scenario (scripts/demo.sh); stay up until Ctrl-C
#   scripts/testnet.sh demo     the same, then stop everything; exit 0 only if every step passed
#   scripts/testnet.sh start    start everything without the scenario and return
#   scripts/testnet.sh down     stop everything a start left running
#   scripts/testnet.sh status   each node's height and state root
#
# Every start is a fresh testnet. Everything lives under .seisan/testnet: genesis.json,
# keys/, nodes/<member>/ (data), bank/, anvil/, logs/, pids/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data="$root/.seisan/testnet"
# SEISAN_BIN runs another build of seisan (e.g. target/debug/seisan) and skips the release build.
seisan="${SEISAN_BIN:-$root/target/release/seisan}"
members=(clearing-house exchange-a exchange-b)
http_port() { echo $((8101 + $1)); }

say() { printf '%s\n' "$*"; }

need_curl() {
    local missing=()
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v jq >/dev/null 2>&1 || missing+=(jq)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} (apt)"
        (apt-get update -qq && apt-get install -y -qq "${missing[@]}") >/dev/null
    fi
}

node_status() { curl -fsS --max-time 2 "http://127.0.0.1:$(http_port "$1")/v1/status" 2>/dev/null; }

json_field() { # json_field FIELD < json
    sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"]*\)\"\{0,1\}[,}].*/\1/p"
}

down() {
    local stopped=0
    for member in "${members[@]}" bank; do
        local pidfile="$data/pids/$member.pid"
        [ -f "$pidfile" ] || continue
        local pid; pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$pid" 2>/dev/null || true
            stopped=$((stopped + 1))
        fi
        rm -f "$pidfile"
    done
    if [ -f "$data/anvil/anvil.pid" ]; then
        scripts/anvil.sh stop "$data/anvil" || true
        stopped=$((stopped + 1))
    fi
    say "stopped $stopped process(es)"
}

status() {
    need_curl
    printf '%-16s %-24s %-8s %-8s %s\n' NODE API HEIGHT VIEW STATE_ROOT
    for index in "${!members[@]}"; do
        local url="http://127.0.0.1:$(http_port "$index")"
        local body; body=$(node_status "$index" || true)
        if [ -z "$body" ]; then
            printf '%-16s %-24s %s\n' "${members[$index]}" "$url" "not running"
        else
            printf '%-16s %-24s %-8s %-8s %s\n' "${members[$index]}" "$url" \
                "$(json_field height <<<"$body")" "$(json_field view <<<"$body")" "$(json_field state_root <<<"$body")"
        fi
    done
}

up() {
    need_curl
    for index in "${!members[@]}"; do
        if node_status "$index" >/dev/null; then
            say "error: a node already answers on port $(http_port "$index"); run scripts/testnet.sh down first" >&2
            exit 1
        fi
    done
    if [ -z "${SEISAN_BIN:-}" ]; then
        say "== building seisan (release)"
        cargo build --release --locked -p seisan-node
    fi
    down >/dev/null 2>&1 || true
    rm -rf "$data"
    mkdir -p "$data/logs" "$data/pids" "$data/nodes" "$data/keys"
    trap 'down; exit 130' INT TERM
    say "== starting the public chain (anvil) and deploying the WBTC token"
    scripts/anvil.sh start "$data/anvil"
    local token; token=$(jq -r .token "$data/anvil/chain.json")
    "$seisan" genesis testnet --out "$data" --eth-chain-id 31337 --token-contract "$token" >/dev/null
    # The clearing house's hot wallet is anvil's dev account 1 (a well-known key).
    (umask 077 && echo "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" >"$data/keys/hot-wallet.key")
    say "== starting the bank (trust accounts; 1,000,000 JPY in each exchange's operating account)"
    "$seisan" bank init --out "$data/bank" --genesis "$data/genesis.json" >/dev/null
    nohup "$seisan" bank run --config "$data/bank/bank.toml" >>"$data/logs/bank.log" 2>&1 &
    echo $! >"$data/pids/bank.pid"
    for _ in $(seq 1 100); do curl -fsS --max-time 1 http://127.0.0.1:7400/v1/health >/dev/null 2>&1 && break; sleep 0.1; done
    say "== starting three validators (quorum 2 of 3)"
    for index in "${!members[@]}"; do
        local member=${members[$index]}
        local extra=()
        [ "$member" = clearing-house ] && extra=(--hot-key "$data/keys/hot-wallet.key")
        nohup "$seisan" node \
            --genesis "$data/genesis.json" \
            --key "$data/keys/$member.key" \
            --data "$data/nodes/$member" \
            --http "127.0.0.1:$(http_port "$index")" \
            --eth-rpc "http://127.0.0.1:8545" \
            --bank-url "http://127.0.0.1:7400" --bank-token "dev-token-$member" \
            "${extra[@]}" \
            >>"$data/logs/$member.log" 2>&1 &
        echo $! >"$data/pids/$member.pid"
    done
    for index in "${!members[@]}"; do
        local ok=0
        for _ in $(seq 1 300); do
            local body; body=$(node_status "$index" || true)
            if [ -n "$body" ] && [ "$(json_field height <<<"$body")" -ge 2 ] 2>/dev/null; then ok=1; break; fi
            sleep 0.2
        done
        if [ "$ok" != 1 ]; then
            say "error: ${members[$index]} did not finalize blocks within 60 s; see $data/logs/${members[$index]}.log" >&2
            down
            exit 1
        fi
    done
    say "== the testnet is finalizing blocks"
    status
    say ""
    say "chain:    anvil at http://127.0.0.1:8545 (token $(jq -r .token "$data/anvil/chain.json"))"
    say "bank:     http://127.0.0.1:7400 (tokens dev-token-<member>)"
    say "logs:     $data/logs/<member>.log"
    say "genesis:  $data/genesis.json"
    say "keys:     $data/keys/<member>.key (well-known dev keys; dev chain only)"
    say "metrics:  http://127.0.0.1:8101/metrics"
    say "try:      curl http://127.0.0.1:8102/v1/members/exchange-a/balances"
}

examples() {
    cat <<TXT

Try the CLI against the running testnet (from $root):
  export SEISAN_GENESIS=$data/genesis.json SEISAN_KEY=$data/keys/exchange-a.key SEISAN_NODE=http://127.0.0.1:8102
  $seisan balance
  $seisan balance --proof
  $seisan order buy ETH/JPY 0.1 --price 90
  $seisan book ETH/JPY
  $seisan trades
  $seisan events --count 3
  SEISAN_KEY=$data/keys/clearing-house.key $seisan reserves
TXT
}

case "${1:-up}" in
    up)
        up
        scripts/demo.sh || { say "the demo failed; the testnet stays up for inspection"; }
        examples
        say ""
        say "the testnet runs until Ctrl-C (or scripts/testnet.sh down from another shell)"
        while true; do sleep 3600; done
        ;;
    demo)
        up
        result=0
        scripts/demo.sh || result=$?
        down
        exit $result
        ;;
    start) up ;;
    down) down ;;
    status) status ;;
    *) say "usage: scripts/testnet.sh [up|demo|start|down|status]" >&2; exit 2 ;;
esac
