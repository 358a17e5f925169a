# attempt 1: bench exit 0, host.other_busy_cores 0.011692435369439194 (idle check before: 0.006)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key --config docs/benchmarks/runs/session8-delta/delta/on.toml
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 1000 --channels 1 --publishers 1 --size 1000 --rate 100 --pace even -d 10 --conns-per-addr 5000 --delta --server-pid 32211 --cpu 1 --json --no-progress
