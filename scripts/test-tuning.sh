#!/usr/bin/env bash
# scripts/test-tuning.sh -- tests for scripts/tune.sh and the tuning/ files.
#
# Runs tune.sh inside a throwaway network namespace (ip netns add
# ringcast-tune-test-$$, removed on exit).  Per-namespace keys are the real
# kernel's, in that namespace; host-global keys (fs.file-max, fs.nr_open,
# tcp_mem, ...) are redirected with RINGCAST_TUNE_GLOBAL_ROOT to a fake tree,
# because a global key written from inside a namespace changes the host.
# The host's values are snapshotted before and compared after.
#
# Needs root and iproute2.  Last line: "tuning: N passed, M failed".

set -u -o pipefail
export LC_ALL=C

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname -- "$HERE")
PASS=0
FAIL=0

pass() { PASS=$((PASS + 1)); printf 'ok    %s\n' "$1"; }
fail() {
	FAIL=$((FAIL + 1)); printf 'FAIL  %s\n' "$1"
	if [ $# -ge 2 ]; then printf '%s\n' "$2" | head -n 40 | sed 's/^/      | /'; fi
}
skip() { printf 'skip  %s\n' "$1"; }
finish() {
	echo "tuning: $PASS passed, $FAIL failed"
	if [ "$FAIL" -eq 0 ]; then exit 0; else exit 1; fi
}

# check NAME CONDITION-STATUS [DETAIL]
check() { if [ "$2" -eq 0 ]; then pass "$1"; else fail "$1" "${3:-}"; fi; }
has() { grep -Eq -- "$2" <<<"$1"; }

if [ "$EUID" -ne 0 ]; then fail "must run as root (it creates a network namespace)"; finish; fi
for tool in ip awk setpriv; do
	command -v "$tool" >/dev/null 2>&1 || { fail "needs $tool"; finish; }
done

NS=ringcast-tune-test-$$
NS2=ringcast-tune-test2-$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ringcast-tune-test.XXXXXX") || { fail "mktemp"; finish; }
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	ip netns del "$NS" 2>/dev/null
	ip netns del "$NS2" 2>/dev/null
	rm -rf -- "$WORK"
}
trap cleanup EXIT

