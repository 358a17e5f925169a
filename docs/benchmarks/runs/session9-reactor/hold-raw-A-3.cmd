# attempt 1: bench exit 0, host.other_busy_cores 0.35769007358598937 (idle check before: 1.114)
taskset -c 0 ringcast echo --port 19403 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:19403/ --protocol raw -n 15000 -d 10 --conns-per-addr 5000 --server-pid 19955 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.34321454350799624 (idle check before: 1.304)
taskset -c 0 ringcast echo --port 19406 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:19406/ --protocol raw -n 15000 -d 10 --conns-per-addr 5000 --server-pid 20474 --cpu 1 --json --no-progress
