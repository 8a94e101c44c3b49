#!/usr/bin/env python3
# Writes deploy/grafana/seisan.json, the Seisan node dashboard (run from the repository
# root: python3 deploy/grafana/dashboard.py). Edit the panels here, not the JSON.
import json
panels = []
y = 0
pid = 1
def row(title):
    global y, pid
    panels.append({"type": "row", "title": title, "id": pid, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
    pid += 1; y += 1
x = 0
def panel(title, exprs, unit="short", kind="timeseries", w=8, desc=""):
    global x, y, pid
    if x + w > 24:
        x = 0; y += 8
    targets = [{"datasource": {"type": "prometheus", "uid": "${datasource}"}, "expr": e, "legendFormat": l, "refId": chr(65 + i)}
               for i, (e, l) in enumerate(exprs)]
    panels.append({"type": kind, "title": title, "id": pid, "description": desc,
                   "datasource": {"type": "prometheus", "uid": "${datasource}"},
                   "gridPos": {"h": 8, "w": w, "x": x, "y": y},
                   "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                   "options": {}, "targets": targets})
    pid += 1; x += w
def end_row():
    global x, y
    x = 0; y += 8
sel = '{instance=~"$instance"}'
def q(h, metric, label):
    return (f'histogram_quantile({h}, sum by (le, instance) (rate({metric}_bucket{sel}[$__rate_interval])))', f'{label} p{int(h*100)} {{{{instance}}}}')

row("Consensus")
panel("Finalized height", [(f"seisan_height{sel}", "{{instance}}")], kind="stat", w=6)
panel("Blocks finalized per second", [(f"rate(seisan_blocks_finalized_total{sel}[$__rate_interval])", "{{instance}}")], "ops", w=9)
panel("Finalization latency (proposal to commit)", [q(0.5, "seisan_finalization_latency_seconds", "latency"), q(0.99, "seisan_finalization_latency_seconds", "latency")], "s", w=9)
end_row()
panel("View duration", [q(0.5, "seisan_view_duration_seconds", "view"), q(0.99, "seisan_view_duration_seconds", "view")], "s")
panel("Round duration (between heights)", [q(0.5, "seisan_round_duration_seconds", "round"), q(0.99, "seisan_round_duration_seconds", "round")], "s")
panel("View timeouts per second", [(f"rate(seisan_view_timeouts_total{sel}[$__rate_interval])", "{{instance}}")], "ops")
end_row()
panel("Consensus messages per second (votes, proposals, certificates)", [(f"sum by (instance, direction, kind) (rate(seisan_consensus_messages_total{sel}[$__rate_interval]))", "{{instance}} {{direction}} {{kind}}")], "ops")
panel("Validators connected, validators, quorum", [(f"seisan_peers_connected{sel} + 1", "connected incl. self {{instance}}"), (f"seisan_validators{sel}", "validators {{instance}}"), (f"seisan_quorum{sel}", "quorum {{instance}}")])
panel("Proposals refused and evidence seen", [(f"increase(seisan_proposals_rejected_total{sel}[$__rate_interval])", "proposals refused {{instance}}"), (f"sum by (instance, kind) (increase(seisan_evidence_total{sel}[$__rate_interval]))", "evidence {{kind}} {{instance}}")])
end_row()
panel("Syncing and blocks behind", [(f"seisan_syncing{sel}", "syncing {{instance}}"), (f"seisan_behind_blocks{sel}", "behind {{instance}}"), (f"rate(seisan_blocks_synced_total{sel}[$__rate_interval])", "synced blocks/s {{instance}}")])
panel("Epoch and view", [(f"seisan_epoch{sel}", "epoch {{instance}}"), (f"seisan_view{sel}", "view {{instance}}")])
end_row()
row("Execution and admission")
panel("Commit time per block", [q(0.5, "seisan_commit_seconds", "commit"), q(0.99, "seisan_commit_seconds", "commit")], "s")
panel("Block size", [q(0.5, "seisan_block_size_bytes", "size"), q(0.99, "seisan_block_size_bytes", "size")], "bytes")
panel("Transactions per block", [q(0.5, "seisan_block_transactions", "txs"), q(0.99, "seisan_block_transactions", "txs")])
end_row()
panel("Transactions per second", [(f"rate(seisan_transactions_admitted_total{sel}[$__rate_interval])", "admitted {{instance}}"), (f"rate(seisan_transactions_finalized_total{sel}[$__rate_interval])", "finalized {{instance}}")], "ops")
panel("Refused transactions by reason", [(f"sum by (instance, reason) (rate(seisan_transactions_rejected_total{sel}[$__rate_interval]))", "{{reason}} {{instance}}")], "ops")
panel("Mempool", [(f"seisan_mempool_depth{sel}", "transactions {{instance}}"), (f"seisan_mempool_bytes{sel}", "bytes {{instance}}")])
end_row()
panel("Store size on disk", [(f"seisan_store_size_bytes{sel}", "{{instance}}")], "bytes")
end_row()
row("Settlement, bank and custody")
panel("Bank mirrors of settlements", [(f"seisan_mirror_pending{sel}", "pending {{instance}}"), (f"seisan_mirror_stalled{sel}", "stalled {{instance}}")])
panel("Bank attestation backlog", [(f"seisan_bank_attestations_pending{sel}", "{{kind}} {{instance}}"), (f"seisan_bank_watcher_error{sel}", "watcher error {{instance}}")])
panel("Open top-ups", [(f"seisan_open_top_ups{sel}", "{{instance}}")])
end_row()
panel("Custody: reserves under 100%", [(f"seisan_custody_undercovered{sel}", "undercovered {{instance}}")], kind="stat")
panel("Custody watcher: public-chain block scanned", [(f"seisan_custody_scanned_block{sel}", "{{instance}}"), (f"seisan_custody_watcher_error{sel}", "watcher error {{instance}}")])
panel("Reserves coverage per asset (1 = 100%)", [(f"seisan_reserves_coverage_ratio{sel}", "{{asset}} {{instance}}")], "percentunit")
panel("Hot wallet share and cap per asset", [(f"seisan_reserves_hot_share_ratio{sel}", "share {{asset}} {{instance}}"), (f"seisan_reserves_hot_cap_ratio{sel}", "cap {{asset}} {{instance}}")], "percentunit")
panel("Custody watcher lag behind the chain head (blocks)", [(f"seisan_custody_chain_head_block{sel} - seisan_custody_scanned_block{sel}", "{{instance}}")])
end_row()
panel("Withdrawals waiting for the hot wallet", [(f"seisan_custody_waiting_for_hot_wallet{sel}", "{{instance}}")])
end_row()
row("Process")
psel = '{job="seisan", instance=~"$instance"}'
panel("CPU", [(f"rate(process_cpu_seconds_total{psel}[$__rate_interval])", "{{instance}}")], "percentunit", w=6)
panel("Resident memory", [(f"process_resident_memory_bytes{psel}", "{{instance}}")], "bytes", w=6)
panel("Open file descriptors", [(f"process_open_fds{psel}", "open {{instance}}"), (f"process_max_fds{psel}", "limit {{instance}}")], w=6)
panel("Uptime", [(f"time() - process_start_time_seconds{psel}", "{{instance}}")], "s", kind="stat", w=6)

dash = {
  "title": "Seisan node",
  "uid": "seisan-node",
  "description": "A Seisan consortium member's node: consensus, execution, admission, settlement, bank, custody and the process (metrics of node/src/node/metrics.rs).",
  "tags": ["seisan"],
  "timezone": "utc",
  "schemaVersion": 39,
  "version": 1,
  "editable": True,
  "refresh": "30s",
  "time": {"from": "now-6h", "to": "now"},
  "templating": {"list": [
    {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus", "current": {}, "hide": 0},
    {"name": "instance", "label": "Node", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
     "query": {"query": "label_values(seisan_height, instance)", "refId": "instance"}, "definition": "label_values(seisan_height, instance)",
     "includeAll": True, "multi": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "refresh": 2, "hide": 0}
  ]},
  "annotations": {"list": []},
  "panels": panels,
}
json.dump(dash, open("deploy/grafana/seisan.json", "w"), indent=2)
open("deploy/grafana/seisan.json", "a").write("\n")
print(len(panels), "panels")
