#!/usr/bin/env bash
# The README's run command: a local three-node Seisan testnet on loopback.
#
#   scripts/testnet.sh          build (release), write genesis + dev keys, start the clearing
#                               house and exchanges A and B, wait until they finalize blocks,
#                               print where everything is, stay up until Ctrl-C
#   scripts/testnet.sh down     stop a testnet started in the background (or left behind)
#   scripts/testnet.sh status   each node's height and state root
#
# Everything lives under .seisan/testnet: genesis.json, keys/, nodes/<member>/ (data),
# logs/<member>.log, pids/<member>.pid.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data="$root/.seisan/testnet"
seisan="$root/target/release/seisan"
members=(clearing-house exchange-a exchange-b)
http_port() { echo $((8101 + $1)); }

say() { printf '%s\n' "$*"; }

need_curl() {
    if ! command -v curl >/dev/null 2>&1; then
        say "installing curl (apt)"
        (apt-get update -qq && apt-get install -y -qq curl) >/dev/null
    fi
}

node_status() { curl -fsS --max-time 2 "http://127.0.0.1:$(http_port "$1")/v1/status" 2>/dev/null; }

json_field() { # json_field FIELD < json
    sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"]*\)\"\{0,1\}[,}].*/\1/p"
}

down() {
    local stopped=0
    for member in "${members[@]}"; do
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
    say "stopped $stopped node(s)"
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
    say "== building seisan (release)"
    cargo build --release --locked -p seisan-node
    mkdir -p "$data/logs" "$data/pids" "$data/nodes"
    "$seisan" genesis testnet --out "$data" >/dev/null
    say "== starting three validators (quorum 2 of 3)"
    for index in "${!members[@]}"; do
        local member=${members[$index]}
        nohup "$seisan" node \
            --genesis "$data/genesis.json" \
            --key "$data/keys/$member.key" \
            --data "$data/nodes/$member" \
            --http "127.0.0.1:$(http_port "$index")" \
            >>"$data/logs/$member.log" 2>&1 &
        echo $! >"$data/pids/$member.pid"
    done
    trap 'down; exit 130' INT TERM
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
    say "logs:     $data/logs/<member>.log"
    say "genesis:  $data/genesis.json"
    say "keys:     $data/keys/<member>.key (well-known dev keys; dev chain only)"
    say "metrics:  http://127.0.0.1:8101/metrics"
    say "try:      curl http://127.0.0.1:8102/v1/members/exchange-a/balances"
}

case "${1:-up}" in
    up)
        up
        say ""
        say "the testnet runs until Ctrl-C (or scripts/testnet.sh down from another shell)"
        while true; do sleep 3600; done
        ;;
    start) up ;;
    down) down ;;
    status) status ;;
    *) say "usage: scripts/testnet.sh [up|start|down|status]" >&2; exit 2 ;;
esac
