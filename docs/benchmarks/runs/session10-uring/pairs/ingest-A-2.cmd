taskset -c 0 ringcast serve --port 19740 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19741 --publisher-port 19742 --api-key bench-key --data-path epoll
taskset -c 1 ringcast-bench publish --url ws://127.0.0.1:19740/connection/websocket --via tcp -w 1024 --size 100 --publisher-addr 127.0.0.1:19742 --api-key bench-key -d 10 --server-pid 8871 --cpu 1 --json --no-progress
