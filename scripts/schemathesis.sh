#!/usr/bin/env bash
# Runs schemathesis (PyPI) against /v1/openapi.json of a live three-node testnet
# (issue 10, part 3). Installs schemathesis into a venv under .tools/ when missing.
# The nodes serve HTTPS with a testnet CA's certificates (`genesis testnet --tls`);
# schemathesis and curl trust that CA. Environment: SEISAN_BIN (default
# target/debug/seisan, built if missing), SCHEMATHESIS_MAX_EXAMPLES (default 30),
# SCHEMATHESIS_MAX_TIME (seconds, default 60), SCHEMATHESIS_TLS=0 for plain HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.tools/schemathesis
version=4.32.5
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$version"
fi
bin=${SEISAN_BIN:-$root/target/debug/seisan}
if [ -z "${SEISAN_BIN:-}" ]; then
  cargo build --quiet -p seisan-node
fi

dir=$(mktemp -d -t seisan-schemathesis.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

. scripts/lib/local-nodes.sh
pick_p2p_base
local_tls=${SCHEMATHESIS_TLS:-1}
start_local_nodes "$bin" "$dir"
url=$scheme://127.0.0.1:${http_ports[0]}
tls_verify=true
curl_tls=()
ca_flag=()
if [ "$scheme" = https ]; then
  tls_verify=$dir/tls/ca.pem
  curl_tls=(--cacert "$dir/tls/ca.pem")
  ca_flag=(--ca "$dir/tls/ca.pem")
fi
for _ in $(seq 1 150); do
  if curl -fsS "${curl_tls[@]}" "$url/v1/status" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
curl -fsS "${curl_tls[@]}" "$url/v1/status" >/dev/null

# Every endpoint but health, status, metrics and the API description answers members
# only: schemathesis calls as the clearing house (which may read every endpoint), with
# a token it issued itself.
token=$("$bin" auth token --key "$dir/keys/clearing-house.key" --genesis "$dir/genesis.json" --node "$url" "${ca_flag[@]}")

# /v1/events is an endless stream: documented, but not something to fuzz. Run from the
# temporary directory so schemathesis keeps its caches out of the work tree.
cd "$dir"
"$venv/bin/schemathesis" run "$url/v1/openapi.json" \
  --url "$url" \
  --header "Authorization: $token" \
  --tls-verify "$tls_verify" \
  --exclude-path /v1/events \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
  --max-time "${SCHEMATHESIS_MAX_TIME:-60}" \
  --workers 2 \
  --suppress-health-check all
echo "schemathesis: passed against $url"
