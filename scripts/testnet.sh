#!/usr/bin/env bash
# The README's run command: a local Seisan testnet on loopback, three validators by default.
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
# Options (up, demo, start):
#   --validators N   N validator nodes, 3 to 7 (default 3): the clearing house and exchanges
#                    A, B, then C, D, E, F, each with its own dev key, libp2p port 7101+i,
#                    HTTP port 8101+i, bank accounts (token dev-token-<member>, 1,000,000 JPY
#                    operating) and a registered address on anvil
#   --quorum Q       the quorum (default: the smallest q with 2q > N; refused if 2q <= N or q > N)
#   --observer       also start an observer node (member `observer`, role observer, never a
#                    validator): it follows and verifies the chain, HTTP port 8110
#   --no-tls         plain HTTP; by default every node's API and the bank's serve HTTPS
#                    only, with certificates from a testnet CA (tls/ca.pem) that the
#                    CLI (SEISAN_CA / --ca) and curl (--cacert) are given
#
# Every start is a fresh testnet. Everything lives under .seisan/testnet: genesis.json,
# keys/, tls/ (the CA and each server's certificate and key), nodes/<member>/ (data),
# bank/, anvil/, logs/, pids/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data="$root/.seisan/testnet"
# SEISAN_BIN runs another build of seisan (e.g. target/debug/seisan) and skips the release build.
seisan="${SEISAN_BIN:-$root/target/release/seisan}"
http_port() { echo $((8101 + $1)); }
# The observer's HTTP port (libp2p 7110, from genesis).
observer_http=8110
# Gas each fresh custody wallet starts with: 0.01 ETH, in wei.
GAS_WEI=10000000000000000

usage() {
    cat <<'TXT'
usage: scripts/testnet.sh [up|demo|start|down|status] [--validators N] [--quorum Q] [--observer]

  up (default)    start a fresh testnet, run the patent's scenario, stay up until Ctrl-C
  demo            start a fresh testnet, run the scenario, stop; exit 0 only if it passed
  start           start a fresh testnet and return
  down            stop everything a start left running
  status          each node's height, view and state root

  --validators N  validator nodes, 3 to 7 (default 3): clearing-house, exchange-a,
                  exchange-b, then exchange-c ... exchange-f; node i (from 0) listens on
                  libp2p 7101+i and HTTP 8101+i
  --quorum Q      signatures that make a block final (default: the smallest Q with
                  2Q > N, e.g. 3 of 4, 3 of 5); refused if 2Q <= N or Q > N
  --observer      also start an observer node (member observer, never a validator) that
                  follows and verifies the chain and serves the read API, proofs and
                  trade certificates on HTTP 8110
  --no-tls        plain HTTP (by default the nodes and the bank serve HTTPS only, with
                  a testnet CA: .seisan/testnet/tls/ca.pem, for --ca / SEISAN_CA and
                  curl --cacert)

  SEISAN_BIN=target/debug/seisan uses that build and skips the release build.
TXT
}

command=up
validators=3
quorum=
observer=0
tls=1
while [ $# -gt 0 ]; do
    case "$1" in
        up|demo|start|down|status) command=$1 ;;
        --validators) [ $# -ge 2 ] || { echo "error: --validators needs a number" >&2; exit 2; }; validators=$2; shift ;;
        --validators=*) validators=${1#*=} ;;
        --quorum) [ $# -ge 2 ] || { echo "error: --quorum needs a number" >&2; exit 2; }; quorum=$2; shift ;;
        --quorum=*) quorum=${1#*=} ;;
        --observer) observer=1 ;;
        --no-tls) tls=0 ;;
        -h|--help|help) usage; exit 0 ;;
        *) echo "error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if ! [[ "$validators" =~ ^[0-9]+$ ]] || [ "$validators" -lt 3 ] || [ "$validators" -gt 7 ]; then
    echo "error: --validators $validators: a testnet has 3 to 7 validators" >&2
    exit 2
fi
if [ -z "$quorum" ]; then
    quorum=$((validators / 2 + 1))
elif ! [[ "$quorum" =~ ^[0-9]+$ ]]; then
    echo "error: --quorum $quorum is not a number" >&2
    exit 2
