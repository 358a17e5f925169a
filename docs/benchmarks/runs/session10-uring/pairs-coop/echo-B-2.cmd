taskset -c 0 ringcast echo --port 19630 --address 127.0.0.1 --shards 1 --no-pin --data-path uring
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:19630/ -c 100 -w 16 -s 100 -d 10 --server-pid 30279 --cpu 1 --json --no-progress
