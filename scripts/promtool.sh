#!/usr/bin/env bash
# Checks the shipped monitoring and deployment files: with promtool (Debian package `prometheus`,
# installed when missing): the alert rules (`check rules`) and their unit tests
# (`test rules`), the Prometheus configuration, and a live node's /metrics
# (`check metrics`) on a three-node testnet that has finalized blocks. Then checks
# that every seisan_* and process_* metric the alerts and the Grafana dashboard use
# is exported by that node, so neither refers to a metric that does not exist.
# Environment: SEISAN_BIN (default target/debug/seisan, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v promtool >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml
promtool check config deploy/prometheus/prometheus.yml
# The compose project's Prometheus config, with the alert rules beside it as mounted.
compose_check=$(mktemp -d -t seisan-compose-prometheus.XXXXXX)
cp deploy/compose/prometheus.yml deploy/prometheus/alerts.yml "$compose_check/"
promtool check config "$compose_check/prometheus.yml"
rm -rf "$compose_check"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' deploy/grafana/seisan.json

. scripts/lib/local-nodes.sh
use_binary
make_temp_dir promtool
pick_p2p_base
# The first node reads the shipped deploy/seisan-node.toml (so its keys stay valid);
# flags override its paths and addresses for this temporary testnet.
start_local_nodes "$bin" "$dir" --config deploy/seisan-node.toml --listen "/ip4/127.0.0.1/tcp/$p2p_base"
url=http://127.0.0.1:${http_ports[0]}
# Wait (at most 60 s) until the node has finalized a few blocks, so the histograms and
# the consensus message counters hold samples.
height=0
for _ in $(seq 1 300); do
  height=$(curl -fsS "$url/v1/status" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])' 2>/dev/null || echo 0)
  if [ "$height" -ge 3 ]; then break; fi
  sleep 0.2
done
if [ "$height" -lt 3 ]; then
  echo "promtool: the testnet did not finalize 3 blocks in 60 s" >&2
  tail -20 "$dir/clearing-house.log" >&2
  exit 1
fi
# A refused transaction, so the by-reason family has a sample (sent as the clearing
# house: the API answers members only).
token=$("$bin" auth token --key "$dir/keys/clearing-house.key" --genesis "$dir/genesis.json" --node "$url")
curl -sS -o /dev/null -X POST -H "Authorization: $token" -H 'content-type: application/json' -d '{"transactions":[]}' "$url/v1/transactions" || true
curl -fsS "$url/metrics" >"$dir/metrics.txt"
promtool check metrics <"$dir/metrics.txt"
echo "promtool check metrics: $(grep -c '^# TYPE' "$dir/metrics.txt") metric families from a live node at height $height pass"

# The systemd units, with ExecStart pointed at this build (systemd-analyze, where the
# machine has systemd's tools).
if command -v systemd-analyze >/dev/null 2>&1; then
  for unit in deploy/systemd/*.service; do
    sed "s#/usr/local/bin/seisan#$bin#" "$unit" >"$dir/$(basename "$unit")"
  done
  # It exits 0 on unknown keys and bad values, only naming them: any word fails.
  complaints=$(systemd-analyze verify "$dir"/*.service 2>&1 || true)
  if [ -n "$complaints" ]; then
    echo "systemd-analyze verify: $complaints" >&2
    exit 1
  fi
  echo "systemd-analyze verify: deploy/systemd units pass"
fi

# Every metric the alerts and the dashboard name is exported (the families' TYPE
# names; a counter's samples add _total, a histogram's _bucket, _sum and _count).
python3 - "$dir/metrics.txt" deploy/prometheus/alerts.yml deploy/grafana/seisan.json <<'PY'
import re, sys
exported = set(re.findall(r"^# TYPE (\S+) ", open(sys.argv[1]).read(), re.M))
missing = []
for path in sys.argv[2:]:
    for name in sorted(set(re.findall(r"\b((?:seisan|process)_[a-z_]+)", open(path).read()))):
        base = re.sub(r"_(total|bucket|sum|count)$", "", name)
        if name not in exported and base not in exported:
            missing.append(f"{path}: {name}")
if missing:
    sys.exit("metrics used but not exported by the node:\n  " + "\n  ".join(missing))
print(f"every metric the alerts and the dashboard use is among the node's {len(exported)} families")
PY
