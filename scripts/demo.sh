#!/usr/bin/env bash
# The patent's scenario (JP6745835B2, second embodiment) on a running testnet, step by
# step, through the `seisan` CLI. Started by scripts/testnet.sh; every step checks what
# it claims and the script exits non-zero at the first check that fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data="$root/.seisan/testnet"
seisan="${SEISAN_BIN:-$root/target/release/seisan}"
export SEISAN_GENESIS="$data/genesis.json"
export SEISAN_ETH_RPC="http://127.0.0.1:${ANVIL_PORT:-8545}"
# A testnet started with TLS (the default of scripts/testnet.sh) has its CA in tls/:
# the nodes and the bank answer https only; the CLI (SEISAN_CA) and curl (--cacert)
# trust that CA.
scheme=http
cacert=()
if [ -f "$data/tls/ca.pem" ]; then
    scheme=https
    cacert=(--cacert "$data/tls/ca.pem")
    export SEISAN_CA="$data/tls/ca.pem"
fi
export SEISAN_BANK_URL="$scheme://127.0.0.1:7400"

# The API answers members only (README "Who may read what"): the script's own reads
# with curl go as the clearing house, with a token it issues itself.
operator_auth="authorization: $(SEISAN_KEY="$data/keys/clearing-house.key" "$seisan" auth token --ttl-minutes 120)"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
check() { # check DESCRIPTION EXPECTED ACTUAL
    if [ "$2" != "$3" ]; then
        echo "CHECK FAILED: $1: expected $2, got $3" >&2
        exit 1
    fi
    echo "  ok: $1 = $3"
}
# wait_for DESCRIPTION EXPECTED COMMAND... -> polls COMMAND for up to 60 s, then checks it
wait_for() {
    local what=$1 expected=$2; shift 2
    for _ in $(seq 1 120); do
        [ "$("$@")" = "$expected" ] && break
        sleep 0.5
    done
    check "$what" "$expected" "$("$@")"
}
as() { # as MEMBER NODE_INDEX seisan-args...
    local member=$1 index=$2; shift 2
    SEISAN_KEY="$data/keys/$member.key" SEISAN_NODE="$scheme://127.0.0.1:$((8101 + index))" "$seisan" "$@"
}
# balance MEMBER SYMBOL -> inventory+locked+customers in whole units (via --json minor units)
holding() {
    local json; json=$(as "$1" 0 balance --member "$1" --json)
    local scale; scale=$(jq -r --arg s "$2" '.assets[] | select(.symbol == $s) | .scale' "$SEISAN_GENESIS")
    jq -r --arg s "$2" --argjson scale "$scale" '
        .balances[] | select(.symbol == $s) | .balance
        | ((.inventory | tonumber) + (.locked | tonumber) + (.customers | tonumber)) / pow(10; $scale)
        | if . == (. | floor) then floor else . end' <<<"$json"
}
show_balances() {
    for member in exchange-a exchange-b; do
        printf '  %-11s JPY %-8s USD %-8s ETH %-6s WBTC %s\n' "$member" "$(holding $member JPY)" "$(holding $member USD)" "$(holding $member ETH)" "$(holding $member WBTC)"
    done
}

step "S210: both exchanges trust fiat: 200 JPY from their operating accounts into their trust accounts at the bank"
as exchange-a 1 fiat-deposit 200
as exchange-b 2 fiat-deposit 200
check "exchange-a JPY in the ledger" 200 "$(holding exchange-a JPY)"
check "exchange-b JPY in the ledger" 200 "$(holding exchange-b JPY)"

step "S211-S212: both exchanges trust coins: 2 ETH each from their registered addresses to the hot address on the public chain"
as exchange-a 1 deposit ETH 2
as exchange-b 2 deposit ETH 2
as exchange-a 1 deposit WBTC 0.5
check "exchange-a ETH" 2 "$(holding exchange-a ETH)"
check "exchange-b ETH" 2 "$(holding exchange-b ETH)"
check "exchange-a WBTC (an ERC-20 token)" 0.5 "$(holding exchange-a WBTC)"
show_balances

