# attempt 1: bench exit 0, host.other_busy_cores 1.268154361299934 (idle check before: 1.064)
taskset -c 0 ringcast echo --port 19403 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:19403/ -c 100 -w 16 -s 100 -d 10 --server-pid 10814 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.49573330510414787 (idle check before: 1.020)
taskset -c 0 ringcast echo --port 19406 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:19406/ -c 100 -w 16 -s 100 -d 10 --server-pid 11486 --cpu 1 --json --no-progress
