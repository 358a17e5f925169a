# attempt 1: bench exit 0, host.other_busy_cores 1.3734844529703307 (idle check before: 1.910)
taskset -c 0 ringcast echo --port 19403 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:19403/ -c 100 -w 16 -s 100 -d 10 --server-pid 4779 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.5387542518423534 (idle check before: 0.768)
taskset -c 0 ringcast echo --port 19406 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:19406/ -c 100 -w 16 -s 100 -d 10 --server-pid 6638 --cpu 1 --json --no-progress
