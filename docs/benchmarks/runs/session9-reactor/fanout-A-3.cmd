# attempt 1: bench exit 0, host.other_busy_cores 1.11449627394009 (idle check before: 0.189)
taskset -c 0 ringcast serve --port 19403 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19404 --publisher-port 19405 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:19403/connection/websocket --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000 --server-pid 10378 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 1.538052230482089 (idle check before: 1.998)
taskset -c 0 ringcast serve --port 19406 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19407 --publisher-port 19408 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:19406/connection/websocket --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000 --server-pid 10963 --cpu 1 --json --no-progress
