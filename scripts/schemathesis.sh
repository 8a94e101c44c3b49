#!/usr/bin/env bash
# Runs schemathesis (PyPI) against /v1/openapi.json of a live three-node testnet
# (issue 10, part 3; issue 19: no warnings). Installs schemathesis into a venv under
# .tools/ when missing. The nodes serve HTTPS with a testnet CA's certificates
# (`genesis testnet --tls`); schemathesis and curl trust that CA. The testnet watches a
# local anvil (scripts/anvil.sh) so custody reads answer, and its business day ends a
# minute after start so a compliance day exists.
#
# Before the run the script makes, through the CLI, the data the operations with an id
# in their path need (deposits, a trade, a resting order, two confirmations netted in a
# closed cycle, a governance proposal) and writes their ids into the run's
# schemathesis.toml (scripts/schemathesis/config.py). scripts/schemathesis/hooks.py signs
# generated transactions with `seisan sign` so they reach the node's admission: every
# positive case of the coverage and fuzzing phases, three of every four of the stateful
# phase (the rest keep their generated signatures). Any schemathesis warning fails the
# run, as a failed check does.
#
# Environment: SEISAN_BIN (default target/debug/seisan, built if missing),
# SCHEMATHESIS_MAX_EXAMPLES (default 30), SCHEMATHESIS_MAX_TIME (seconds, default 60),
# SCHEMATHESIS_TLS=0 for plain HTTP, SCHEMATHESIS_HOOK_LOG=FILE to keep the hook's log
# (what it signed, and the node's answer to every case of the two operations).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.tools/schemathesis
version=4.32.5

. scripts/lib/local-nodes.sh
use_venv "$venv" schemathesis "$version"
use_binary
make_temp_dir schemathesis
pick_p2p_base
local_tls=${SCHEMATHESIS_TLS:-1}
start_local_anvil "$bin" "$dir"
write_local_genesis "$bin" "$dir" --eth-chain-id 31337 \
  --hot-address "$hot_address" --cold-address "$cold_address"
# Opening yen so the exchanges can trade (their ETH comes by deposit, below).
python3 - "$dir/genesis.json" <<'PY'
import json, sys
genesis = json.load(open(sys.argv[1]))
genesis["opening_balances"] += [
    {"member": "exchange-a", "asset": "JPY", "amount": "1000000"},
    {"member": "exchange-b", "asset": "JPY", "amount": "10000000"},
]
json.dump(genesis, open(sys.argv[1], "w"), indent=1)
PY
# The business day ends this far after start (UTC HH:MM:SS); its end-of-day snapshot is
# what GET /v1/compliance/{date} and the statements read.
day_seconds=60
cutoff=$(date -u -d "+$day_seconds seconds" +%H:%M:%S)
day_ends=$(($(date +%s) + day_seconds))
# A day is labelled with the UTC date of its last instant.
day=$(date -u -d "@$((day_ends - 1))" +%F)
local_node_flags=(--eth-rpc "$eth_rpc" --day-cutoff "$cutoff")
launch_local_nodes "$bin" "$dir"
url=$scheme://127.0.0.1:${http_ports[0]}
tls_verify=true
curl_tls=()
ca_flag=()
ca_file=
if [ "$scheme" = https ]; then
  tls_verify=$dir/tls/ca.pem
  curl_tls=(--cacert "$dir/tls/ca.pem")
  ca_flag=(--ca "$dir/tls/ca.pem")
  ca_file=$dir/tls/ca.pem
fi
for _ in $(seq 1 150); do
  if curl -fsS "${curl_tls[@]}" "$url/v1/status" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
curl -fsS "${curl_tls[@]}" "$url/v1/status" >/dev/null

