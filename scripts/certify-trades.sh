#!/usr/bin/env bash
# Settlement certificates for every fill on a running Seisan chain: fetches each trade's
# certificate from a node (the observer's when one runs) and verifies it offline against
# the genesis file alone (`seisan verify`, no node), then checks that copies with a
# changed price, quantity or signature are refused naming the reason. Exits non-zero at
# the first failure.
#
#   SEISAN_KEY=KEY_FILE scripts/certify-trades.sh NODE_URL GENESIS OUT_DIR
#
# scripts/demo.sh runs it at the end of the patent's scenario. SEISAN_BIN picks the build.
set -euo pipefail
cd "$(dirname "$0")/.."
node=${1:?usage: scripts/certify-trades.sh NODE_URL GENESIS OUT_DIR}
genesis=${2:?usage: scripts/certify-trades.sh NODE_URL GENESIS OUT_DIR}
out=${3:?usage: scripts/certify-trades.sh NODE_URL GENESIS OUT_DIR}
seisan="${SEISAN_BIN:-$(pwd)/target/release/seisan}"
mkdir -p "$out"
# Verification needs no node: point the client at an address where none listens.
offline() { SEISAN_NODE="http://127.0.0.1:1" SEISAN_GENESIS="$genesis" "$seisan" "$@"; }

# The API answers members only: reads go as the member of SEISAN_KEY (a party to the
# trades, the clearing house or an observer).
: "${SEISAN_KEY:?set SEISAN_KEY to the key file of the member that reads the certificates}"
auth="authorization: $(SEISAN_GENESIS="$genesis" "$seisan" auth token --ttl-minutes 30)"
ids=$(curl -sf -H "$auth" "$node/v1/trades?limit=1000" | jq -r '.trades[].id')
count=0
for id in $ids; do
    SEISAN_NODE="$node" SEISAN_GENESIS="$genesis" "$seisan" certificate trade "$id" --out "$out/trade-$id.json" >/dev/null
    if ! summary=$(offline verify "$out/trade-$id.json"); then
        echo "CHECK FAILED: the certificate of trade $id does not verify" >&2
        exit 1
    fi
    echo "$summary" | sed -n '1,2p' | sed 's/^/  /'
    count=$((count + 1))
done
if [ "$count" = 0 ]; then
    echo "CHECK FAILED: the chain at $node has no trades to certify" >&2
    exit 1
fi
echo "  ok: $count of $count trade certificates verify offline against $genesis"
first=$(head -n1 <<<"$ids")
# refused WHAT JQ_FILTER EXPECTED_REASON -> a copy of the first certificate changed by
# the filter must be refused, naming the expected reason.
refused() {
    local what=$1 filter=$2 reason=$3
    jq "$filter" "$out/trade-$first.json" >"$out/tampered.json"
    if offline verify "$out/tampered.json" >/dev/null 2>"$out/tampered.err"; then
        echo "CHECK FAILED: a certificate of trade $first with $what verified" >&2
        exit 1
    fi
    if ! grep -q "$reason" "$out/tampered.err"; then
        echo "CHECK FAILED: $what was refused for another reason: $(cat "$out/tampered.err")" >&2
        exit 1
    fi
    echo "  ok: a copy with $what is refused: $(cat "$out/tampered.err")"
}
refused "a changed price" '.fill.price = "1"' "fill field price"
refused "a changed quantity" '.fill.quantity = "1"' "fill field quantity"
# The first hex digit of the first validator's signature, flipped.
refused "a changed signature" \
    '.certificate.signatures[0][1] |= ((if startswith("0") then "1" else "0" end) + .[1:])' \
    "the quorum certificate does not verify"
