# attempt 1: bench exit 0, host.other_busy_cores 0.8466812652059131 (idle check before: 0.048)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 20862 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.1129701389613535 (idle check before: 0.072)
taskset -c 0 ringcast serve --port 18903 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18904 --publisher-port 18905 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18903/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 23318 --cpu 1 --json --no-progress
# attempt 3: bench exit 0, host.other_busy_cores 0 (idle check before: 0.010)
taskset -c 0 ringcast serve --port 18906 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18907 --publisher-port 18908 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18906/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 24437 --cpu 1 --json --no-progress
