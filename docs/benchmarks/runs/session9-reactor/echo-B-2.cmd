# attempt 1: bench exit 0, host.other_busy_cores 1.511305432093517 (idle check before: 2.000)
taskset -c 0 ringcast echo --port 19400 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:19400/ -c 100 -w 16 -s 100 -d 10 --server-pid 991 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 1.4886851507668524 (idle check before: 2.000)
taskset -c 0 ringcast echo --port 19403 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:19403/ -c 100 -w 16 -s 100 -d 10 --server-pid 1981 --cpu 1 --json --no-progress