# reserve SYMBOL FIELD -> a field of the proof of reserves' line for the asset
reserve() {
    curl -sf "${cacert[@]}" -H "$operator_auth" "$scheme://127.0.0.1:8101/v1/reserves" | jq -r --arg s "$1" ".assets[] | select(.symbol == \$s) | .$2"
}
# within_cap SYMBOL -> yes when the hot wallet holds at most its cap of the asset's custody
within_cap() {
    curl -sf "${cacert[@]}" -H "$operator_auth" "$scheme://127.0.0.1:8101/v1/reserves" | jq -r --arg s "$1" \
        '.assets[] | select(.symbol == $s) | if .hot_share_bps != null and .hot_share_bps <= .hot_cap_bps then "yes" else "no: hot share \(.hot_share_bps) bps" end'
}
step "Custody: the hot and cold wallets are fresh addresses holding only what was trusted (plus gas); the clearing house sweeps all but the 5% hot-wallet cap to cold"
wait_for "ETH in the hot wallet within its 5% cap" yes within_cap ETH
wait_for "WBTC in the hot wallet within its 5% cap" yes within_cap WBTC
check "WBTC custody (hot + cold) against what was trusted (minor units)" 50000000 "$(( $(reserve WBTC hot) + $(reserve WBTC cold) ))"
check "ETH undercovered (hot + cold below the ledger)" false "$(reserve ETH undercovered)"
check "WBTC undercovered (hot + cold below the ledger)" false "$(reserve WBTC undercovered)"
as clearing-house 0 reserves | sed 's/^/  /'

step "S230-S290: exchange A asks to buy 1 ETH at 100 JPY; exchange B to sell; the pair matches and settles delivery versus payment"
as exchange-a 1 order buy ETH/JPY 1 --price 100
as exchange-b 2 order sell ETH/JPY 1 --price 100
check "exchange-a JPY (table 2: 100)" 100 "$(holding exchange-a JPY)"
check "exchange-a ETH (table 2: 3)" 3 "$(holding exchange-a ETH)"
check "exchange-b JPY (table 2: 300)" 300 "$(holding exchange-b JPY)"
check "exchange-b ETH (table 2: 1)" 1 "$(holding exchange-b ETH)"
echo "  the post-state is signed by a quorum; exchange A checks its balance without trusting the node:"
as exchange-a 0 balance --proof | sed 's/^/  /'

step "S304-S312: an order beyond A's funds raises a top-up request; a fiat deposit cures it and the order fills"
as exchange-b 2 order sell ETH/JPY 1 --price 150
as exchange-a 1 order buy ETH/JPY 1 --price 150
open=$(as exchange-a 1 topups --json | jq '[.. | objects | select(has("status") and .status == "open")] | length')
check "open top-up requests of exchange-a" 1 "$open"
as exchange-a 1 fiat-deposit 100
for _ in $(seq 1 60); do
    [ "$(holding exchange-a ETH)" = 4 ] && break
    sleep 0.5
done
check "exchange-a ETH after the cured order filled" 4 "$(holding exchange-a ETH)"
check "exchange-a JPY after paying 150" 50 "$(holding exchange-a JPY)"
show_balances

step "S313-S316: bilateral trade confirmations in one format; a mismatch is sent back, a matching pair settles at the cut-off with netting"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
as exchange-a 1 confirm --ref T-1 --buyer exchange-a --seller exchange-b --pair ETH/JPY --qty 0.5 --price 60 --time "$now"
as exchange-b 2 confirm --ref T-1 --buyer exchange-a --seller exchange-b --pair ETH/JPY --qty 0.6 --price 60 --time "$now"
check "confirmation T-1 (0.5 against 0.6 ETH) sent back, mismatched on" quantity \
    "$(curl -sf "${cacert[@]}" -H "$operator_auth" "$scheme://127.0.0.1:8101/v1/confirmations" | jq -r '.confirmations[] | select(.trade_ref == "T-1") | .status.mismatched.fields | join(",")')"
as exchange-a 1 confirm --ref T-2 --buyer exchange-b --seller exchange-a --pair ETH/JPY --qty 0.5 --price 60 --time "$now"
as exchange-b 2 confirm --ref T-2 --buyer exchange-b --seller exchange-a --pair ETH/JPY --qty 0.5 --price 60 --time "$now"
as clearing-house 0 cycle close
as clearing-house 0 cycles | sed 's/^/  /'
echo "  an auditor recomputes the cycle's netting from its signed confirmations, with the genesis file alone:"
as clearing-house 0 cycle verify 1 --out "$data/cycle-1.json" | sed 's/^/  /'
python3 - "$data/cycle-1.json" "$data/cycle-1-altered.json" <<'PY'
import json, sys
document = json.load(open(sys.argv[1]))
def alter(node):
    """Changes the first confirmation's quantity wherever the terms appear."""
    if isinstance(node, dict):
        if "quantity" in node and "trade_ref" in node:
            node["quantity"] = str(int(node["quantity"]) + 1)
            return True
        return any(alter(value) for value in node.values())
    if isinstance(node, list):
        return any(alter(value) for value in node)
    return False
