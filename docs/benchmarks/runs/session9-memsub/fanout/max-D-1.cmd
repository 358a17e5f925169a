# attempt 1: bench exit 0, host.other_busy_cores 0.10929714096448319 (idle check before: 0.006)
taskset -c 0 ringcast serve --port 21700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 21701 --publisher-port 21702 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:21700/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --max --in-flight 32 -d 10 --conns-per-addr 5000 --server-pid 20701 --cpu 1 --json --no-progress
