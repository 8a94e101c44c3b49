#!/usr/bin/env bash
# The web console in a real headless browser (issue 19, item 1): Debian's chromium
# driven by Selenium (PyPI) against a live three-validator testnet. A trade is made
# through the CLI; scripts/console_check.py checks every page loads without browser
# console errors, the trade shows within seconds, the figures equal the API's, and an
# exchange's token sees its own data with the operators-only panels saying so.
# Screenshots are kept in target/console-artifacts/.
# Installs chromium and chromium-driver (apt-get) and Selenium (a venv under .tools/)
# when missing; anvil (the public chain, for custody) through scripts/anvil.sh. Environment: SEISAN_BIN (default target/debug/seisan, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
artifacts=$root/target/console-artifacts
venv=$root/.tools/console
selenium_version=4.51.0

missing=()
for tool in chromium:chromium chromedriver:chromium-driver jq:jq curl:curl; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then missing+=("${tool#*:}"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  echo "console: installing ${missing[*]} (apt-get)" >&2
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}"
fi
. scripts/lib/local-nodes.sh
use_venv "$venv" selenium "$selenium_version"
use_binary
make_temp_dir console
pick_p2p_base
# The public chain (anvil, on a free port) so custody is real: the reserves panel shows
# the hot and cold wallets against the ledger. Like scripts/testnet.sh, the wallets are
# fresh addresses holding only gas and what the exchanges deposit.
start_local_anvil "$bin" "$dir"
# Opening yen balances so the exchanges can trade (their ETH comes by deposit, below).
# --observer: a member with the observer role (a regulator) whose token the check also
# uses; its own node is not started.
write_local_genesis "$bin" "$dir" --eth-chain-id 31337 --observer \
  --hot-address "$hot_address" --cold-address "$cold_address"
jq '.opening_balances += [
      {member: "exchange-a", asset: "JPY", amount: "1000000"},
      {member: "exchange-b", asset: "JPY", amount: "10000000"}]' \
  "$dir/genesis.json" >"$dir/genesis.funded.json"
mv "$dir/genesis.funded.json" "$dir/genesis.json"
local_node_flags=(--eth-rpc "$eth_rpc")
launch_local_nodes "$bin" "$dir" --hot-key "$dir/hot-wallet.key"
url=http://127.0.0.1:${http_ports[0]}
for _ in $(seq 1 150); do
  if curl -fsS "$url/v1/status" 2>/dev/null | jq -e '.syncing == false and .height > 0' >/dev/null; then break; fi
  sleep 0.2
done
curl -fsS "$url/v1/status" | jq -e '.syncing == false' >/dev/null

# Some history before the browser opens: ETH deposits (attested on chain), a withdrawal, a trade,
# and a resting order on each side.
"$bin" deposit --node "$url" --genesis "$dir/genesis.json" --key "$dir/keys/exchange-a.key" \
  --eth-rpc "$eth_rpc" ETH 5 >/dev/null
"$bin" deposit --node "$url" --genesis "$dir/genesis.json" --key "$dir/keys/exchange-b.key" \
  --eth-rpc "$eth_rpc" ETH 1 >/dev/null
"$bin" withdraw --node "$url" --genesis "$dir/genesis.json" --key "$dir/keys/exchange-b.key" \
  ETH 0.5 >/dev/null
order() { "$bin" order --node "$url" --genesis "$dir/genesis.json" --key "$dir/keys/$1.key" "${@:2}" >/dev/null; }
order exchange-a sell ETH/JPY 1 --price 400000
order exchange-b buy ETH/JPY 1 --price 400000
order exchange-a sell ETH/JPY 0.5 --price 410000
order exchange-b buy ETH/JPY 0.2 --price 390000
# Two bilateral confirmations in opposite directions, netted when the clearing house
# closes the cycle: the settlement page shows gross, net and the saving.
confirm() {
  "$bin" confirm --node "$url" --genesis "$dir/genesis.json" --key "$dir/keys/$1.key" "${@:2}" >/dev/null
}
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for member in exchange-a exchange-b; do
  confirm "$member" --ref T-1 --buyer exchange-b --seller exchange-a --pair ETH/JPY --qty 0.5 --price 400000 --time "$now"
  confirm "$member" --ref T-2 --buyer exchange-a --seller exchange-b --pair ETH/JPY --qty 0.2 --price 400000 --time "$now"
done
"$bin" cycle close --node "$url" --genesis "$dir/genesis.json" --key "$dir/keys/clearing-house.key" >/dev/null
# A governance proposal with one approval of the two it needs: pending.
"$bin" governance propose --node "$url" --genesis "$dir/genesis.json" --key "$dir/keys/exchange-b.key" \
  set-quorum 3 >/dev/null
# An order beyond exchange-a's yen raises a top-up request with a deadline.
order exchange-a buy ETH/JPY 10 --price 300000

token() { "$bin" auth token --node "$url" --genesis "$dir/genesis.json" --key "$dir/keys/$1.key"; }
rm -rf "$artifacts"
mkdir -p "$artifacts"
started=$(date +%s)
CONSOLE_URL=$url CONSOLE_CUSTODY=1 CONSOLE_HISTORY=1 CONSOLE_GENESIS=$dir/genesis.json CONSOLE_KEYS=$dir/keys SEISAN_BIN=$bin \
  ARTIFACTS=$artifacts TOKEN_CLEARING_HOUSE="$(token clearing-house)" TOKEN_EXCHANGE_A="$(token exchange-a)" \
  TOKEN_OBSERVER="$(token observer)" \
  "$venv/bin/python" scripts/console_check.py
echo "console: the browser checks took $(($(date +%s) - started))s; screenshots in $artifacts"
