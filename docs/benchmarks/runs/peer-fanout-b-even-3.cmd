# attempt 1: bench exit 0, host.other_busy_cores 0.008854186101536684 (idle check before: 0.006)
taskset -c 0 peer-tokio-ws --port 18900 --threads 1
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --rate 100 --pace even -d 10 --server-pid 5416 --cpu 1 --json --no-progress
