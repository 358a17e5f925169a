taskset -c 0 ringcast serve --port 25600 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 25601 --publisher-port 25602 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:25600/connection/websocket --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000 --server-pid 31407 --cpu 1 --json --no-progress
