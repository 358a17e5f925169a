# attempt 1: bench exit 0, host.other_busy_cores 0.015295093622814792 (idle check before: 0.008)
taskset -c 0 peer-tokio-ws --port 18900 --threads 1
taskset -c 1 ringcast-bench storm --url ws://127.0.0.1:18900/connection/websocket -n 10000 --channels 10 -d 10 --warmup 3 --conns-per-addr 5000 --rate 100 --drop client --publisher client --server-pid 6338 --cpu 1 --json --no-progress
