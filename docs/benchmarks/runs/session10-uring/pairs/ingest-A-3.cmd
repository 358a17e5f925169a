taskset -c 0 ringcast serve --port 19760 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19761 --publisher-port 19762 --api-key bench-key --data-path epoll
taskset -c 1 ringcast-bench publish --url ws://127.0.0.1:19760/connection/websocket --via tcp -w 1024 --size 100 --publisher-addr 127.0.0.1:19762 --api-key bench-key -d 10 --server-pid 9247 --cpu 1 --json --no-progress
