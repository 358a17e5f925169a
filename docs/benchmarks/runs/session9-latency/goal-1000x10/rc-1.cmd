# attempt 1: bench exit 0, host.other_busy_cores 1.2987898175762496 (idle check before: 1.586)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 10000 --channels 1000 --publishers 1 --rate 10000 --pace even --size 100 -d 10 --conns-per-addr 5000 --metrics-url http://127.0.0.1:18901/metrics --server-pid 13863 --cpu 1 --json --no-progress
