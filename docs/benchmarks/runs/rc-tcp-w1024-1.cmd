# attempt 1: bench exit 0, host.other_busy_cores 0.008170533023014294 (idle check before: 0.005)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --publisher tcp --publisher-addr 127.0.0.1:18902 --api-key bench-key --subscribers 1 --channels 1 --publishers 1 --size 100 --max --in-flight 1024 -d 10 --server-pid 16053 --cpu 1 --json --no-progress
