taskset -c 0 ringcast echo --port 24620 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:24620/ -c 100 -w 16 -s 100 -d 10 --server-pid 20519 --cpu 1 --json --no-progress
