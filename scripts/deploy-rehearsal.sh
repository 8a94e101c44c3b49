#!/usr/bin/env bash
# Rehearses deploy/: a four-member consortium (clearing house, exchanges A, B, C; quorum
# 3) whose nodes run on four network namespaces with their own addresses
# (10.214.<net>.10-13 on a bridge), each started from the shipped deploy/seisan-node.toml
# (only its paths changed, as a member installs it) listening on 0.0.0.0:7101 as the
# compose file does. Checks that every node finalizes and sees the three others, that
# /metrics passes `promtool check metrics`, then stops exchange-c and checks that the
# other three keep finalizing and report the validator missing
# (seisan_peers_connected < seisan_validators - 1, the SeisanValidatorMissing alert).
# Needs root and iproute2 (as the chaos run). Environment: SEISAN_BIN (default
# target/debug/seisan, built if missing), SEISAN_REHEARSAL_NET (default 7).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${SEISAN_BIN:-$root/target/debug/seisan}
if [ -z "${SEISAN_BIN:-}" ]; then
  cargo build --quiet -p seisan-node
fi
net=${SEISAN_REHEARSAL_NET:-7}
members=(clearing-house exchange-a exchange-b exchange-c)
bridge="sd${net}br"
dir=$(mktemp -d -t seisan-deploy-rehearsal.XXXXXX)
pids=()
address() { echo "10.214.$net.$((10 + $1))"; }
namespace() { echo "seisan-deploy-$net-$1"; }
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for index in 0 1 2 3; do
    ip netns del "$(namespace "$index")" 2>/dev/null || true
    ip link del "sd${net}h$index" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
cleanup_leftovers() { pids=(); cleanup; dir=$(mktemp -d -t seisan-deploy-rehearsal.XXXXXX); }
cleanup_leftovers

ip link add "$bridge" type bridge
ip addr add "10.214.$net.1/24" dev "$bridge"
ip link set "$bridge" up
for index in 0 1 2 3; do
  ns=$(namespace "$index")
  ip netns add "$ns"
  ip link add "sd${net}h$index" type veth peer name "sd${net}n$index"
  ip link set "sd${net}n$index" netns "$ns"
  ip link set "sd${net}h$index" master "$bridge"
  ip link set "sd${net}h$index" up
  ip -n "$ns" addr add "$(address "$index")/24" dev "sd${net}n$index"
  ip -n "$ns" link set "sd${net}n$index" up
  ip -n "$ns" link set lo up
done

# The genesis names each member's libp2p address on its own host, port 7101.
"$bin" genesis testnet --out "$dir" --validators 4 >/dev/null
python3 - "$dir/genesis.json" "$net" <<'PY'
import json, sys
path, net = sys.argv[1], sys.argv[2]
genesis = json.load(open(path))
for index, member in enumerate(genesis["members"]):
    member["p2p_address"] = f"/ip4/10.214.{net}.{10 + index}/tcp/7101"
json.dump(genesis, open(path, "w"), indent=2)
PY
"$bin" genesis check "$dir/genesis.json" >/dev/null

for index in 0 1 2 3; do
  member=${members[$index]}
  etc=$dir/etc/$member
  mkdir -p "$etc"
  cp "$dir/genesis.json" "$etc/genesis.json"
  install -m 0600 "$dir/keys/$member.key" "$etc/member.key"
  # The shipped file, with this host's paths: what a member puts in /etc/seisan.
  sed -e "s#/etc/seisan#$etc#g" -e "s#/var/lib/seisan#$dir/data/$member#g" \
    deploy/seisan-node.toml >"$etc/node.toml"
  ip netns exec "$(namespace "$index")" "$bin" node --config "$etc/node.toml" \
    --http 0.0.0.0:8101 >"$dir/$member.log" 2>&1 &
  pids+=($!)
done

status() { curl -fsS --max-time 2 "http://$(address "$1"):8101/v1/status" 2>/dev/null; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
height_of() { status "$1" | field height 2>/dev/null || echo 0; }

# Every node finalizes a few blocks and is connected to the three others.
for index in 0 1 2 3; do
  for _ in $(seq 1 300); do
    if [ "$(height_of "$index")" -ge 3 ]; then break; fi
    sleep 0.2
  done
  height=$(height_of "$index")
  if [ "$height" -lt 3 ]; then
    echo "rehearsal: ${members[$index]} at $(address "$index") did not finalize 3 blocks" >&2
    tail -20 "$dir/${members[$index]}.log" >&2
    exit 1
  fi
done
metric() {
  curl -fsS --max-time 2 "http://$(address "$1"):8101/metrics" |
    awk -v name="$2" '$1 == name { print $2 }'
}
for index in 0 1 2 3; do
  for _ in $(seq 1 100); do
    if [ "$(metric "$index" seisan_peers_connected)" = "3" ]; then break; fi
    sleep 0.2
  done
  peers=$(metric "$index" seisan_peers_connected)
  if [ "$peers" != "3" ]; then
    echo "rehearsal: ${members[$index]} sees $peers peers, not 3" >&2
    exit 1
  fi
done
echo "rehearsal: four nodes on four namespaces finalize, each connected to the three others"
if command -v promtool >/dev/null 2>&1; then
  curl -fsS "http://$(address 0):8101/metrics" | promtool check metrics
  echo "rehearsal: /metrics of the clearing house's node passes promtool check metrics"
fi

# exchange-c's host goes away: quorum 3 of 4 still finalizes (the idle chain's
# heartbeat, one block every idle_block_interval_ms, 10 s), and the others report a
# validator missing.
kill "${pids[3]}"
before=$(height_of 0)
for _ in $(seq 1 450); do
  if [ "$(height_of 0)" -ge $((before + 2)) ]; then break; fi
  sleep 0.2
done
after=$(height_of 0)
if [ "$after" -lt $((before + 2)) ]; then
  echo "rehearsal: without exchange-c the consortium stopped at $after (was $before)" >&2
  exit 1
fi
for index in 0 1 2; do
  for _ in $(seq 1 150); do
    if [ "$(metric "$index" seisan_peers_connected)" = "2" ]; then break; fi
    sleep 0.2
  done
  peers=$(metric "$index" seisan_peers_connected)
  validators=$(metric "$index" seisan_validators)
  if ! [ "$peers" -lt $((validators - 1)) ]; then
    echo "rehearsal: ${members[$index]} reports $peers peers of $validators validators after exchange-c stopped" >&2
    exit 1
  fi
done
echo "rehearsal: without exchange-c the others finalized $before -> $after and report 2 peers of 4 validators (SeisanValidatorMissing)"
