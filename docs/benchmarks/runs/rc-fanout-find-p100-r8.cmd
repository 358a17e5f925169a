# attempt 1: bench exit 0, host.other_busy_cores 0.5971935418664698 (idle check before: 0.005)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --pace even -d 10 --rate 8 --server-pid 19337 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.9979559017109196 (idle check before: 0.045)
taskset -c 0 ringcast serve --port 18903 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18904 --publisher-port 18905 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18903/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --pace even -d 10 --rate 8 --server-pid 20912 --cpu 1 --json --no-progress
# attempt 3: bench exit 0, host.other_busy_cores 0.15268397651493737 (idle check before: 0.045)
taskset -c 0 ringcast serve --port 18906 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18907 --publisher-port 18908 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18906/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --pace even -d 10 --rate 8 --server-pid 21925 --cpu 1 --json --no-progress
