#!/usr/bin/env bash
# The chaos run: three seisan nodes in their own network namespaces, the embedded bank and
# a local anvil (the public chain, started by scripts/anvil.sh) under a workload of many
# members' signed orders, cancels and allocations, fiat deposits at the bank and fiat
# withdrawals, ETH and WBTC deposits to the hot wallet and crypto withdrawals, with a
# random fault (kill -9, SIGSTOP/SIGCONT, partition, wiped data dir, kill -9 and restart
# of the bank, quorum loss: two validators stopped together and brought back in varying
# orders, at least every fifth fault) about every 10 seconds. After the run the bank's
# books must match the ledger, and the chain must show every deposit credited once,
# every withdrawal paid once and hot + cold wallets equal to the ledger's liabilities.
# Prints the seed, each fault, a per-kind breakdown and one summary line
#   chaos: minutes=M faults=F acknowledged=A lost=L invariant_violations=V divergences=D stalls_after_quorum=S
# and exits non-zero on any loss, violation, divergence or stall (S counts quorum losses
# after which no block was finalized within 15 s of a quorum being back), or with fewer
# quorum losses than one per two minutes.
#
# Usage: scripts/chaos.sh [--minutes M] [--seed S] [--release] [other seisan-chaos flags]
# Needs root for the namespaces (without it, partitions are reported as not injected).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
args=()
for arg in "$@"; do
    case "$arg" in
        --release) profile=release ;;
        *) args+=("$arg") ;;
    esac
done

if ! command -v ip >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing iproute2 (network namespaces for partitions)"
    apt-get install -y iproute2 >/dev/null || true
fi

echo "== building seisan and seisan-chaos ($profile)"
if [ "$profile" = release ]; then
    cargo build --release -p seisan-node -p seisan-chaos
else
    cargo build -p seisan-node -p seisan-chaos
fi
bin="target/$profile"

# One network number per run, so parallel runs do not collide (links sc<net>*).
net=$(( $$ % 200 + 20 ))
dir="${TMPDIR:-/tmp}/seisan-chaos-run-$$"
driver=""

cleanup() {
    # The driver cleans up after itself; this covers a driver that was killed.
    if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
        kill "$driver" 2>/dev/null || true
        sleep 1
        kill -9 "$driver" 2>/dev/null || true
    fi
    if [ -f "$dir/pids" ]; then
        while read -r pid; do
            [ -n "$pid" ] || continue
            if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = seisan ]; then
                kill -CONT "$pid" 2>/dev/null || true
                kill -9 "$pid" 2>/dev/null || true
            fi
        done < "$dir/pids"
    fi
    scripts/anvil.sh stop "$dir/anvil" 2>/dev/null || true
    if command -v ip >/dev/null 2>&1; then
        for index in 0 1 2; do
            ip netns del "seisan-chaos-$net-$index" 2>/dev/null || true
        done
        ip link del "sc${net}br" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin/seisan-chaos" --seisan "$bin/seisan" --net "$net" --dir "$dir" "${args[@]}" &
driver=$!
wait "$driver"