assert alter(document), "no confirmation terms in the cycle certificate"
json.dump(document, open(sys.argv[2], "w"))
PY
if refusal=$("$seisan" cycle verify --file "$data/cycle-1-altered.json" 2>&1); then
    echo "CHECK FAILED: a cycle certificate with an altered confirmation verified" >&2
    exit 1
fi
echo "  ok: the same cycle with one altered confirmation is refused: $(tail -1 <<<"$refusal")"
check "exchange-a JPY after selling 0.5 ETH at 60" 80 "$(holding exchange-a JPY)"
check "exchange-b ETH after buying 0.5 ETH" 0.5 "$(holding exchange-b ETH)"
show_balances

step "Withdrawal: exchange A withdraws 0.5 ETH; the hot wallet holds only its cap, so the payout waits until the clearing house refills it from cold, then pays on the public chain"
address=$(jq -r '.public_chain.registered_addresses[] | select(.member == "exchange-a") | .address' "$SEISAN_GENESIS")
wei() { curl -sf "${cacert[@]}" -X POST -H 'content-type: application/json' \
    --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBalance\",\"params\":[\"$address\",\"latest\"]}" \
    "$SEISAN_ETH_RPC" | jq -r '.result' | python3 -c 'import sys; print(int(sys.stdin.read().strip(), 16))'; }
waiting_for_hot() {
    curl -sf "${cacert[@]}" -H "$operator_auth" "$scheme://127.0.0.1:8101/v1/reserves" | jq -r '.waiting_for_hot_wallet | length'
}
before=$(wei)
# The withdrawal waits for its attested payout (--wait-paid), saying where it stands,
# while the operator refills the hot wallet beside it.
as exchange-a 1 withdraw ETH 0.5 --wait-paid >"$data/withdraw.log" 2>&1 &
withdrawing=$!
wait_for "withdrawals waiting for the hot wallet (0.5 ETH asked, about 0.2 ETH hot)" 1 waiting_for_hot
"$seisan" custody refill --genesis "$SEISAN_GENESIS" --cold-key "$data/keys/cold-wallet.key" --asset ETH --amount 0.5 | sed 's/^/  /'
if ! wait "$withdrawing"; then
    cat "$data/withdraw.log" >&2
    echo "CHECK FAILED: seisan withdraw --wait-paid did not see the payout attested" >&2
    exit 1
fi
sed 's/^/  /' "$data/withdraw.log"
check "seisan withdraw --wait-paid said where the payout stood while it waited" yes \
    "$(grep -q 'waiting for the payout of withdrawal 1 ([0-9]* s): ' "$data/withdraw.log" && echo yes || echo no)"
paid=0
for _ in $(seq 1 120); do
    after=$(wei)
    if python3 -c "import sys; sys.exit(0 if $after - $before == 500000000000000000 else 1)"; then paid=1; break; fi
    sleep 0.5
done
check "ETH that arrived at exchange-a's address on the public chain" 1 "$paid"
check "exchange-a ETH in the ledger" 3 "$(holding exchange-a ETH)"

# bank_balance TOKEN_OWNER ACCOUNT -> the account's balance at the bank, in minor units
bank_balance() {
    curl -sf "${cacert[@]}" -H "authorization: Bearer dev-token-$1" "$SEISAN_BANK_URL/v1/accounts/$2" | jq -r '.balance | tonumber'
}
usd_unconfirmed() {
    curl -sf "${cacert[@]}" -H "$operator_auth" "$scheme://127.0.0.1:8101/v1/reconciliation" | jq -r '[.unconfirmed[] | select(.reference | endswith("-USD"))] | length'
}
usd_clean() {
    curl -sf "${cacert[@]}" -H "$operator_auth" "$scheme://127.0.0.1:8101/v1/reconciliation" | jq -r '.currencies.USD.clean'
}

step "Aspect 7, a second currency: trust accounts per exchange and currency; 100 USD into exchange-b's USD trust account"
jpy_before=$(bank_balance clearing-house exchange-b:trust)
as exchange-b 2 fiat-deposit 100 --currency USD
check "exchange-b USD in the ledger" 100 "$(holding exchange-b USD)"
check "exchange-b:trust:USD at the bank (cents)" 10000 "$(bank_balance clearing-house exchange-b:trust:USD)"
check "exchange-b's JPY trust account, unchanged by the USD deposit (yen)" "$jpy_before" "$(bank_balance clearing-house exchange-b:trust)"