# Remove namespaces left by earlier runs that were killed before their trap.
for old in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^ringcast-tune-test2?-[0-9]+$'); do
	pid=${old##*-}
	kill -0 "$pid" 2>/dev/null || ip netns del "$old" 2>/dev/null
done

ip netns add "$NS" || { fail "ip netns add $NS"; finish; }
ip netns add "$NS2" || { fail "ip netns add $NS2"; finish; }

# tune.sh where the unprivileged user can read it
chmod 0755 "$WORK"
install -m 0755 "$REPO/scripts/tune.sh" "$WORK/tune.sh"
TUNE=$WORK/tune.sh
G=$WORK/global      # fake host-global tree
S=$WORK/state       # state dir
E=$WORK/etc         # etc dir for --persist

NETNS_KEYS=(net/core/somaxconn net/ipv4/tcp_max_syn_backlog net/ipv4/tcp_rmem net/ipv4/tcp_wmem
	net/ipv4/ip_local_port_range net/ipv4/tcp_tw_reuse net/ipv4/ip_unprivileged_port_start)
GLOBAL_KEYS=(fs/file-max fs/nr_open net/netfilter/nf_conntrack_max net/netfilter/nf_conntrack_buckets
	net/ipv4/tcp_mem net/core/netdev_max_backlog)

make_global() { # DIR [key-to-leave-out...]
	local d=$1; shift
	rm -rf -- "$d"
	mkdir -p "$d/fs" "$d/net/netfilter" "$d/net/ipv4" "$d/net/core"
	printf '1000000\n' >"$d/fs/file-max"
	printf '1048576\n' >"$d/fs/nr_open"
	printf '262144\n' >"$d/net/netfilter/nf_conntrack_max"
	printf '262144\n' >"$d/net/netfilter/nf_conntrack_buckets"
	printf '287901\t383869\t575802\n' >"$d/net/ipv4/tcp_mem"
	printf '1000\n' >"$d/net/core/netdev_max_backlog"
	local k
	for k in "$@"; do rm -f -- "$d/$k"; done
}

# Everything tune.sh may touch in the test setup: namespace values, fake
# global tree, etc dir (names and contents) and state dir.
snap() {
	local k f
	for k in "${NETNS_KEYS[@]}"; do
		printf 'ns %s = %s\n' "$k" "$(ip netns exec "$NS" cat "/proc/sys/$k" | tr '\t' ' ')"
	done
	for k in "${GLOBAL_KEYS[@]}"; do
		printf 'global %s = %s\n' "$k" "$(tr '\t' ' ' 2>/dev/null <"$G/$k")"
	done
	if [ -d "$E" ]; then
		find "$E" | sort
		find "$E" -type f | sort | while read -r f; do printf '== %s\n' "$f"; cat "$f"; done
	fi
	if [ -e "$S" ]; then echo "state dir present"; ls -A "$S"; fi
}

# The host: global keys and the host namespace's values.
HOST_KEYS=(fs/file-max fs/nr_open "${NETNS_KEYS[@]}" net/ipv4/tcp_mem net/core/netdev_max_backlog
	net/netfilter/nf_conntrack_max net/netfilter/nf_conntrack_buckets)
host_snap() {
	local k
	for k in "${HOST_KEYS[@]}"; do printf '%s = %s\n' "$k" "$(tr '\t' ' ' 2>/dev/null <"/proc/sys/$k")"; done
	# only the paths tune.sh could write by default (other tools may be
	# installing packages meanwhile)
	for k in /etc/sysctl.d/61-ringcast-tune.conf /etc/security/limits.d/ringcast-tune.conf \
		/etc/systemd/system/ringcast.service.d /etc/modprobe.d/ringcast-tune.conf \
		/etc/modules-load.d/ringcast-tune.conf /var/lib/ringcast-tune; do
		[ ! -e "$k" ] || echo "$k exists"
	done
}

# tune.sh inside the test namespace, global keys redirected
T() {
	ip netns exec "$NS" env RINGCAST_TUNE_GLOBAL_ROOT="$G" RINGCAST_TUNE_STATE="$S" \
		RINGCAST_TUNE_ETC="$E" bash "$TUNE" "$@" 2>&1
}
# same, as nobody
T_nobody() {
	ip netns exec "$NS" setpriv --reuid=65534 --regid=65534 --clear-groups \
		env RINGCAST_TUNE_GLOBAL_ROOT="$G" RINGCAST_TUNE_STATE="$S" RINGCAST_TUNE_ETC="$E" \
		bash "$TUNE" "$@" 2>&1
}
nsget() { ip netns exec "$NS" cat "/proc/sys/$1" | tr '\t' ' '; }
nsset() { ip netns exec "$NS" sh -c "echo '$2' > /proc/sys/$1"; }

HOST_BEFORE=$(host_snap)
make_global "$G"

# ---------------------------------------------------------------- help
for c in plan check apply revert; do
	out=$(T "$c" --help); rc=$?
	check "$c --help prints its usage" $((rc != 0 || $(grep -c "^usage: tune.sh $c" <<<"$out") != 1)) "$out"
done
out=$(T --help); rc=$?
check "--help lists the commands" $((rc != 0)) "$out"
out=$(T plan --bogus); rc=$?
check "unknown option is a usage error (exit 64)" $((rc != 64)) "$out"
out=$(T check --dry-run); rc=$?
check "--dry-run outside apply/revert is a usage error" $((rc != 64)) "$out"

# ---------------------------------------------------------------- plan
out=$(T plan --connections 1000000 --mem-total 24G); rc=$?
ok=0
for re in \
	'^fs\.nr_open +global +1048576 +1054720 ' \
	'^fs\.file-max +global +1000000 +1120256 ' \
	'^net\.netfilter\.nf_conntrack_max +global +262144 +1250304 ' \
	'^net\.netfilter\.nf_conntrack_buckets +global +262144 +1250304 ' \
	'^net\.ipv4\.tcp_mem +global +287901 383869 575802 +1000000 1333333 2000000 ' \
	'^net\.core\.netdev_max_backlog +global +1000 +16384 ' \
	'^net\.core\.somaxconn +netns +4096 +16384 ' \
	'^net\.ipv4\.tcp_max_syn_backlog +netns +[0-9]+ +16384 ' \
	'^net\.ipv4\.tcp_rmem +netns +4096 [0-9]+ [0-9]+ +4096 - - ' \
	'^net\.ipv4\.tcp_wmem +netns +4096 [0-9]+ [0-9]+ +4096 - - ' \
	'^RLIMIT_NOFILE .* 1054720 ' \
	'kernel sockets +1000000 x +4096 B = +4096000000 B' \
	'ringcast +1000000 x +320 B = +320000000 B' \
	'conntrack entries +1000000 x +256 B = +256000000 B' \
	'total .*= +4672000000 B .* 18\.1% of MemTotal 24\.00 GiB: fits' \
	'tcp_mem max: 2000000 pages'; do
	has "$out" "$re" || { ok=1; fail "plan 1M: expected /$re/" "$out"; }
done
check "plan 1M (server): every key, value and the memory arithmetic" $((rc != 0 || ok))

out=$(T plan -n 1M --mem-total 24G --per-conn-bytes 1000 --no-conntrack); rc=$?
ok=0
has "$out" 'ringcast +1000000 x +1000 B = +1000000000 B' || ok=1
has "$out" 'total .*= +5096000000 B' || ok=1
has "$out" 'nf_conntrack' && ok=1
check "plan --per-conn-bytes and --no-conntrack" $((rc != 0 || ok)) "$out"

out=$(T plan -n 1M --mem-total 24G --subs-per-conn 5 --per-sub-bytes 60 --no-conntrack); rc=$?
ok=0
has "$out" 'ringcast +1000000 x +560 B = +560000000 B .*320 B \+ 4 extra subscriptions x 60 B' || ok=1
has "$out" 'total .*= +4656000000 B' || ok=1
check "plan --subs-per-conn: the extra subscriptions' memory" $((rc != 0 || ok)) "$out"

out=$(T plan -n 10M --mem-total 8G); rc=$?
check "plan warns when the connections do not fit in RAM" \
	$((rc != 0 || $(grep -c 'WARNING: does not fit in MemTotal' <<<"$out") < 1)) "$out"

out=$(T plan -n 100 --mem-total 24G); rc=$?
ok=0
has "$out" '^fs\.nr_open +global +1048576 +5120 ' || ok=1
has "$out" '^net\.core\.somaxconn +netns +4096 +4096 ' || ok=1
check "plan for 100 connections: minimum backlogs, fd headroom" $((rc != 0 || ok)) "$out"

out=$(T plan -n 1M --role loadgen --mem-total 24G); rc=$?
ok=0
has "$out" '^net\.ipv4\.ip_local_port_range +netns +32768 60999 +1024 65535 ' || ok=1
has "$out" '^net\.ipv4\.tcp_tw_reuse +netns +[0-9] +1 ' || ok=1
has "$out" '^source addresses .* 16 +ceil\(1000000 / \(64512 ports' || ok=1
has "$out" 'somaxconn' && ok=1
check "plan loadgen: port range, tw_reuse, 16 source addresses" $((rc != 0 || ok)) "$out"

out=$(T plan -n 1M --role loadgen --targets 2 --mem-total 24G); rc=$?
check "plan loadgen with 2 targets needs 8 source addresses" \
	$((rc != 0 || $(grep -Ec '^source addresses .* 8 ' <<<"$out") != 1)) "$out"

# ---------------------------------------------------------------- check before
out=$(T check -n 1M --mem-total 24G); rc=$?
ok=0
has "$out" '^LOW +net\.core\.somaxconn +4096' || ok=1
has "$out" '^LOW +fs\.nr_open +1048576' || ok=1
has "$out" '^OK +net\.ipv4\.tcp_rmem' || ok=1
check "check fails before apply (exit 1, LOW lines)" $((rc != 1 || ok)) "$out"

# ---------------------------------------------------------------- dry run
nsset net/ipv4/tcp_max_syn_backlog 30000     # above the plan: must stay
BEFORE=$(snap)
out=$(T apply -n 1M --mem-total 24G --persist --dry-run); rc=$?
AFTER=$(snap)
ok=0
has "$out" 'would set net\.core\.somaxconn: 4096 -> 16384' || ok=1
has "$out" 'would set fs\.nr_open: 1048576 -> 1054720' || ok=1
has "$out" 'would write .*/sysctl\.d/61-ringcast-tune\.conf' || ok=1
check "apply --dry-run lists the changes" $((rc != 0 || ok)) "$out"
check "apply --dry-run changes nothing (values, files, state)" \
	"$([ "$BEFORE" = "$AFTER" ] && echo 0 || echo 1)" "$(diff <(echo "$BEFORE") <(echo "$AFTER"))"

out=$(T_nobody apply -n 1M --mem-total 24G --dry-run); rc=$?
check "apply --dry-run works without root" $((rc != 0)) "$out"

out=$(T apply -n 1M --only-netns --dry-run); rc=$?
ok=0
has "$out" 'would set fs\.' && ok=1
has "$out" 'would set net\.ipv4\.tcp_mem' && ok=1
has "$out" 'fs\.nr_open: host-global, skipped \(--only-netns\)' || ok=1
has "$out" 'would set net\.core\.somaxconn' || ok=1
check "--only-netns leaves host-global keys alone" $((rc != 0 || ok)) "$out"

make_global "$WORK/global-missing" net/core/netdev_max_backlog net/netfilter/nf_conntrack_max \
	net/netfilter/nf_conntrack_buckets
out=$(T apply -n 1M --global-root "$WORK/global-missing" --dry-run); rc=$?
ok=0
has "$out" 'net\.core\.netdev_max_backlog: does not exist .*skipped' || ok=1
has "$out" 'nf_conntrack keys absent .*not loading modules' || ok=1
has "$out" 'would set net\.core\.netdev_max_backlog' && ok=1
check "keys that do not exist are skipped with a note" $((rc != 0 || ok)) "$out"

# ---------------------------------------------------------------- not root
out=$(T_nobody apply -n 1M); rc=$?
check "apply as nobody: exit 2 with a clear message" \
	$((rc != 2 || $(grep -c 'must be run as root' <<<"$out") < 1)) "$out"
out=$(T_nobody revert); rc=$?
check "revert as nobody: exit 2 with a clear message" \
	$((rc != 2 || $(grep -c 'must be run as root' <<<"$out") < 1)) "$out"
check "nobody changed nothing" "$([ "$(snap)" = "$BEFORE" ] && echo 0 || echo 1)"

# ---------------------------------------------------------------- apply
out=$(T apply -n 1M --mem-total 24G --persist); rc=$?
check "apply --persist succeeds" $((rc != 0)) "$out"
ok=0
[ "$(nsget net/core/somaxconn)" = 16384 ] || ok=1
[ "$(nsget net/ipv4/tcp_max_syn_backlog)" = 30000 ] || ok=1
[ "$(cat "$G/fs/nr_open")" = 1054720 ] || ok=1
[ "$(cat "$G/fs/file-max")" = 1120256 ] || ok=1
[ "$(cat "$G/net/ipv4/tcp_mem")" = "1000000 1333333 2000000" ] || ok=1
[ "$(cat "$G/net/netfilter/nf_conntrack_max")" = 1250304 ] || ok=1
[ "$(cat "$G/net/core/netdev_max_backlog")" = 16384 ] || ok=1
check "apply raised every short value to the plan" $ok "$(snap)"
check "apply never lowers (tcp_max_syn_backlog 30000 > 16384 kept)" \
	"$([ "$(nsget net/ipv4/tcp_max_syn_backlog)" = 30000 ] && echo 0 || echo 1)"
ok=0
grep -qx 'fs.nr_open = 1054720' "$E/sysctl.d/61-ringcast-tune.conf" || ok=1
grep -qx 'net.ipv4.tcp_max_syn_backlog = 30000' "$E/sysctl.d/61-ringcast-tune.conf" || ok=1
grep -qx 'LimitNOFILE=1054720' "$E/systemd/system/ringcast.service.d/61-ringcast-tune.conf" || ok=1
grep -Eqx 'root +hard +nofile +1054720' "$E/security/limits.d/ringcast-tune.conf" || ok=1
grep -qx 'options nf_conntrack hashsize=1250304' "$E/modprobe.d/ringcast-tune.conf" || ok=1
check "--persist wrote sysctl.d, limits.d, the systemd drop-in and modprobe.d" $ok "$(snap)"

out=$(T check -n 1M --mem-total 24G); rc=$?
check "check passes after apply" $((rc != 0 || $(grep -c '^check: 0 LOW' <<<"$out") != 1)) "$out"

# ---------------------------------------------------------------- idempotent
MID=$(snap)
STATE1=$(cat "$S/state" 2>/dev/null)
out=$(T apply -n 1M --mem-total 24G --persist); rc=$?
check "second apply changes nothing and says so" \
	$((rc != 0 || $(grep -c '^nothing to change' <<<"$out") != 1)) "$out"
check "second apply: values, files and state identical" \
	"$([ "$(snap)" = "$MID" ] && [ "$(cat "$S/state")" = "$STATE1" ] && echo 0 || echo 1)"

out=$(T apply -n 2M --mem-total 24G); rc=$?
check "apply for more connections raises further" \
	$((rc != 0 || $(grep -c 'set net.core.somaxconn: 16384 -> 32768' <<<"$out") != 1)) "$out"

# ---------------------------------------------------------------- revert
out=$(ip netns exec "$NS2" env RINGCAST_TUNE_STATE="$S" bash "$TUNE" revert 2>&1); rc=$?
check "revert from another network namespace is refused" \
	$((rc != 1 || $(grep -c 'run revert there' <<<"$out") != 1)) "$out"

STATE2=$(cat "$S/state")
out=$(ip netns exec "$NS2" env RINGCAST_TUNE_GLOBAL_ROOT="$G" RINGCAST_TUNE_STATE="$S" \
	RINGCAST_TUNE_ETC="$E" bash "$TUNE" apply -n 1M 2>&1); rc=$?
check "apply from another namespace with the same state is refused, state untouched" \
	$((rc != 1 || $(grep -c 'belongs to network namespace' <<<"$out") != 1)) "$out"
check "...and its values untouched" \
	"$([ "$(ip netns exec "$NS2" cat /proc/sys/net/core/somaxconn)" = 4096 ] && [ "$(cat "$S/state")" = "$STATE2" ] && echo 0 || echo 1)"

out=$(T revert); rc=$?
AFTER=$(snap)
check "revert succeeds" $((rc != 0)) "$out"
check "revert restores every original value and file exactly" \
	"$([ "$BEFORE" = "$AFTER" ] && echo 0 || echo 1)" "$(diff <(echo "$BEFORE") <(echo "$AFTER"))"
check "revert removed the state" "$([ ! -e "$S" ] && echo 0 || echo 1)"
out=$(T revert); rc=$?
check "revert without state: nothing to revert" \
	$((rc != 0 || $(grep -c '^nothing to revert' <<<"$out") != 1)) "$out"

# ---------------------------------------------------------------- failure
# ip_local_port_range below ip_unprivileged_port_start is refused by the
# kernel (EINVAL): the loadgen apply must roll back the keys it already set.
nsset net/ipv4/ip_unprivileged_port_start 2000
BEFORE=$(snap)
out=$(T apply -n 1M --role loadgen --mem-total 24G --persist); rc=$?
AFTER=$(snap)
ok=0
has "$out" 'apply FAILED: net\.ipv4\.ip_local_port_range' || ok=1
has "$out" 'fs\.nr_open back to 1048576' || ok=1
check "a failed write is reported, exit 1" $((rc != 1 || ok)) "$out"
check "a failed apply leaves nothing changed (rolled back, no state)" \
	"$([ "$BEFORE" = "$AFTER" ] && echo 0 || echo 1)" "$(diff <(echo "$BEFORE") <(echo "$AFTER"))"
nsset net/ipv4/ip_unprivileged_port_start 1024

# loadgen apply then revert, the other kinds of keys (range, tw_reuse)
BEFORE=$(snap)
out=$(T apply -n 1M --role loadgen --mem-total 24G); rc=$?
ok=0
[ "$(nsget net/ipv4/ip_local_port_range)" = "1024 65535" ] || ok=1
[ "$(nsget net/ipv4/tcp_tw_reuse)" = 1 ] || ok=1
check "loadgen apply widens the port range and enables tw_reuse" $((rc != 0 || ok)) "$out"
out=$(T revert); rc=$?
check "loadgen revert restores exactly" \
	"$([ $rc -eq 0 ] && [ "$BEFORE" = "$(snap)" ] && echo 0 || echo 1)" "$out"

# ---------------------------------------------------------------- static files
out=$(T plan -n 1M --mem-total 24G)
SYSCTL_FILE=$REPO/tuning/sysctl.d/60-ringcast.conf
UNIT=$REPO/tuning/systemd/ringcast.service
ok=0
detail=
for k in fs.file-max fs.nr_open net.netfilter.nf_conntrack_max net.core.somaxconn \
	net.ipv4.tcp_max_syn_backlog net.core.netdev_max_backlog; do
	req=$(awk -v k="$k" '$1 == k { print $4; exit }' <<<"$out")
	have=$(awk -F' *= *' -v k="$k" '$1 == k { print $2 }' "$SYSCTL_FILE" | tail -n 1)
	if [ -z "$have" ] || [ "$have" -lt "$req" ]; then ok=1; detail+="$k: file has '$have', plan needs $req"$'\n'; fi
done
nofile=$(awk '$1 == "fs.nr_open" { print $4; exit }' <<<"$out")   # the plan's RLIMIT_NOFILE
unit_nofile=$(awk -F= '$1 == "LimitNOFILE" { print $2 }' "$UNIT")
nr_open=$(awk -F' *= *' '$1 == "fs.nr_open" { print $2 }' "$SYSCTL_FILE")
if [ "$unit_nofile" != "$nofile" ] || [ "$nr_open" -lt "$unit_nofile" ]; then
	ok=1; detail+="LimitNOFILE=$unit_nofile, plan $nofile, fs.nr_open $nr_open"$'\n'
fi
check "tuning/ files cover the plan for 1M connections (LimitNOFILE <= fs.nr_open)" $ok "$detail"

ok=0
stop=$(awk -F= '$1 == "TimeoutStopSec" { sub(/s$/, "", $2); print $2 }' "$UNIT")
[ -n "$stop" ] && [ "$stop" -gt 30 ] && [ "$stop" -le 90 ] || ok=1
grep -qx 'KillSignal=SIGTERM' "$UNIT" || ok=1
grep -qx 'Restart=on-failure' "$UNIT" || ok=1
grep -q '^LimitMEMLOCK=' "$UNIT" || ok=1
grep -qx 'ExecStart=/usr/local/bin/ringcast serve --config /etc/ringcast/ringcast.toml' "$UNIT" || ok=1
check "systemd unit: ExecStart, SIGTERM, stop timeout > 30 s drain, memlock" $ok

if command -v systemd-analyze >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	out=$(systemd-analyze verify "$UNIT" 2>&1 | grep -v 'ringcast: No such file\|not executable\|Command /usr/local/bin/ringcast'); rc=$?
	check "systemd-analyze verify" $((rc == 0)) "$out"
else
	skip "systemd-analyze verify (no running systemd)"
fi

if command -v nft >/dev/null 2>&1; then
	out=$(ip netns exec "$NS" sh -c "nft -f '$REPO/tuning/nftables/ringcast-notrack.nft' && nft -f '$REPO/tuning/nftables/ringcast-notrack.nft' && nft list table inet ringcast_notrack" 2>&1); rc=$?
	check "nftables notrack rules load twice (idempotent) and mark port 8000 notrack" \
		$((rc != 0 || $(grep -c 'dport 8000 notrack' <<<"$out") < 2)) "$out"
else
	skip "nftables rules (nft not installed)"
fi

if command -v shellcheck >/dev/null 2>&1; then
	out=$(shellcheck "$REPO/scripts/tune.sh" "$REPO/scripts/test-tuning.sh" 2>&1); rc=$?
	check "shellcheck is clean" $rc "$out"
else
	skip "shellcheck (not installed)"
fi

# ---------------------------------------------------------------- host untouched
HOST_AFTER=$(host_snap)
check "host-global sysctls and the host namespace are untouched" \
	"$([ "$HOST_BEFORE" = "$HOST_AFTER" ] && echo 0 || echo 1)" \
	"$(diff <(echo "$HOST_BEFORE") <(echo "$HOST_AFTER"))"

finish
