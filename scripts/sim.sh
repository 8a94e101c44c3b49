#!/usr/bin/env bash
# Runs the seeded consensus simulator (crates/sim) in release mode.
#
#   scripts/sim.sh --seeds N [--validators N --quorum Q --byzantine K] [--first-seed S]
#                  [--quorum-loss never|sometimes|always] [--outage-spares-one]
#   scripts/sim.sh --seed S ...        # replay one seed with details
#
# The network behaves like the node's: broadcasts are gossip deduplicated by content
# for 120 s, direct messages are not, links drop and return. Quorum-loss outages (more
# than n - q validators stopped and restarted in every order) are on by default for
# half of the seeds (`--quorum-loss always` for every seed, `never` for none;
# `--outage-spares-one` keeps one honest validator running in each).
#
# Prints exactly one summary line on stdout:
#   sim: seeds=N violations=V finalized_blocks=B liveness_failures=L quorum_losses=Q stalls_after_quorum=S resume_ms_max=R seeds_per_s=X
# (stalls_after_quorum: liveness failures where a quorum was connected again after an
# outage but no new height came within 10 view timeouts; resume_ms_max: the longest
# time from a quorum being connected again to the next new height.)
# Failing seeds and their replay commands go to stderr. Exits non-zero on any
# violation or liveness failure.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p seisan-sim -- "$@"
