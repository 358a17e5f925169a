# attempt 1: bench exit 0, host.other_busy_cores 0.7973486395927243 (idle check before: 0.010)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000 --server-pid 29807 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.07236677429783463 (idle check before: 0.046)
taskset -c 0 ringcast serve --port 18903 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18904 --publisher-port 18905 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18903/connection/websocket --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000 --server-pid 29942 --cpu 1 --json --no-progress
