#!/usr/bin/env bash
# Seisan benchmarks (issue 9): builds release binaries and prints one JSON object per
# line ({"name","value","unit","conditions"}), then a summary table. Under 15 minutes
# on a 2-core machine. Environment:
#   BENCH_RATES      offered end-to-end rates, comma-separated (default 500,...,16000; the
#                    ladder stops at the first step that saturates)
#   BENCH_STEP_SECONDS  seconds per rate step (default 10)
#   BENCH_RECOVERY_BLOCKS  chain length for the wiped-node measurement (default 100000, built
#                    with `seisan dev-chain`; 0 = skip)
#   BENCH_ONE_DOWN_ORDERS  orders timed one by one with a validator stopped (default 30; 0 = skip)
#   BENCH_OUT        where the JSON lines go (default target/bench/results.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p seisan-node -p seisan-bench
bin=target/release
out=${BENCH_OUT:-target/bench/results.jsonl}
mkdir -p "$(dirname "$out")"
: >"$out"

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
"$bin/seisan-bench" ceilings | tee -a "$out"
"$bin/seisan-bench" execution | tee -a "$out"
"$bin/seisan-bench" tree-candidates | grep '"tree_' | tee -a "$out"
"$bin/seisan-bench" netting | tee -a "$out"
SEISAN_BIN="$PWD/$bin/seisan" "$bin/seisan-bench" e2e \
  --rates "${BENCH_RATES:-500,1000,2000,4000,8000,16000}" \
  --step-seconds "${BENCH_STEP_SECONDS:-10}" \
  --recovery-blocks "${BENCH_RECOVERY_BLOCKS:-100000}" \
  --one-down-orders "${BENCH_ONE_DOWN_ORDERS:-30}" | tee -a "$out"
"$bin/seisan-bench" summary <"$out"
