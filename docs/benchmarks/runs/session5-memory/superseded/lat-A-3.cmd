# attempt 1: bench exit 0, host.other_busy_cores 0.10766070585875909 (idle check before: 0.006)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 25513 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.25427517442080244 (idle check before: 0.014)
taskset -c 0 ringcast serve --port 18903 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18904 --publisher-port 18905 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18903/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 25541 --cpu 1 --json --no-progress
# attempt 3: bench exit 0, host.other_busy_cores 0.8525249667124697 (idle check before: 0.022)
taskset -c 0 ringcast serve --port 18906 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18907 --publisher-port 18908 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18906/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 25587 --cpu 1 --json --no-progress
# attempt 4: bench exit 0, host.other_busy_cores 0.846836096196417 (idle check before: 0.024)
taskset -c 0 ringcast serve --port 18909 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18910 --publisher-port 18911 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18909/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 25616 --cpu 1 --json --no-progress
