# attempt 1: bench exit 0, host.other_busy_cores 0 (idle check before: 0.008)
taskset -c 0 peer-tokio-ws --port 18900 --threads 1
taskset -c 1 ringcast-bench publish --size 100 -d 10 --url ws://127.0.0.1:18900/connection/websocket --via client -w 256 --server-pid 32375 --cpu 1 --json --no-progress
