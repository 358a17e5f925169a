# attempt 1: bench exit 0, host.other_busy_cores 0.3081782491005717 (idle check before: 0.270)
taskset -c 0 peer-tokio-ws --port 18900 --threads 1
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 10000 --channels 1000 --publishers 1 --rate 10000 --pace even --size 100 -d 10 --conns-per-addr 5000 --server-pid 18879 --cpu 1 --json --no-progress