# The data the operations with ids need, made as a user makes it.
cli() {
  local member=$1
  shift
  "$bin" "$@" --node "$url" --genesis "$dir/genesis.json" --key "$dir/keys/$member.key" "${ca_flag[@]}"
}
cli exchange-a deposit --eth-rpc "$eth_rpc" ETH 5 >/dev/null
cli exchange-b deposit --eth-rpc "$eth_rpc" ETH 1 >/dev/null
cli exchange-b withdraw ETH 0.5 >/dev/null
cli exchange-a order sell ETH/JPY 1 --price 400000 >/dev/null
tx_id=$(cli exchange-b order buy ETH/JPY 1 --price 400000 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
cli exchange-a order sell ETH/JPY 0.5 --price 410000 >/dev/null
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for member in exchange-a exchange-b; do
  cli "$member" confirm --ref T-1 --buyer exchange-b --seller exchange-a --pair ETH/JPY --qty 0.5 --price 400000 --time "$now" >/dev/null
  cli "$member" confirm --ref T-2 --buyer exchange-a --seller exchange-b --pair ETH/JPY --qty 0.2 --price 400000 --time "$now" >/dev/null
done
cli clearing-house cycle close >/dev/null
cli exchange-b governance propose set-quorum 3 >/dev/null
# Every endpoint but health, status, metrics and the API description answers members
# only: schemathesis calls as the clearing house (which may read every endpoint), with
# a token it issued itself.
token=$(cli clearing-house auth token)
# (The genesis's own day, dated by its timestamp, ends at the first block; the day that
# holds the seeded data ends at the cutoff.)
while ! curl -fsS "${curl_tls[@]}" -H "Authorization: $token" "$url/v1/compliance/days" |
  python3 -c 'import json,sys; sys.exit(sys.argv[1] not in [d["date"] for d in json.load(sys.stdin)["days"]])' "$day"; do
  if [ "$(date +%s)" -gt $((day_ends + 60)) ]; then
    echo "schemathesis: business day $day did not end by $cutoff UTC + 60 s" >&2
    exit 1
  fi
  sleep 1
done
"$venv/bin/python" scripts/schemathesis/config.py "$dir/schemathesis.toml" "$url" "$token" "$ca_file" \
  "$tx_id" "$day" exchange-a >"$dir/seeded.json"
echo "schemathesis: seeded ids $(cat "$dir/seeded.json")"

# /v1/events is an endless stream: documented, but not something to fuzz. Run from the
# temporary directory so schemathesis keeps its caches out of the work tree.
export SCHEMATHESIS_HOOKS=$root/scripts/schemathesis/hooks.py SEISAN_FUZZ_BIN=$bin \
  SEISAN_FUZZ_GENESIS=$dir/genesis.json SEISAN_FUZZ_KEYS=$dir/keys SEISAN_FUZZ_URL=$url SEISAN_FUZZ_AUTH=$token \
  SEISAN_FUZZ_CA=$ca_file SEISAN_FUZZ_LOG=$dir/signed.log
touch "$dir/signed.log"
cd "$dir"
status=0
"$venv/bin/schemathesis" --config-file "$dir/schemathesis.toml" run "$url/v1/openapi.json" \
  --url "$url" \
  --header "Authorization: $token" \
  --tls-verify "$tls_verify" \
  --exclude-path /v1/events \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
  --max-time "${SCHEMATHESIS_MAX_TIME:-60}" \
  --workers 2 \
  --suppress-health-check all || status=$?
signed=$(grep -ac '^signed ' "$dir/signed.log" || true)
substituted=$(grep -ac '^substituted ' "$dir/signed.log" || true)
unsigned=$(grep -ac '^unsigned ' "$dir/signed.log" || true)
echo "schemathesis: the hook signed $signed generated transactions as generated, $substituted with a substitute body (seisan sign refused the generated body, mostly for an integer written as a whole float such as 1926.0, which JSON Schema allows and serde refuses; SCHEMATHESIS_HOOK_LOG=FILE keeps the reasons), and left $unsigned unsigned"
echo "schemathesis: the node's answers to the positive cases of the two operations (phase, signed by the hook or as generated, status, error code):"
grep -a '^answer .* positive ' "$dir/signed.log" | sed 's/^answer //; s/ positive / /' | sort | uniq -c | sort -rn || true
if [ -n "${SCHEMATHESIS_HOOK_LOG:-}" ]; then cp "$dir/signed.log" "$SCHEMATHESIS_HOOK_LOG"; fi
if [ "$status" -ne 0 ]; then
  echo "schemathesis: failed (exit $status): a failed check or a warning, see above" >&2
  exit "$status"
fi
echo "schemathesis: passed against $url with no warnings"
