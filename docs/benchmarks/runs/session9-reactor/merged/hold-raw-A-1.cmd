# attempt 1: bench exit 0, host.other_busy_cores 1.956186527028768 (idle check before: 1.986)
taskset -c 0 ringcast echo --port 18900 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:18900/ --protocol raw -n 15000 -d 10 --conns-per-addr 5000 --server-pid 22802 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 1.9008740097994878 (idle check before: 2.000)
taskset -c 0 ringcast echo --port 18903 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:18903/ --protocol raw -n 15000 -d 10 --conns-per-addr 5000 --server-pid 24136 --cpu 1 --json --no-progress
