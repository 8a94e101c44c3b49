#!/usr/bin/env bash
# Runs the seeded consensus simulator (crates/sim) in release mode.
#
#   scripts/sim.sh --seeds N [--validators N --quorum Q --byzantine K] [--first-seed S]
#   scripts/sim.sh --seed S ...        # replay one seed with details
#
# Prints exactly one summary line on stdout:
#   sim: seeds=N violations=V finalized_blocks=B liveness_failures=L seeds_per_s=S
# Failing seeds and their replay commands go to stderr. Exits non-zero on any
# violation or liveness failure.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p seisan-sim -- "$@"
