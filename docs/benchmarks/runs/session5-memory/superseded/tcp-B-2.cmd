# attempt 1: bench exit 0, host.other_busy_cores 0.28240533245168953 (idle check before: 0.006)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 ringcast-bench publish --size 100 -d 10 --url ws://127.0.0.1:18900/connection/websocket --via tcp -w 1024 --publisher-addr 127.0.0.1:18902 --api-key bench-key --server-pid 8513 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 1.0312847556361515 (idle check before: 0.028)
taskset -c 0 ringcast serve --port 18903 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18904 --publisher-port 18905 --api-key bench-key
taskset -c 1 ringcast-bench publish --size 100 -d 10 --url ws://127.0.0.1:18903/connection/websocket --via tcp -w 1024 --publisher-addr 127.0.0.1:18905 --api-key bench-key --server-pid 8815 --cpu 1 --json --no-progress
# attempt 3: bench exit 0, host.other_busy_cores 0.3934507097078292 (idle check before: 0.008)
taskset -c 0 ringcast serve --port 18906 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18907 --publisher-port 18908 --api-key bench-key
taskset -c 1 ringcast-bench publish --size 100 -d 10 --url ws://127.0.0.1:18906/connection/websocket --via tcp -w 1024 --publisher-addr 127.0.0.1:18908 --api-key bench-key --server-pid 9066 --cpu 1 --json --no-progress
# attempt 4: bench exit 0, host.other_busy_cores 0.7602596883386505 (idle check before: 0.012)
taskset -c 0 ringcast serve --port 18909 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18910 --publisher-port 18911 --api-key bench-key
taskset -c 1 ringcast-bench publish --size 100 -d 10 --url ws://127.0.0.1:18909/connection/websocket --via tcp -w 1024 --publisher-addr 127.0.0.1:18911 --api-key bench-key --server-pid 15471 --cpu 1 --json --no-progress