step "ETH/USD: exchange A sells 1 ETH to exchange B at 40 USD; the clearing house mirrors the USD at the bank and q validators confirm it on chain"
as exchange-a 1 order sell ETH/USD 1 --price 40
as exchange-b 2 order buy ETH/USD 1 --price 40
check "exchange-a USD after selling 1 ETH at 40" 40 "$(holding exchange-a USD)"
check "exchange-b USD after paying 40" 60 "$(holding exchange-b USD)"
check "exchange-b ETH after buying 1" 1.5 "$(holding exchange-b ETH)"
wait_for "USD settlements not yet confirmed on chain" 0 usd_unconfirmed
check "exchange-a:trust:USD at the bank (cents)" 4000 "$(bank_balance clearing-house exchange-a:trust:USD)"
check "exchange-b:trust:USD at the bank (cents)" 6000 "$(bank_balance clearing-house exchange-b:trust:USD)"

step "USD withdrawal: exchange A withdraws 15 USD; the clearing house pays it from its USD trust account to its USD operating account"
before=$(bank_balance exchange-a exchange-a:operating:USD)
as exchange-a 1 withdraw USD 15
check "exchange-a USD in the ledger" 25 "$(holding exchange-a USD)"
wait_for "exchange-a:trust:USD at the bank after the payment (cents)" 2500 bank_balance clearing-house exchange-a:trust:USD
check "exchange-a:operating:USD gained (cents)" 1500 "$(( $(bank_balance exchange-a exchange-a:operating:USD) - before ))"
wait_for "the USD reconciliation is clean" true usd_clean
show_balances

step "Final: every node has the same state root; reserves and reconciliation show full coverage"
sleep 2
height=$(as exchange-a 0 status --json | jq -r '.height')
for index in 0 1 2; do
    for _ in $(seq 1 60); do
        [ "$(curl -sf "${cacert[@]}" "$scheme://127.0.0.1:$((8101 + index))/v1/status" | jq -r '.height')" -ge "$height" ] && break
        sleep 0.5
    done
done
roots=$(for index in 0 1 2; do curl -sf "${cacert[@]}" -H "$operator_auth" "$scheme://127.0.0.1:$((8101 + index))/v1/blocks/$height" | jq -r '.block.header.state_root'; done | sort -u | wc -l)
check "distinct state roots at height $height across the three nodes" 1 "$roots"
as clearing-house 0 reserves | sed 's/^/  /'
check "ETH undercovered after the payout" false "$(reserve ETH undercovered)"
wait_for "ETH in the hot wallet within its 5% cap after the refill and the payout" yes within_cap ETH

step "The day's compliance report (Payment Services Act art. 63-11): customer crypto at least 95% cold, customer fiat held in trust"
# cold_share SYMBOL -> yes when the day so far holds at least 95% of the asset's customer holdings cold
cold_share() {
    as clearing-house 0 compliance report --date today --json | jq -r --arg s "$1" \
        '.assets[] | select(.symbol == $s) | if .cold_share_bps != null and .cold_share_bps >= .required_cold_share_bps then "yes" else "no: \(.cold_share_bps) bps" end'
}
wait_for "ETH customer holdings held cold (>= 95%)" yes cold_share ETH
wait_for "WBTC customer holdings held cold (>= 95%)" yes cold_share WBTC
as clearing-house 0 compliance report --date today | sed 's/^/  /'
as clearing-house 0 reconcile

step "Settlement certificates: every fill, fetched from a node (the observer's when one runs) and verified offline against the genesis file alone"
# A trade's certificate is for its parties and operators: the observer reads it with
# its own key, or the clearing house when no observer runs.
certifier="$scheme://127.0.0.1:8101" certifier_key="$data/keys/clearing-house.key"
if curl -sf "${cacert[@]}" --max-time 2 "$scheme://127.0.0.1:8110/v1/status" >/dev/null 2>&1; then
    certifier="$scheme://127.0.0.1:8110" certifier_key="$data/keys/observer.key"
fi
SEISAN_KEY="$certifier_key" SEISAN_BIN="$seisan" CURL_CA_BUNDLE="${SEISAN_CA:-}" scripts/certify-trades.sh "$certifier" "$SEISAN_GENESIS" "$data/certificates"
echo
echo "demo: every step's check passed"
