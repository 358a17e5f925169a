# attempt 1: bench exit 0, host.other_busy_cores 0.3684301206957438 (idle check before: 0.024)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 15862 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.523048768479936 (idle check before: 0.040)
taskset -c 0 ringcast serve --port 18903 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18904 --publisher-port 18905 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18903/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 16778 --cpu 1 --json --no-progress
# attempt 3: bench exit 0, host.other_busy_cores 0.24608208374347146 (idle check before: 0.004)
taskset -c 0 ringcast serve --port 18906 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18907 --publisher-port 18908 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18906/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 16953 --cpu 1 --json --no-progress
# attempt 4: bench exit 0, host.other_busy_cores 0.42674299686054334 (idle check before: 0.032)
taskset -c 0 ringcast serve --port 18909 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18910 --publisher-port 18911 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18909/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 20652 --cpu 1 --json --no-progress
