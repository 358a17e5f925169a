# attempt 1: bench exit 0, host.other_busy_cores 0.01248061512686568 (idle check before: 0.010)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:18900/connection/websocket --transport websocket -n 15000 -d 10 --conns-per-addr 5000 --server-pid 31426 --cpu 1 --json --no-progress
