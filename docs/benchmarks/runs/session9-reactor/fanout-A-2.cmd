# attempt 1: bench exit 0, host.other_busy_cores 1.589109786456423 (idle check before: 2.000)
taskset -c 0 ringcast serve --port 19403 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19404 --publisher-port 19405 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:19403/connection/websocket --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000 --server-pid 7859 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 1.602441542647596 (idle check before: 2.000)
taskset -c 0 ringcast serve --port 19406 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19407 --publisher-port 19408 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:19406/connection/websocket --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000 --server-pid 9235 --cpu 1 --json --no-progress
