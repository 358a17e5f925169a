# attempt 1: bench exit 0, host.other_busy_cores 0.38138658471286174 (idle check before: 0.064)
taskset -c 0 peer-tokio-ws --port 18900 --threads 1
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10 --server-pid 19163 --cpu 1 --json --no-progress
