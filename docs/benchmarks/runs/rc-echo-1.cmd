# attempt 1: bench exit 0, host.other_busy_cores 0.010982921363972446 (idle check before: 0.015)
taskset -c 0 ringcast echo --port 18900 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:18900/ -c 100 -w 16 -s 100 -d 10 --server-pid 13042 --cpu 1 --json --no-progress
