# attempt 1: bench exit 0, host.other_busy_cores 0.1580076040781714 (idle check before: 0.220)
taskset -c 0 ringcast serve --port 21700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 21701 --publisher-port 21702 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:21700/connection/websocket --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000 --server-pid 21078 --cpu 1 --json --no-progress
