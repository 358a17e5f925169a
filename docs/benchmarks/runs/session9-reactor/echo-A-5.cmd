# attempt 1: bench exit 0, host.other_busy_cores 1.1584538098250614 (idle check before: 0.963)
taskset -c 0 ringcast echo --port 19403 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:19403/ -c 100 -w 16 -s 100 -d 10 --server-pid 7482 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 1.2958134499838363 (idle check before: 1.976)
taskset -c 0 ringcast echo --port 19406 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:19406/ -c 100 -w 16 -s 100 -d 10 --server-pid 8714 --cpu 1 --json --no-progress
