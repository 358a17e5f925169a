# attempt 1: bench exit 0, host.other_busy_cores 0.02944606252687454 (idle check before: 0.015)
taskset -c 0 peer-tokio-ws --port 18900 --threads 1
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:18900/echo --protocol raw -n 15000 -d 10 --conns-per-addr 5000 --server-pid 12685 --cpu 1 --json --no-progress
