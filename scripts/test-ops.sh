#!/usr/bin/env bash
# scripts/test-ops.sh -- the ops files, checked by real tools (scripts/test.sh's
# `ops` stage):
#   1. ops/prometheus/ringcast-alerts.yml: `promtool check rules`, and its unit
#      tests `promtool test rules ringcast-alerts.test.yml`;
#   2. ops/grafana/ringcast.json: valid JSON, every panel query valid PromQL
#      (each is checked by promtool as a recording rule);
#   3. every ringcast_* metric the rules and the dashboard use is one a live
#      ringcast exports: a node with the Redis broker (so the broker metrics
#      are there) is started on free loopback ports with its own redis-server,
#      and its /metrics must also pass `promtool check metrics`.
# Needs promtool (Debian: prometheus) and redis-server; RINGCAST_BIN
# (default target/debug/ringcast).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${RINGCAST_BIN:-$ROOT/target/debug/ringcast}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "== alert rules"
(cd ops/prometheus && promtool check rules ringcast-alerts.yml && promtool test rules ringcast-alerts.test.yml)

echo "== dashboard queries"
python3 - ops/grafana/ringcast.json "$WORK/dashboard-rules.yml" <<'EOF'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
assert dash.get("uid") and dash.get("title") and exprs, "dashboard without uid, title or queries"
ids = [p["id"] for p in dash["panels"]]
assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
with open(sys.argv[2], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        f.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(e)}\n")
print(f"{len(exprs)} queries in {len(dash['panels'])} panels")
EOF
promtool check rules "$WORK/dashboard-rules.yml"

echo "== metrics a live node exports"
RP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --logfile "$WORK/redis.log" --dir "$WORK" &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.1; done
API=$(free_port)
"$BIN" serve --insecure --api-insecure --address 127.0.0.1 --port 0 --api-port "$API" --publisher-port 0 \
  --shards 2 --no-pin --broker redis --redis-address "redis://127.0.0.1:$RP" --redis-prefix ops-test \
  >"$WORK/ringcast.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$API/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS -X POST "http://127.0.0.1:$API/api/publish" -d '{"channel":"ops","data":{}}' >/dev/null
curl -fsS "http://127.0.0.1:$API/metrics" >"$WORK/metrics.txt"
promtool check metrics <"$WORK/metrics.txt"
python3 - "$WORK/metrics.txt" ops/prometheus/ringcast-alerts.yml ops/grafana/ringcast.json <<'EOF'
import re, sys
exported = set(re.findall(r"^# TYPE (\S+) ", open(sys.argv[1]).read(), re.M))
used = set()
for path in sys.argv[2:]:
    used |= set(re.findall(r"\bringcast_[a-z0-9_]+", open(path).read()))
def base(name):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in exported:
            return name[: -len(suffix)]
    return name
missing = sorted(n for n in used if base(n) not in exported)
print(f"{len(used)} metric names used, {len(exported)} exported")
if missing:
    sys.exit(f"used but not exported: {missing}")
EOF
echo "ops: ok"
