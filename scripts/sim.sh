#!/usr/bin/env bash
# Runs the seeded consensus simulator (crates/sim) in release mode.
#
#   scripts/sim.sh --seeds N [--validators N --quorum Q --byzantine K] [--first-seed S]
#                  [--quorum-loss never|sometimes|always] [--outage-spares-one]
#   scripts/sim.sh --seed S ...        # replay one seed with details
#   scripts/sim.sh --reconfigure --fault-ms 4000 --seeds 1000 [--validators 4 --quorum 3 --byzantine 1]
#
# --reconfigure: every seed draws a plan of validator-set changes (add a member, remove
# one, rotate a key, change the quorum, several in flight at once; every set safe and
# live against its byzantine members) and up to two spare members that observe from
# genesis until added. Nodes hand over to the next epoch's engine at each epoch end and
# restart in the epoch of their finalized chain; agreement, certificates (against the
# set of their epoch, with seals) and evidence are checked across epochs, and healing
# must finalize past the last change. These seeds draw no quorum-loss outage.
# crates/sim/tests/reconfiguration.rs runs 1,000 such seeds
# (SEISAN_SIM_RECONFIGURATION_SEEDS=N for N of each configuration).
#
# The network behaves like the node's: broadcasts are gossip deduplicated by content
# for 120 s, direct messages are not, links drop and return. Quorum-loss outages (more
# than n - q validators stopped and restarted in every order) are on by default for
# half of the seeds (`--quorum-loss always` for every seed, `never` for none;
# `--outage-spares-one` keeps one honest validator running in each).
#
# Prints exactly one summary line on stdout:
#   sim: seeds=N violations=V finalized_blocks=B liveness_failures=L quorum_losses=Q stalls_after_quorum=S resume_ms_max=R reconfigurations=C epochs_reached=E epochs_reached_under_faults=F sealed_epoch_ends=Z seeds_per_s=X
# (stalls_after_quorum: liveness failures where a quorum was connected again after an
# outage but no new height came within 10 view timeouts; resume_ms_max: the longest
# time from a quorum being connected again to the next new height; reconfigurations:
# epoch changes planned, epochs_reached: the sum of the highest epoch each seed reached,
# equal when every change was carried out; epochs_reached_under_faults: the same before
# healing began; sealed_epoch_ends: epoch ends finalized through seals.)
# Failing seeds and their replay commands go to stderr. Exits non-zero on any
# violation or liveness failure.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p seisan-sim -- "$@"
