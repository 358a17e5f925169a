# attempt 1: bench exit 0, host.other_busy_cores 0.023375865139510586 (idle check before: 0.002)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --max --in-flight 256 -d 10 --server-pid 31744 --cpu 1 --json --no-progress
