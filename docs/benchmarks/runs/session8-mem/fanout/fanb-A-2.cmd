# attempt 1: bench exit 0, host.other_busy_cores 0.7893572226372916 (idle check before: 0.012)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --rate 100 --pace even -d 10 --conns-per-addr 5000 --server-pid 29566 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 1.4310614193100921 (idle check before: 1.918)
taskset -c 0 ringcast serve --port 18903 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18904 --publisher-port 18905 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18903/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --rate 100 --pace even -d 10 --conns-per-addr 5000 --server-pid 29668 --cpu 1 --json --no-progress
