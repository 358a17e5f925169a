# attempt 1: bench exit 0, host.other_busy_cores 0.00898987066585882 (idle check before: 0.005)
taskset -c 0 peer-tokio-ws --port 18900 --threads 1
taskset -c 1 ringcast-bench echo --url ws://127.0.0.1:18900/echo -c 100 -w 16 -s 100 -d 10 --server-pid 13073 --cpu 1 --json --no-progress
