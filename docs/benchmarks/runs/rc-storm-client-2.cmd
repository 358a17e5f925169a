# attempt 1: bench exit 0, host.other_busy_cores 0.02514314137608529 (idle check before: 0.006)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key --config docs/benchmarks/runs/storm.toml
taskset -c 1 ringcast-bench storm --url ws://127.0.0.1:18900/connection/websocket -n 10000 --channels 10 -d 10 --warmup 3 --conns-per-addr 5000 --rate 100 --drop client --publisher client --server-pid 6203 --cpu 1 --json --no-progress