elif [ $((2 * quorum)) -le "$validators" ]; then
    echo "error: --quorum $quorum is unsafe for $validators validators: 2q must exceed n, so two quorums always share a member (the least is $((validators / 2 + 1)))" >&2
    exit 2
elif [ "$quorum" -gt "$validators" ]; then
    echo "error: --quorum $quorum exceeds the $validators validators, so no block could ever be final" >&2
    exit 2
fi
members=(clearing-house)
for letter in a b c d e f; do
    [ ${#members[@]} -lt "$validators" ] && members+=("exchange-$letter")
done
# down and status act on the testnet that is there, whatever its size.
if [ "$command" = down ] || [ "$command" = status ]; then
    if [ -f "$data/genesis.json" ] && command -v jq >/dev/null 2>&1; then
        mapfile -t members < <(jq -r '.members[] | select(.validator) | .name' "$data/genesis.json")
        jq -e '.members[] | select(.role == "observer" and .name == "observer")' "$data/genesis.json" >/dev/null 2>&1 && observer=1
    fi
    [ -f "$data/tls/ca.pem" ] || tls=0
fi
# The API's scheme, and what curl needs to trust the testnet CA.
scheme=http
cacert=()
if [ "$tls" = 1 ]; then
    scheme=https
    cacert=(--cacert "$data/tls/ca.pem")
fi

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

node_status() { curl -fsS "${cacert[@]}" --max-time 2 "$scheme://127.0.0.1:$(http_port "$1")/v1/status" 2>/dev/null; }

json_field() { # json_field FIELD < json
    sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"]*\)\"\{0,1\}[,}].*/\1/p"
}

down() {
    local stopped=0
    local pidfile
    for pidfile in "$data"/pids/*.pid; do
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
        local url="$scheme://127.0.0.1:$(http_port "$index")"
        local body; body=$(node_status "$index" || true)
        if [ -z "$body" ]; then
            printf '%-16s %-24s %s\n' "${members[$index]}" "$url" "not running"
        else
            printf '%-16s %-24s %-8s %-8s %s\n' "${members[$index]}" "$url" \
                "$(json_field height <<<"$body")" "$(json_field view <<<"$body")" "$(json_field state_root <<<"$body")"
        fi
    done
    if [ "$observer" = 1 ]; then
        local url="$scheme://127.0.0.1:$observer_http"
        local body; body=$(curl -fsS "${cacert[@]}" --max-time 2 "$url/v1/status" 2>/dev/null || true)
        if [ -z "$body" ]; then
            printf '%-16s %-24s %s\n' "observer" "$url" "not running (observer)"
        else
            printf '%-16s %-24s %-8s %-8s %s\n' "observer" "$url" \
                "$(json_field height <<<"$body")" "$(json_field view <<<"$body")" "$(json_field state_root <<<"$body") (observer)"
        fi
    fi
}

up() {
    need_curl
    for index in "${!members[@]}"; do
        if node_status "$index" >/dev/null || curl -fsS --max-time 2 -k "https://127.0.0.1:$(http_port "$index")/v1/status" >/dev/null 2>&1 \
            || curl -fsS --max-time 2 "http://127.0.0.1:$(http_port "$index")/v1/status" >/dev/null 2>&1; then
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
    local observer_flag=() tls_flag=()
    [ "$observer" = 1 ] && observer_flag=(--observer)
    [ "$tls" = 1 ] && tls_flag=(--tls)
    # The clearing house's hot and cold wallets are fresh addresses (keys made here, mode
    # 0600) that hold nothing but what the exchanges trust them, plus 0.01 ETH of gas
    # each: so the proof of reserves and the hot wallet's 5% cap are real checks (an
    # anvil dev account's 10,000 ETH would cover anything). The cold key is used only by
    # `seisan custody refill`; no node reads it.
    local hot_address cold_address
    hot_address=$("$seisan" custody keygen --out "$data/keys/hot-wallet.key")
    cold_address=$("$seisan" custody keygen --out "$data/keys/cold-wallet.key")
    for address in "$hot_address" "$cold_address"; do
        curl -fsS -X POST -H 'content-type: application/json' \
            --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"anvil_setBalance\",\"params\":[\"$address\",\"0x$(printf '%x' "$GAS_WEI")\"]}" \
            http://127.0.0.1:8545 >/dev/null
    done
    "$seisan" genesis testnet --usd --out "$data" --validators "$validators" --quorum "$quorum" \
        --eth-chain-id 31337 --token-contract "$token" \
        --hot-address "$hot_address" --cold-address "$cold_address" "${observer_flag[@]}" "${tls_flag[@]}" >/dev/null
    # bank init gives every validator a read-only auditor token (dev-token-<member>-auditor)
    # that reads every trust account, so each validator attests every exchange's entries.
    say "== starting the bank (trust accounts; 1,000,000 JPY in each exchange's operating account)"
    "$seisan" bank init --out "$data/bank" --genesis "$data/genesis.json" >/dev/null
    local bank_tls=()
    [ "$tls" = 1 ] && bank_tls=(--tls-cert "$data/tls/bank.pem" --tls-key "$data/tls/bank.key")
    nohup "$seisan" bank run --config "$data/bank/bank.toml" "${bank_tls[@]}" >>"$data/logs/bank.log" 2>&1 &
    echo $! >"$data/pids/bank.pid"
    for _ in $(seq 1 100); do curl -fsS "${cacert[@]}" --max-time 1 "$scheme://127.0.0.1:7400/v1/health" >/dev/null 2>&1 && break; sleep 0.1; done
    say "== starting ${#members[@]} validators (quorum $quorum of ${#members[@]}): ${members[*]}"
    for index in "${!members[@]}"; do
        local member=${members[$index]}
        local extra=()
        [ "$member" = clearing-house ] && extra=(--hot-key "$data/keys/hot-wallet.key")
        [ "$tls" = 1 ] && extra+=(--tls-cert "$data/tls/$member.pem" --tls-key "$data/tls/$member.key" \
            --bank-ca "$data/tls/ca.pem")
        # Bank tokens in files only the owner reads (mode 0600), never as arguments.
        (umask 077 && echo "dev-token-$member" >"$data/keys/$member.bank-token" \
            && echo "dev-token-$member-auditor" >"$data/keys/$member.bank-auditor-token")
        nohup "$seisan" node \
            --genesis "$data/genesis.json" \
            --key "$data/keys/$member.key" \
            --data "$data/nodes/$member" \
            --http "127.0.0.1:$(http_port "$index")" \
            --eth-rpc "http://127.0.0.1:8545" \
            --bank-url "$scheme://127.0.0.1:7400" --bank-token-file "$data/keys/$member.bank-token" \
            --bank-auditor-token-file "$data/keys/$member.bank-auditor-token" \
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
    if [ "$observer" = 1 ]; then
        # An observer needs no bank or public chain: it verifies what the validators
        # finalize, keeps its own store and serves the read API, proofs and certificates.
        say "== starting the observer (never a validator; HTTP $observer_http)"
        local observer_tls=()
        [ "$tls" = 1 ] && observer_tls=(--tls-cert "$data/tls/observer.pem" --tls-key "$data/tls/observer.key")
        nohup "$seisan" node "${observer_tls[@]}" \
            --genesis "$data/genesis.json" \
            --key "$data/keys/observer.key" \
            --data "$data/nodes/observer" \
            --http "127.0.0.1:$observer_http" \
            >>"$data/logs/observer.log" 2>&1 &
        echo $! >"$data/pids/observer.pid"
        local ok=0
        for _ in $(seq 1 300); do
            local body; body=$(curl -fsS "${cacert[@]}" --max-time 2 "$scheme://127.0.0.1:$observer_http/v1/status" 2>/dev/null || true)
            if [ -n "$body" ] && [ "$(json_field height <<<"$body")" -ge 2 ] 2>/dev/null; then ok=1; break; fi
            sleep 0.2
        done
        if [ "$ok" != 1 ]; then
            say "error: the observer did not follow the chain within 60 s; see $data/logs/observer.log" >&2
            down
            exit 1
        fi
    fi
    say "== the testnet is finalizing blocks"
    status
    say ""
    say "chain:    anvil at http://127.0.0.1:8545 (token $(jq -r .token "$data/anvil/chain.json"))"
    say "bank:     $scheme://127.0.0.1:7400 (tokens dev-token-<member>; validators' read-only dev-token-<member>-auditor)"
    [ "$tls" = 1 ] && say "TLS:      HTTPS only; trust the testnet CA $data/tls/ca.pem (CLI: SEISAN_CA or --ca; curl --cacert)"
    say "logs:     $data/logs/<member>.log"
    say "genesis:  $data/genesis.json"
    say "keys:     $data/keys/<member>.key (well-known dev keys; dev chain only)"
    say "metrics:  $scheme://127.0.0.1:8101/metrics"
    say "try:      curl ${cacert[*]} $scheme://127.0.0.1:8101/v1/status"
}

examples() {
    cat <<TXT

Try the CLI against the running testnet (from $root):
  export SEISAN_GENESIS=$data/genesis.json SEISAN_KEY=$data/keys/exchange-a.key SEISAN_NODE=$scheme://127.0.0.1:8102$( [ "$tls" = 1 ] && echo " SEISAN_CA=$data/tls/ca.pem")
  $seisan balance
  $seisan balance --proof
  $seisan order buy ETH/JPY 0.1 --price 90
  $seisan book ETH/JPY
  $seisan trades
  $seisan events --count 3
  SEISAN_KEY=$data/keys/clearing-house.key $seisan reserves
TXT
}

# Every validator node at one height with one state root (demo.sh compares the first
# three; a larger testnet has more).
agree() {
    local height; height=$(node_status 0 | json_field height)
    local roots=() index
    # Blocks are read as the clearing house (the API answers members only).
    local ca_flag=()
    [ "$tls" = 1 ] && ca_flag=(--ca "$data/tls/ca.pem")
    local auth
    auth="authorization: $("$seisan" auth token --key "$data/keys/clearing-house.key" --genesis "$data/genesis.json" \
        --node "$scheme://127.0.0.1:$(http_port 0)" "${ca_flag[@]}")"
    for index in "${!members[@]}"; do
        local reached=0
        for _ in $(seq 1 120); do
            local at; at=$(node_status "$index" | json_field height || true)
            if [ -n "$at" ] && [ "$at" -ge "$height" ]; then reached=1; break; fi
            sleep 0.5
        done
        if [ "$reached" != 1 ]; then
            say "CHECK FAILED: ${members[$index]} did not reach height $height" >&2
            return 1
        fi
        roots+=("$(curl -fsS "${cacert[@]}" -H "$auth" --max-time 5 "$scheme://127.0.0.1:$(http_port "$index")/v1/blocks/$height" | jq -r '.block.header.state_root')")
    done
    local distinct; distinct=$(printf '%s\n' "${roots[@]}" | sort -u | wc -l)
    if [ "$distinct" != 1 ] || ! [[ "${roots[0]}" =~ ^[0-9a-f]{64}$ ]]; then
        say "CHECK FAILED: the ${#members[@]} validators hold $distinct state roots at height $height: ${roots[*]}" >&2
        return 1
    fi
    say "  ok: all ${#members[@]} validators (quorum $quorum) hold state root ${roots[0]} at height $height"
    if [ "$observer" = 1 ]; then
        local seen=""
        for _ in $(seq 1 120); do
            seen=$(curl -fsS "${cacert[@]}" -H "$auth" --max-time 5 "$scheme://127.0.0.1:$observer_http/v1/blocks/$height" 2>/dev/null | jq -r '.block.header.state_root' || true)
            [ -n "$seen" ] && [ "$seen" != null ] && break
            sleep 0.5
        done
        if [ "$seen" != "${roots[0]}" ]; then
            say "CHECK FAILED: the observer holds state root '$seen' at height $height, the validators ${roots[0]}" >&2
            return 1
        fi
        say "  ok: the observer verified the same chain (state root ${roots[0]} at height $height)"
    fi
}

case "$command" in
    up)
        up
        { scripts/demo.sh && agree; } || { say "the demo failed; the testnet stays up for inspection"; }
        examples
        say ""
        say "the testnet runs until Ctrl-C (or scripts/testnet.sh down from another shell)"
        while true; do sleep 3600; done
        ;;
    demo)
        up
        result=0
        scripts/demo.sh || result=$?
        if [ "$result" = 0 ]; then agree || result=$?; fi
        down
        exit $result
        ;;
    start) up ;;
    down) down ;;
    status) status ;;
esac
