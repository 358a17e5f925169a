taskset -c 0 ringcast serve --port 19770 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19771 --publisher-port 19772 --api-key bench-key --data-path uring
taskset -c 1 ringcast-bench publish --url ws://127.0.0.1:19770/connection/websocket --via tcp -w 1024 --size 100 --publisher-addr 127.0.0.1:19772 --api-key bench-key -d 10 --server-pid 9258 --cpu 1 --json --no-progress
