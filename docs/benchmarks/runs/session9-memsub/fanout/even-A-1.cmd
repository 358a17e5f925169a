# attempt 1: bench exit 0, host.other_busy_cores 0.7417855911154491 (idle check before: 0.060)
taskset -c 0 ringcast serve --port 21700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 21701 --publisher-port 21702 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:21700/connection/websocket --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000 --server-pid 19484 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.38718885207009685 (idle check before: 1.024)
taskset -c 0 ringcast serve --port 21703 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 21704 --publisher-port 21705 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:21703/connection/websocket --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000 --server-pid 20019 --cpu 1 --json --no-progress
