# attempt 1: bench exit 0, host.other_busy_cores 0.18359420029372897 (idle check before: 0.098)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --metrics-url http://127.0.0.1:18901/metrics --server-pid 19091 --cpu 1 --json --no-progress
