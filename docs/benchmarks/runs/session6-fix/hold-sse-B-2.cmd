# attempt 1: bench exit 0, host.other_busy_cores 0.014534195716961105 (idle check before: 0.002)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:18900/connection/websocket --transport sse -n 15000 -d 10 --conns-per-addr 5000 --server-pid 31358 --cpu 1 --json --no-progress
