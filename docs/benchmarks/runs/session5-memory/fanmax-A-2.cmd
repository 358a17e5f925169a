# attempt 1: bench exit 0, host.other_busy_cores 0.4716079646489642 (idle check before: 0.010)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --max --in-flight 256 -d 10 --server-pid 3642 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.9935915174955562 (idle check before: 0.012)
taskset -c 0 ringcast serve --port 18903 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18904 --publisher-port 18905 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18903/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --max --in-flight 256 -d 10 --server-pid 4135 --cpu 1 --json --no-progress
# attempt 3: bench exit 0, host.other_busy_cores 1.1677798068451792 (idle check before: 0.080)
taskset -c 0 ringcast serve --port 18906 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18907 --publisher-port 18908 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18906/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --max --in-flight 256 -d 10 --server-pid 4722 --cpu 1 --json --no-progress
# attempt 4: bench exit 0, host.other_busy_cores 0.08372142280652467 (idle check before: 0.066)
taskset -c 0 ringcast serve --port 18909 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18910 --publisher-port 18911 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18909/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --max --in-flight 256 -d 10 --server-pid 8305 --cpu 1 --json --no-progress
