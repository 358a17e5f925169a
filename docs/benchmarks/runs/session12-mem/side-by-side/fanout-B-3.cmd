taskset -c 0 ringcast serve --port 24710 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 24711 --publisher-port 24712 --api-key bench-key
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:24710/connection/websocket --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000 --server-pid 20604 --cpu 1 --json --no-progress
