taskset -c 0 ringcast serve --port 19750 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19751 --publisher-port 19752 --api-key bench-key --data-path uring
taskset -c 1 ringcast-bench publish --url ws://127.0.0.1:19750/connection/websocket --via tcp -w 1024 --size 100 --publisher-addr 127.0.0.1:19752 --api-key bench-key -d 10 --server-pid 8880 --cpu 1 --json --no-progress
