# attempt 1: bench exit 0, host.other_busy_cores 1.0073637115540983 (idle check before: 1.011)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:18900/connection/websocket -n 15000 -d 10 --conns-per-addr 5000 --server-pid 24858 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 1.0105547592037687 (idle check before: 1.012)
taskset -c 0 ringcast serve --port 18903 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18904 --publisher-port 18905 --api-key bench-key
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:18903/connection/websocket -n 15000 -d 10 --conns-per-addr 5000 --server-pid 24899 --cpu 1 --json --no-progress
