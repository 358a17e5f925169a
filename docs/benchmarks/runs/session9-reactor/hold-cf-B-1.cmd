# attempt 1: bench exit 0, host.other_busy_cores 0.024958143961579925 (idle check before: 1.341)
taskset -c 0 ringcast serve --port 19403 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19404 --publisher-port 19405 --api-key bench-key
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:19403/connection/websocket -n 15000 -d 10 --conns-per-addr 5000 --server-pid 21714 --cpu 1 --json --no-progress
