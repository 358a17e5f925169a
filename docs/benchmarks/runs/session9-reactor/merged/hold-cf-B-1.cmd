# attempt 1: bench exit 0, host.other_busy_cores 1.008500853571869 (idle check before: 1.978)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:18900/connection/websocket -n 15000 -d 10 --conns-per-addr 5000 --server-pid 25085 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 1.0008824248264738 (idle check before: 1.007)
taskset -c 0 ringcast serve --port 18903 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18904 --publisher-port 18905 --api-key bench-key
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:18903/connection/websocket -n 15000 -d 10 --conns-per-addr 5000 --server-pid 25292 --cpu 1 --json --no-progress
