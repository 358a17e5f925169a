#!/usr/bin/env bash
# scripts/tune.sh -- kernel/OS tuning for ringcast: plan, check, apply, revert.
#
# Computes the sysctls and limits that N concurrent connections need on this
# box, checks them, raises what falls short (it never lowers anything) and
# reverts exactly what it changed.  Runbook: docs/operations.md.
#
# Needs bash >= 4.2, coreutils and awk.  Uses modprobe and flock when present.
#
# Where values are read and written:
#   * per-network-namespace keys (net.core.somaxconn, net.ipv4.tcp_rmem, ...)
#     always go through /proc/sys of the namespace the script runs in;
#   * host-global keys (fs.file-max, fs.nr_open, net.ipv4.tcp_mem, ...) go
#     through the "global root", /proc/sys unless --global-root DIR or
#     RINGCAST_TUNE_GLOBAL_ROOT=DIR points them at another tree.  The test
#     suite uses that to run apply/revert inside a throwaway namespace without
#     touching the host: a global key written from inside a netns changes the
#     whole machine.  --only-netns skips the global keys instead.

set -u -o pipefail
export LC_ALL=C

PROG=${0##*/}
STATE_VERSION=1

DEFAULT_CONNECTIONS=1000000
# ringcast's own memory per idle client, connected and subscribed to one
# channel: hold, centrifuge mode, 15,000 connections, 1 and 2 shards,
# measured in session 12 (docs/benchmarks.md): 237-245 B with 1 channel and
# 282 B with 1,000 as the cost of each further client (after a warm-up, or
# 7,500 more on top of 7,500), 294-298 B counting the binary's code pages
# the first client's path touches (~0.6 MB once); a raw WebSocket connection
# is 131 B. Plus ~0.6 MB per node of handshake workers made at start. The
# default leaves room over the highest of these
DEFAULT_PER_CONN_BYTES=320
# ... and per subscription past the first (same runs, 5 against 1 per client,
# 1,000 channels: 57 B measured in session 12, 59-61 B in session 11, 66 B
# in session 10; rounded up)
DEFAULT_PER_SUB_BYTES=72
DEFAULT_SUBS_PER_CONN=1
DEFAULT_KERNEL_BYTES=4096       # kernel memory per idle TCP socket (measured)
CONNTRACK_ENTRY_BYTES=256       # nf_conntrack slab object size (/proc/slabinfo)
FD_HEADROOM_FIXED=4096          # listeners, eventfds, rings, logs, upstreams
FIT_WARN_PERCENT=80             # warn when steady-state memory passes this

# ----------------------------------------------------------------------------
# Key table: name, scope, kind, roles.
#   scope  global: one value for the whole host (or writable only from the
#                  initial network namespace); netns: per network namespace.
#   kind   int | triple (three numbers) | range (low high) | twreuse (0/1/2)
# Scopes as verified on Linux 6.18 by reading and writing each key from a
# fresh `unshare -n`: tcp_mem and netdev_max_backlog do not exist there,
# nf_conntrack_max/_buckets are read-only there, fs.* are writable but global.
# ----------------------------------------------------------------------------
declare -a KEYS=()
declare -A SCOPE=() KIND=() ROLES=()
add_key() { KEYS+=("$1"); SCOPE[$1]=$2; KIND[$1]=$3; ROLES[$1]=$4; }
add_key fs.file-max                        global int     server,loadgen
add_key fs.nr_open                         global int     server,loadgen
add_key net.netfilter.nf_conntrack_max     global int     server,loadgen
add_key net.netfilter.nf_conntrack_buckets global int     server,loadgen
add_key net.ipv4.tcp_mem                   global triple  server,loadgen
add_key net.core.netdev_max_backlog        global int     server,loadgen
add_key net.core.somaxconn                 netns  int     server
add_key net.ipv4.tcp_max_syn_backlog       netns  int     server
add_key net.ipv4.tcp_rmem                  netns  triple  server,loadgen
add_key net.ipv4.tcp_wmem                  netns  triple  server,loadgen
add_key net.ipv4.ip_local_port_range       netns  range   loadgen
add_key net.ipv4.tcp_tw_reuse              netns  twreuse loadgen

is_conntrack_key() { case $1 in net.netfilter.nf_conntrack_*) return 0 ;; esac; return 1; }

# ----------------------------------------------------------------------------
# Help
# ----------------------------------------------------------------------------
usage_main() {
	cat <<EOF
usage: $PROG COMMAND [options]

Size the kernel and OS limits for N concurrent ringcast connections.

commands:
  plan     compute every value N connections need and the memory arithmetic
  check    one OK/LOW line per setting; exit 1 when anything falls short
  apply    raise what falls short (never lowers), save originals, optionally
           persist to sysctl.d / limits.d / a systemd drop-in
  revert   restore exactly what apply changed, then remove the saved state

Run '$PROG COMMAND --help' for the options of a command.
Exit codes: 0 ok, 1 short/failed, 2 not root (apply, revert), 64 usage error.
EOF
}

usage_sizing_opts() {
	cat <<EOF
  -n, --connections N     connections to plan for (default $DEFAULT_CONNECTIONS;
                          suffixes k and M are decimal: 500k, 1M)
  --role server|loadgen   the box runs the ringcast server (default) or the
                          bench load generator
  --per-conn-bytes B      ringcast's own memory per connected client with one
                          subscription (default $DEFAULT_PER_CONN_BYTES, measured)
  --subs-per-conn S       subscriptions per client (default $DEFAULT_SUBS_PER_CONN); each past
                          the first adds --per-sub-bytes
  --per-sub-bytes B       ringcast's memory per extra subscription (default $DEFAULT_PER_SUB_BYTES)
  --kernel-bytes B        kernel memory per idle TCP socket (default $DEFAULT_KERNEL_BYTES)
  --mem-total SIZE        plan for this much RAM instead of MemTotal
                          (bytes, or with K/M/G/T suffix, binary)
  --targets K             loadgen: distinct server ip:port pairs (default 1)
  --no-conntrack          do not size conntrack (ringcast's port is exempted
                          with tuning/nftables/ringcast-notrack.nft)
  --only-netns            leave host-global keys alone (reported as SKIP)
  --global-root DIR       read/write host-global keys under DIR instead of
                          /proc/sys (env RINGCAST_TUNE_GLOBAL_ROOT); for tests
  --etc-dir DIR           where sysctl.d, security/limits.d, systemd, ... live
                          (default /etc, env RINGCAST_TUNE_ETC)
  -h, --help              this help
EOF
}

usage_plan() {
	cat <<EOF
usage: $PROG plan [--connections N] [--role server|loadgen] [options]

Print, for every setting N connections depend on: key, scope (global or
per network namespace), current value, required value and the reason; then
the memory arithmetic (kernel + ringcast bytes per connection against
MemTotal) with a warning when it does not fit.  Changes nothing.

options:
$(usage_sizing_opts)
EOF
}

usage_check() {
	cat <<EOF
usage: $PROG check [--connections N] [--role server|loadgen] [options]

One line per setting: OK, LOW, SKIP (not present or not ours to set here)
or WARN (advisory).  Exits 1 when any setting is LOW, 0 otherwise.
The file-descriptor limit checked is ringcast.service's LimitNOFILE (unit
file plus drop-ins under --etc-dir, or systemctl when systemd runs) for the
server role, and this shell's hard RLIMIT_NOFILE otherwise.

options:
$(usage_sizing_opts)
EOF
}

usage_apply() {
	cat <<EOF
usage: $PROG apply [--connections N] [--role server|loadgen] [--dry-run] [--persist] [options]

Raise every setting that falls short of the plan.  Nothing is ever lowered:
a value already above the plan stays.  Before the first write the original
values are saved under the state directory, so 'revert' can restore them.
A second apply with the same N changes nothing and says so.  If any write
fails (or the kernel keeps a different value), everything this run changed
is put back and the command exits 1.  Keys that do not exist here (another
network namespace, conntrack not loaded) are skipped with a note.  When the
conntrack keys are missing, nf_conntrack is loaded with modprobe if there
is one, so its limit is in place before a firewall rule starts tracking.

options:
  --dry-run               print what would change; change nothing (allowed
                          without root)
  --persist               also write, under --etc-dir:
                            sysctl.d/61-ringcast-tune.conf
                            security/limits.d/ringcast-tune.conf
                            systemd/system/ringcast.service.d/61-ringcast-tune.conf
                              (server role: LimitNOFILE=)
                            modprobe.d/ringcast-tune.conf and
                            modules-load.d/ringcast-tune.conf (conntrack)
  --state-dir DIR         where originals are saved (default
                          /var/lib/ringcast-tune, env RINGCAST_TUNE_STATE)
$(usage_sizing_opts)

Needs root (exit 2 otherwise), except with --dry-run.
EOF
}

usage_revert() {
	cat <<EOF
usage: $PROG revert [--state-dir DIR] [--dry-run]

Restore every value apply changed to the value it had before the first
apply, put back or remove the files apply --persist wrote, then remove the
state.  Values and files are restored at the exact paths apply recorded,
so the environment (global root, etc dir) need not be given again.  Refuses
to run from a different network namespace than apply ran in, since the
per-namespace values would land in the wrong namespace.

options:
  --state-dir DIR         state written by apply (default /var/lib/ringcast-tune,
                          env RINGCAST_TUNE_STATE)
  --dry-run               print what would be restored; change nothing
  -h, --help              this help

Needs root (exit 2 otherwise), except with --dry-run.
EOF
}

usage_for() {
	case $1 in
	plan) usage_plan ;;
	check) usage_check ;;
	apply) usage_apply ;;
	revert) usage_revert ;;
	*) usage_main ;;
	esac
}

# ----------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------
die_usage() { echo "$PROG: $*" >&2; echo "Try '$PROG ${CMD:-} --help'." >&2; exit 64; }
die() { echo "$PROG: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

NOTES=()
note() { NOTES+=("$*"); }
print_notes() {
	local n
	[ ${#NOTES[@]} -gt 0 ] || return 0
	say "notes:"
	for n in "${NOTES[@]}"; do say "  - $n"; done
}

ceil_div() { echo $(( ($1 + $2 - 1) / $2 )); }
roundup() { echo $(( ($1 + $2 - 1) / $2 * $2 )); }
pow2ceil() { local v=1; while [ "$v" -lt "$1" ]; do v=$((v * 2)); done; echo "$v"; }
max() { if [ "$1" -ge "$2" ]; then echo "$1"; else echo "$2"; fi; }
min() { if [ "$1" -le "$2" ]; then echo "$1"; else echo "$2"; fi; }

human() {
	awk -v b="$1" 'BEGIN {
		split("B KiB MiB GiB TiB PiB", u, " "); i = 1
		while (b >= 1024 && i < 6) { b /= 1024; i++ }
		if (i == 1) printf "%d B", b; else printf "%.2f %s", b, u[i] }'
}

# Collapse whitespace (tabs, repeated blanks) to single spaces.
norm() { local -a f; read -r -a f <<<"$1"; printf '%s' "${f[*]}"; }

# read_value PATH -> normalized value on stdout; status 1 if absent/unreadable.
read_value() {
	local raw
	[ -f "$1" ] || return 1
	raw=$(cat -- "$1" 2>/dev/null) || return 1
	norm "$raw"
}

# write_value PATH VALUE -> status 0 when written; error text on stdout.
write_value() {
	local err
	if err=$({ printf '%s\n' "$2" >"$1"; } 2>&1); then return 0; fi
	err=${err##*: }
	printf '%s' "${err:-write failed}"
	return 1
}

key_path() {
	local rel=${1//.//}
	if [ "${SCOPE[$1]}" = global ]; then
		printf '%s/%s' "$GLOBAL_ROOT" "$rel"
	else
		printf '/proc/sys/%s' "$rel"
	fi
}

parse_count() {
	local s=$1 n mult=1
	[[ $s =~ ^([0-9]+)([kKmM]?)$ ]] || return 1
	n=$((10#${BASH_REMATCH[1]}))
	case ${BASH_REMATCH[2]} in k | K) mult=1000 ;; m | M) mult=1000000 ;; esac
	echo $((n * mult))
}

parse_size() {
	local s=$1 n mult=1
	[[ $s =~ ^([0-9]+)([kKmMgGtT]?)(i?[bB])?$ ]] || return 1
	n=$((10#${BASH_REMATCH[1]}))
	case ${BASH_REMATCH[2]} in
	k | K) mult=1024 ;; m | M) mult=$((1024 ** 2)) ;;
	g | G) mult=$((1024 ** 3)) ;; t | T) mult=$((1024 ** 4)) ;;
	esac
	echo $((n * mult))
}

netns_id() { stat -L -c %i /proc/self/ns/net 2>/dev/null || echo unknown; }

# yes / no.  Compares with PID 1's namespace when that is readable; else
# relies on net.core.netdev_max_backlog, which the kernel registers for the
# initial network namespace only.
in_init_netns() {
	local self init
	self=$(netns_id)
	if init=$(stat -L -c %i /proc/1/ns/net 2>/dev/null); then
		if [ "$self" = "$init" ]; then echo yes; else echo no; fi
	elif [ -e /proc/sys/net/core/netdev_max_backlog ]; then
		echo yes
	else
		echo no
	fi
}

# ----------------------------------------------------------------------------
# Value comparison and merging by kind
# ----------------------------------------------------------------------------
twreuse_rank() { case $1 in 1) echo 2 ;; 2) echo 1 ;; *) echo 0 ;; esac; }

# meets KEY CURRENT REQUIRED -> 0 when CURRENT satisfies REQUIRED
meets() {
	local kind=${KIND[$1]} cur=$2 req=$3 i
	local -a c r
	case $kind in
	int) [ "$cur" -ge "$req" ] ;;
	triple)
		read -r -a c <<<"$cur"; read -r -a r <<<"$req"
		for i in 0 1 2; do
			[ "${r[$i]}" = - ] && continue
			[ "${c[$i]}" -ge "${r[$i]}" ] || return 1
		done ;;
	range)
		read -r -a c <<<"$cur"; read -r -a r <<<"$req"
		[ "${c[0]}" -le "${r[0]}" ] && [ "${c[1]}" -ge "${r[1]}" ] ;;
	twreuse) [ "$(twreuse_rank "$cur")" -ge "$(twreuse_rank "$req")" ] ;;
	esac
}

# merged KEY CURRENT REQUIRED -> the value to write: raised, never lowered
merged() {
	local kind=${KIND[$1]} cur=$2 req=$3 i
	local -a c r o
	case $kind in
	int) max "$cur" "$req" ;;
	triple)
		read -r -a c <<<"$cur"; read -r -a r <<<"$req"
		for i in 0 1 2; do
			if [ "${r[$i]}" = - ]; then o[i]=${c[$i]}; else o[i]=$(max "${c[$i]}" "${r[$i]}"); fi
		done
		# keep min <= pressure <= max when only some fields were raised
		[ "${o[1]}" -ge "${o[0]}" ] || o[1]=${o[0]}
		[ "${o[2]}" -ge "${o[1]}" ] || o[2]=${o[1]}
		echo "${o[*]}" ;;
	range)
		read -r -a c <<<"$cur"; read -r -a r <<<"$req"
		echo "$(min "${c[0]}" "${r[0]}") $(max "${c[1]}" "${r[1]}")" ;;
	twreuse)
		if [ "$(twreuse_rank "$cur")" -ge "$(twreuse_rank "$req")" ]; then echo "$cur"; else echo "$req"; fi ;;
	esac
}

# ----------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------
CMD=
N=$DEFAULT_CONNECTIONS
ROLE=server
PER_CONN_BYTES=$DEFAULT_PER_CONN_BYTES
PER_SUB_BYTES=$DEFAULT_PER_SUB_BYTES
SUBS_PER_CONN=$DEFAULT_SUBS_PER_CONN
KERNEL_BYTES=$DEFAULT_KERNEL_BYTES
MEM_TOTAL=
MEM_TOTAL_SRC=/proc/meminfo
TARGETS=1
NO_CONNTRACK=0
ONLY_NETNS=0
DRY_RUN=0
PERSIST=0
SHOW_HELP=0
GLOBAL_ROOT=${RINGCAST_TUNE_GLOBAL_ROOT:-/proc/sys}
ETC_DIR=${RINGCAST_TUNE_ETC:-/etc}
STATE_DIR=${RINGCAST_TUNE_STATE:-/var/lib/ringcast-tune}

parse_args() {
	local opt val has
	while [ $# -gt 0 ]; do
		opt=$1 val='' has=0
		case $opt in --*=*) val=${opt#*=}; opt=${opt%%=*}; has=1 ;; esac
		case $opt in
		--connections | -n | --role | --per-conn-bytes | --per-sub-bytes | --subs-per-conn | \
			--kernel-bytes | --mem-total | \
			--targets | --state-dir | --etc-dir | --global-root)
			if [ "$has" = 0 ]; then
				[ $# -ge 2 ] || die_usage "option $opt needs a value"
				val=$2; shift
			fi ;;
		*) [ "$has" = 0 ] || die_usage "option $opt takes no value" ;;
		esac
		case $opt in
		-h | --help) SHOW_HELP=1 ;;
		--connections | -n)
			if ! N=$(parse_count "$val") || [ "$N" -lt 1 ]; then
				die_usage "--connections wants a positive count, not '$val'"
			fi ;;
		--role) case $val in server | loadgen) ROLE=$val ;; *) die_usage "--role is server or loadgen, not '$val'" ;; esac ;;
		--per-conn-bytes) PER_CONN_BYTES=$(parse_size "$val") || die_usage "bad --per-conn-bytes '$val'" ;;
		--per-sub-bytes) PER_SUB_BYTES=$(parse_size "$val") || die_usage "bad --per-sub-bytes '$val'" ;;
		--subs-per-conn)
			if ! SUBS_PER_CONN=$(parse_count "$val") || [ "$SUBS_PER_CONN" -lt 1 ]; then
				die_usage "--subs-per-conn wants a positive count, not '$val'"
			fi ;;
		--kernel-bytes) KERNEL_BYTES=$(parse_size "$val") || die_usage "bad --kernel-bytes '$val'" ;;
		--mem-total)
			if ! MEM_TOTAL=$(parse_size "$val") || [ "$MEM_TOTAL" -le 0 ]; then
				die_usage "bad --mem-total '$val'"
			fi
			MEM_TOTAL_SRC=--mem-total ;;
		--targets)
			if ! TARGETS=$(parse_count "$val") || [ "$TARGETS" -lt 1 ]; then
				die_usage "bad --targets '$val'"
			fi ;;
		--state-dir) STATE_DIR=$val ;;
		--etc-dir) ETC_DIR=$val ;;
		--global-root) GLOBAL_ROOT=$val ;;
		--no-conntrack) NO_CONNTRACK=1 ;;
		--only-netns) ONLY_NETNS=1 ;;
		--dry-run) DRY_RUN=1 ;;
		--persist) PERSIST=1 ;;
		*) die_usage "unknown option '$opt'" ;;
		esac
		shift
	done
	case $CMD in
	apply) ;;
	revert) [ "$PERSIST" = 0 ] || die_usage "--persist is an apply option" ;;
	*) if [ "$DRY_RUN" = 1 ] || [ "$PERSIST" = 1 ]; then die_usage "--dry-run and --persist are apply options"; fi ;;
	esac
	GLOBAL_ROOT=${GLOBAL_ROOT%/}
	[ -n "$GLOBAL_ROOT" ] || GLOBAL_ROOT=/
	STATE_FILE=$STATE_DIR/state
}

require_root() {
	[ "$EUID" -eq 0 ] && return 0
	echo "$PROG $CMD: must be run as root: it writes sysctls under /proc/sys and saves state in $STATE_DIR." >&2
	echo "Run it with sudo, or use '$PROG $CMD --dry-run' to see what it would do." >&2
	exit 2
}

# ----------------------------------------------------------------------------
# Gather current values, compute requirements
# ----------------------------------------------------------------------------
declare -a ACTIVE=()
declare -A CUR=() PATHOF=() PRESENT=() WRITABLE=() REQ=() WHY=() STATUS=() NEWV=()
PAGE=4096
NOFILE=0
SOCK_BYTES=0
APP_BYTES=0
CLIENT_BYTES=0
CT_BYTES=0
TOTAL_BYTES=0
SRC_ADDRS=0
PORTS_PER_ADDR=0
TCP_MEM_CAPPED=0
INIT_NETNS=unknown

select_keys() {
	local k
	ACTIVE=()
	for k in "${KEYS[@]}"; do
		[[ ,${ROLES[$k]}, == *,$ROLE,* ]] || continue
		if is_conntrack_key "$k" && [ "$NO_CONNTRACK" = 1 ]; then continue; fi
		ACTIVE+=("$k")
	done
}

gather() {
	local k p v
	for k in "${ACTIVE[@]}"; do
		p=$(key_path "$k")
		PATHOF[$k]=$p
		if v=$(read_value "$p") && [ -n "$v" ]; then
			CUR[$k]=$v; PRESENT[$k]=1
		else
			CUR[$k]=absent; PRESENT[$k]=0
		fi
		if [ -w "$p" ]; then WRITABLE[$k]=1; else WRITABLE[$k]=0; fi
	done
}

mem_total_bytes() {
	if [ -n "$MEM_TOTAL" ]; then echo "$MEM_TOTAL"; return; fi
	local kb
	kb=$(awk '$1 == "MemTotal:" { print $2; exit }' /proc/meminfo)
	echo $((kb * 1024))
}

# field I of the current value of KEY, or DEFAULT when absent
cur_field() {
	local -a f
	if [ "${PRESENT[$1]:-0}" = 1 ]; then read -r -a f <<<"${CUR[$1]}"; echo "${f[$2]}"; else echo "$3"; fi
}

compute() {
	local mem backlog rmin wmin want avail cap mx lo hi ct
	PAGE=$(getconf PAGESIZE 2>/dev/null || echo 4096)
	mem=$(mem_total_bytes)
	MEM_TOTAL=$mem

	# file descriptors: one per connection, 5% for connections still closing
	# while their clients reconnect, plus a fixed allowance.
	NOFILE=$(roundup $((N + $(ceil_div "$N" 20) + FD_HEADROOM_FIXED)) 1024)
	REQ[fs.nr_open]=$NOFILE
	WHY[fs.nr_open]="ceiling for RLIMIT_NOFILE: N + 5% + $FD_HEADROOM_FIXED, rounded to 1024"
	REQ[fs.file-max]=$((NOFILE + 65536))
	WHY[fs.file-max]="system-wide open files: ringcast's $NOFILE + 65536 for the rest of the box"

	ct=$(roundup $((N + $(ceil_div "$N" 4))) 1024)
	REQ[net.netfilter.nf_conntrack_max]=$ct
	WHY[net.netfilter.nf_conntrack_max]="one entry per tracked connection + 25% lingering in TIME_WAIT/CLOSE"
	REQ[net.netfilter.nf_conntrack_buckets]=$ct
	WHY[net.netfilter.nf_conntrack_buckets]="hash buckets = max entries (kernel default ratio, chains ~2 long)"

	backlog=$(pow2ceil "$(ceil_div "$N" 100)")
	backlog=$(max "$backlog" 4096)
	backlog=$(min "$backlog" 65535)
	REQ[net.core.somaxconn]=$backlog
	WHY[net.core.somaxconn]="caps each listen() backlog: 1% of N queued per listener in a reconnect storm"
	REQ[net.ipv4.tcp_max_syn_backlog]=$backlog
	WHY[net.ipv4.tcp_max_syn_backlog]="half-open (SYN_RECV) queue per listener, as deep as the accept queue"
	REQ[net.core.netdev_max_backlog]=$backlog
	WHY[net.core.netdev_max_backlog]="per-CPU input packet queue: a reconnect storm is a burst of small packets"

	rmin=$(max "$(cur_field net.ipv4.tcp_rmem 0 4096)" 4096)
	wmin=$(max "$(cur_field net.ipv4.tcp_wmem 0 4096)" 4096)
	REQ[net.ipv4.tcp_rmem]="4096 - -"
	WHY[net.ipv4.tcp_rmem]="min >= one page: the receive buffer every socket keeps under pressure"
	REQ[net.ipv4.tcp_wmem]="4096 - -"
	WHY[net.ipv4.tcp_wmem]="min >= one page: the send buffer every socket keeps under pressure"

	SOCK_BYTES=$((N * KERNEL_BYTES))
	CLIENT_BYTES=$((PER_CONN_BYTES + (SUBS_PER_CONN - 1) * PER_SUB_BYTES))
	APP_BYTES=$((N * CLIENT_BYTES))
	CT_BYTES=0
	if [ "$NO_CONNTRACK" = 0 ]; then CT_BYTES=$((N * CONNTRACK_ENTRY_BYTES)); fi
	TOTAL_BYTES=$((SOCK_BYTES + APP_BYTES + CT_BYTES))

	# tcp_mem (pages): room for every socket's minimum buffers (rmem[0] +
	# wmem[0]), capped at half of the RAM the sockets themselves leave.
	want=$(ceil_div $((N * (rmin + wmin))) "$PAGE")
	avail=$(((mem - TOTAL_BYTES) / PAGE))
	cap=$((avail / 2))
	TCP_MEM_CAPPED=0
	mx=$want
	if [ "$cap" -gt 0 ] && [ "$cap" -lt "$want" ]; then mx=$cap; TCP_MEM_CAPPED=1; fi
	REQ[net.ipv4.tcp_mem]="$((mx / 2)) $((mx * 2 / 3)) $mx"
	WHY[net.ipv4.tcp_mem]="pages; max = N x (rmem min + wmem min) = $(human $((mx * PAGE)))"
	[ "$TCP_MEM_CAPPED" = 0 ] || WHY[net.ipv4.tcp_mem]="pages; max capped at half the RAM left after sockets = $(human $((mx * PAGE)))"

	REQ[net.ipv4.ip_local_port_range]="1024 65535"
	WHY[net.ipv4.ip_local_port_range]="ephemeral ports for outgoing connections, per source address"
	REQ[net.ipv4.tcp_tw_reuse]=1
	WHY[net.ipv4.tcp_tw_reuse]="reuse TIME_WAIT ports for new outgoing connections (needs timestamps)"

	lo=$(cur_field net.ipv4.ip_local_port_range 0 1024)
	hi=$(cur_field net.ipv4.ip_local_port_range 1 65535)
	PORTS_PER_ADDR=$(($(max "$hi" 65535) - $(min "$lo" 1024) + 1))
	SRC_ADDRS=$(ceil_div "$N" $((PORTS_PER_ADDR * TARGETS)))
}

classify() {
	local k
	for k in "${ACTIVE[@]}"; do
		if [ "${SCOPE[$k]}" = global ] && [ "$ONLY_NETNS" = 1 ]; then
			STATUS[$k]=skipped
		elif [ "${PRESENT[$k]}" = 0 ]; then
			STATUS[$k]=absent
		elif meets "$k" "${CUR[$k]}" "${REQ[$k]}"; then
			STATUS[$k]=ok; NEWV[$k]=${CUR[$k]}
		else
			STATUS[$k]=low; NEWV[$k]=$(merged "$k" "${CUR[$k]}" "${REQ[$k]}")
		fi
	done
}

absent_reason() {
	local k=$1
	if is_conntrack_key "$k"; then
		echo "nf_conntrack is not loaded: nothing is tracked, nothing to size"
	elif [ "${SCOPE[$k]}" = global ] && [ "$INIT_NETNS" = no ] && [ "$GLOBAL_ROOT" = /proc/sys ]; then
		echo "host-global key, not visible in this network namespace: set it from the initial one"
	else
		echo "does not exist in this kernel / network namespace"
	fi
}

prepare() {
	select_keys
	INIT_NETNS=$(in_init_netns)
	gather
	compute
	classify
	if [ "$INIT_NETNS" = no ] && [ "$GLOBAL_ROOT" = /proc/sys ] && [ "$ONLY_NETNS" = 0 ]; then
		note "this is not the initial network namespace, but fs.* keys are host-global: writing them here changes the whole host (use --only-netns to leave them alone)"
	fi
}

# ----------------------------------------------------------------------------
# The file-descriptor limit ringcast will really get
# ----------------------------------------------------------------------------
UNIT_NOFILE=
UNIT_NOFILE_SRC=

# Hard part of a systemd LimitNOFILE= value ("N", "soft:hard", "infinity").
limit_hard() { local v=$1; v=${v##*:}; echo "$v"; }

unit_nofile() {
	UNIT_NOFILE='' UNIT_NOFILE_SRC=''
	local -a dirs=("$ETC_DIR/systemd/system") dropins=() files=()
	local d f unit='' line val='' b
	local -A seen=()
	if [ "$ETC_DIR" = /etc ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		if [ "$(systemctl show --property=LoadState --value ringcast.service 2>/dev/null)" = loaded ]; then
			UNIT_NOFILE=$(systemctl show --property=LimitNOFILE --value ringcast.service 2>/dev/null)
			UNIT_NOFILE_SRC="systemctl show ringcast.service"
			[ -n "$UNIT_NOFILE" ] && return 0
		fi
		return 1
	fi
	if [ "$ETC_DIR" = /etc ]; then
		dirs+=(/run/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system)
	fi
	for d in "${dirs[@]}"; do
		if [ -f "$d/ringcast.service" ]; then unit=$d/ringcast.service; break; fi
	done
	# drop-ins from every directory; the same file name in a
	# higher-priority directory hides the others; applied in name order.
	for d in "${dirs[@]}"; do
		for f in "$d"/ringcast.service.d/*.conf; do
			[ -f "$f" ] || continue
			b=${f##*/}
			[ -n "${seen[$b]:-}" ] && continue
			seen[$b]=1
			dropins+=("$b	$f")
		done
	done
	[ -n "$unit" ] || [ ${#dropins[@]} -gt 0 ] || return 1
	[ -z "$unit" ] || files+=("$unit")
	if [ ${#dropins[@]} -gt 0 ]; then
		while IFS=$'\t' read -r b f; do files+=("$f"); done < <(printf '%s\n' "${dropins[@]}" | sort)
	fi
	for f in "${files[@]}"; do
		while IFS= read -r line || [ -n "$line" ]; do
			line=$(norm "$line")
			case $line in
			LimitNOFILE=*) val=${line#LimitNOFILE=}; val=${val// /}; UNIT_NOFILE_SRC=$f ;;
			esac
		done <"$f"
	done
	if [ -z "$val" ]; then
		# the unit exists but sets no limit: systemd's DefaultLimitNOFILE= applies
		UNIT_NOFILE="unset"
		UNIT_NOFILE_SRC="${files[*]} (no LimitNOFILE=: DefaultLimitNOFILE applies)"
		return 0
	fi
	UNIT_NOFILE=$(limit_hard "$val")
	return 0
}

# Sets LIMIT_LABEL, LIMIT_CUR, LIMIT_STATUS (ok|low), LIMIT_NOTE
limit_row() {
	local cur
	LIMIT_NOTE=
	if [ "$ROLE" = server ] && unit_nofile; then
		LIMIT_LABEL="LimitNOFILE (ringcast.service)"
		cur=$UNIT_NOFILE
		LIMIT_NOTE="from $UNIT_NOFILE_SRC"
	else
		LIMIT_LABEL="RLIMIT_NOFILE (this shell, hard)"
		cur=$(ulimit -Hn)
		if [ "$ROLE" = server ]; then
			LIMIT_NOTE="no ringcast.service under $ETC_DIR: checked this shell's hard limit; install tuning/systemd/ringcast.service or apply --persist"
		else
			LIMIT_NOTE="the load generator inherits this shell's limit; apply --persist writes limits.d (new logins)"
		fi
	fi
	LIMIT_CUR=$cur
	case $cur in
	infinity | unlimited) LIMIT_STATUS=ok ;;
	'' | *[!0-9]*) LIMIT_STATUS=low ;;
	*) if [ "$cur" -ge "$NOFILE" ]; then LIMIT_STATUS=ok; else LIMIT_STATUS=low; fi ;;
	esac
}

# ----------------------------------------------------------------------------
# plan
# ----------------------------------------------------------------------------
header() {
	local ns
	say "ringcast tuning for $N connections, role $ROLE"
	say "box: $(uname -sr), $(nproc 2>/dev/null || echo '?') CPUs, MemTotal $(human "$MEM_TOTAL") ($MEM_TOTAL_SRC), page $PAGE B"
	case $INIT_NETNS in
	yes) ns="the initial network namespace" ;;
	no) ns="network namespace net:[$(netns_id)], NOT the initial one" ;;
	*) ns="network namespace net:[$(netns_id)]" ;;
	esac
	say "running in $ns; host-global keys at $GLOBAL_ROOT$([ "$ONLY_NETNS" = 1 ] && echo ' (skipped: --only-netns)')"
}

cmd_plan() {
	local k cur req fmt
	prepare
	header
	say ""
	fmt='%-34s %-7s %-24s %-24s %s\n'
	# shellcheck disable=SC2059
	printf "$fmt" KEY SCOPE CURRENT REQUIRED REASON
	for k in "${ACTIVE[@]}"; do
		cur=${CUR[$k]}; req=${REQ[$k]}
		# shellcheck disable=SC2059
		printf "$fmt" "$k" "${SCOPE[$k]}" "$cur" "$req" "${WHY[$k]}"
		case ${STATUS[$k]} in
		absent) note "$k: $(absent_reason "$k")" ;;
		skipped) note "$k: host-global, skipped (--only-netns)" ;;
		esac
	done
	limit_row
	# shellcheck disable=SC2059
	printf "$fmt" "$LIMIT_LABEL" process "$LIMIT_CUR" "$NOFILE" "one fd per connection; must stay <= fs.nr_open"
	if [ "$ROLE" = loadgen ]; then
		# shellcheck disable=SC2059
		printf "$fmt" "source addresses" - - "$SRC_ADDRS" \
			"ceil($N / ($PORTS_PER_ADDR ports x $TARGETS target(s))): 127.0.0.2.. or extra IPs, IP_BIND_ADDRESS_NO_PORT"
	fi
	say ""
	memory_report
	say ""
	[ -z "$LIMIT_NOTE" ] || note "$LIMIT_LABEL: $LIMIT_NOTE"
	if [ "$ROLE" = server ]; then
		note "ringcast must pass a listen() backlog >= net.core.somaxconn; the kernel uses the smaller of the two"
	fi
	print_notes
	return 0
}

memory_report() {
	local pct verdict tcpmax
	say "memory for $N connections:"
	printf '  %-20s %8s x %5s B = %14s B  (%s)\n' "kernel sockets" "$N" "$KERNEL_BYTES" "$SOCK_BYTES" "$(human "$SOCK_BYTES")"
	printf '  %-20s %8s x %5s B = %14s B  (%s)' "ringcast" "$N" "$CLIENT_BYTES" "$APP_BYTES" "$(human "$APP_BYTES")"
	if [ "$SUBS_PER_CONN" -gt 1 ]; then
		printf '  %s B + %s extra subscriptions x %s B' "$PER_CONN_BYTES" $((SUBS_PER_CONN - 1)) "$PER_SUB_BYTES"
	fi
	printf '\n'
	if [ "$NO_CONNTRACK" = 0 ]; then
		printf '  %-20s %8s x %5s B = %14s B  (%s)  0 with the notrack rules (--no-conntrack)\n' \
			"conntrack entries" "$N" "$CONNTRACK_ENTRY_BYTES" "$CT_BYTES" "$(human "$CT_BYTES")"
	fi
	pct=$(awk -v t="$TOTAL_BYTES" -v m="$MEM_TOTAL" 'BEGIN { printf "%.1f", 100 * t / m }')
	if [ "$TOTAL_BYTES" -gt "$MEM_TOTAL" ]; then
		verdict="WARNING: does not fit in MemTotal"
	elif [ $((TOTAL_BYTES * 100)) -gt $((MEM_TOTAL * FIT_WARN_PERCENT)) ]; then
		verdict="WARNING: above ${FIT_WARN_PERCENT}% of MemTotal, too tight"
	else
		verdict="fits"
	fi
	printf '  %-20s %8s   %5s   = %14s B  (%s) = %s%% of MemTotal %s: %s\n' "total" "" "" "$TOTAL_BYTES" \
		"$(human "$TOTAL_BYTES")" "$pct" "$(human "$MEM_TOTAL")" "$verdict"
	tcpmax=${REQ[net.ipv4.tcp_mem]##* }
	say "  TCP buffers under load may add up to tcp_mem max: $tcpmax pages = $(human $((tcpmax * PAGE)))"
	if [ "$verdict" != fits ]; then
		note "memory: $verdict -- plan fewer connections per box, or more RAM"
	fi
}

# ----------------------------------------------------------------------------
# check
# ----------------------------------------------------------------------------
cmd_check() {
	local k low=0 ok=0 skip=0 warn=0 v
	prepare
	say "checking for $N connections, role $ROLE (host-global keys at $GLOBAL_ROOT)"
	for k in "${ACTIVE[@]}"; do
		case ${STATUS[$k]} in
		ok) printf 'OK    %-34s %s  (needs %s)\n' "$k" "${CUR[$k]}" "${REQ[$k]}"; ok=$((ok + 1)) ;;
		low) printf 'LOW   %-34s %s  (needs %s: %s)\n' "$k" "${CUR[$k]}" "${REQ[$k]}" "${WHY[$k]}"; low=$((low + 1)) ;;
		absent) printf 'SKIP  %-34s %s\n' "$k" "$(absent_reason "$k")"; skip=$((skip + 1)) ;;
		skipped) printf 'SKIP  %-34s host-global, skipped (--only-netns)\n' "$k"; skip=$((skip + 1)) ;;
		esac
	done
	limit_row
	if [ "$LIMIT_STATUS" = ok ]; then
		printf 'OK    %-34s %s  (needs %s)\n' "$LIMIT_LABEL" "$LIMIT_CUR" "$NOFILE"; ok=$((ok + 1))
	else
		printf 'LOW   %-34s %s  (needs %s; %s)\n' "$LIMIT_LABEL" "$LIMIT_CUR" "$NOFILE" "$LIMIT_NOTE"; low=$((low + 1))
	fi
	if [ "$ROLE" = server ] && v=$(read_value "$GLOBAL_ROOT/kernel/io_uring_disabled") && [ "$v" != 0 ]; then
		printf 'WARN  %-34s %s  (ringcast falls back to epoll; 0 enables io_uring for all)\n' kernel.io_uring_disabled "$v"
		warn=$((warn + 1))
	fi
	say "check: $low LOW, $ok OK, $skip SKIP, $warn WARN"
	[ "$low" -eq 0 ]
}

# ----------------------------------------------------------------------------
# Persisted files
# ----------------------------------------------------------------------------
persist_sysctl_conf() {
	local k
	say "# Written by scripts/tune.sh apply --persist: $N connections, role $ROLE."
	say "# The values applied on this box (never lower than what it had)."
	say "# Per-network-namespace keys in sysctl.d reach the initial namespace only."
	say "# Remove with: scripts/tune.sh revert"
	for k in "${ACTIVE[@]}"; do
		case ${STATUS[$k]} in ok | low) ;; *) continue ;; esac
		[ "${STATUS[$k]}" = ok ] || [ "${WRITABLE[$k]}" = 1 ] || continue
		say "$k = ${NEWV[$k]}"
	done
}

persist_limits_conf() {
	say "# Written by scripts/tune.sh apply --persist: $N connections."
	say "# pam_limits applies this to new login sessions only; systemd services"
	say "# take LimitNOFILE= from their unit. '*' does not cover root, hence both."
	printf '%-6s %-5s %-7s %s\n' '*' soft nofile "$NOFILE" '*' hard nofile "$NOFILE" \
		root soft nofile "$NOFILE" root hard nofile "$NOFILE"
}

persist_dropin() {
	say "# Written by scripts/tune.sh apply --persist: $N connections."
	say "# Must stay <= fs.nr_open: above it systemd quietly sets a smaller limit."
	say "[Service]"
	say "LimitNOFILE=$NOFILE"
}

conntrack_persisted() {
	[ "$NO_CONNTRACK" = 0 ] || return 1
	case ${STATUS[net.netfilter.nf_conntrack_buckets]:-} in ok | low) return 0 ;; esac
	return 1
}

persist_modprobe() {
	say "# Written by scripts/tune.sh apply --persist: size the conntrack hash at load."
	say "options nf_conntrack hashsize=${NEWV[net.netfilter.nf_conntrack_buckets]}"
}

persist_modules_load() {
	say "# Written by scripts/tune.sh apply --persist: load nf_conntrack before"
	say "# systemd-sysctl runs, so net.netfilter.* in sysctl.d take effect at boot."
	say "nf_conntrack"
}

# Fills PFILES (target paths) with content staged under RUN_TMP.
declare -a PFILES=()
declare -A PSTAGED=()
stage_persist_files() {
	local target gen i=0
	PFILES=()
	[ "$PERSIST" = 1 ] || return 0
	local -a plan=("$ETC_DIR/sysctl.d/61-ringcast-tune.conf:persist_sysctl_conf"
		"$ETC_DIR/security/limits.d/ringcast-tune.conf:persist_limits_conf")
	[ "$ROLE" = server ] && plan+=("$ETC_DIR/systemd/system/ringcast.service.d/61-ringcast-tune.conf:persist_dropin")
	if conntrack_persisted; then
		plan+=("$ETC_DIR/modprobe.d/ringcast-tune.conf:persist_modprobe"
			"$ETC_DIR/modules-load.d/ringcast-tune.conf:persist_modules_load")
	fi
	for target in "${plan[@]}"; do
		gen=${target##*:}; target=${target%:*}
		i=$((i + 1))
		"$gen" >"$RUN_TMP/staged.$i"
		if [ -f "$target" ] && cmp -s "$target" "$RUN_TMP/staged.$i"; then continue; fi
		PFILES+=("$target")
		PSTAGED[$target]=$RUN_TMP/staged.$i
	done
}

# ----------------------------------------------------------------------------
# State
# ----------------------------------------------------------------------------
# Lines (tab-separated):
#   version 1 | netns INODE | connections N | role R
#   sysctl KEY SCOPE PATH ORIGINAL APPLIED
#   file PATH BACKUP|-        (- : file did not exist, remove on revert)
#   dir PATH                  (created by apply, removed on revert if empty)
declare -a ST_LINES=()
declare -A ST_SYSCTL=() ST_FILE=() ST_DIR=()

load_state() {
	local line kind a
	ST_LINES=(); ST_SYSCTL=(); ST_FILE=(); ST_DIR=()
	[ -f "$STATE_FILE" ] || return 1
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in '#'* | '') continue ;; esac
		IFS=$'\t' read -r kind a _ <<<"$line"
		case $kind in
		version) [ "$a" = "$STATE_VERSION" ] || die "state $STATE_FILE has version $a, this script reads $STATE_VERSION" ;;
		sysctl) ST_SYSCTL[$a]=${#ST_LINES[@]} ;;
		file) ST_FILE[$a]=${#ST_LINES[@]} ;;
		dir) ST_DIR[$a]=${#ST_LINES[@]} ;;
		esac
		ST_LINES+=("$line")
	done <"$STATE_FILE"
	return 0
}

state_netns() {
	local line kind val
	for line in "${ST_LINES[@]}"; do
		IFS=$'\t' read -r kind val _ <<<"$line"
		if [ "$kind" = netns ]; then echo "$val"; return; fi
	done
	echo unknown
}

# Write ST_LINES atomically.
save_state() {
	local tmp=$STATE_FILE.tmp.$$ line
	{
		say "# ringcast-tune state: written by scripts/tune.sh apply, read by scripts/tune.sh revert"
		for line in "${ST_LINES[@]}"; do say "$line"; done
	} >"$tmp" 2>/dev/null && mv -f "$tmp" "$STATE_FILE" 2>/dev/null && return 0
	rm -f "$tmp"
	return 1
}

state_set() { # KIND KEY LINE
	local idx
	case $1 in
	sysctl) idx=${ST_SYSCTL[$2]:-} ;;
	file) idx=${ST_FILE[$2]:-} ;;
	dir) idx=${ST_DIR[$2]:-} ;;
	meta) idx= ;;
	esac
	if [ -n "$idx" ]; then ST_LINES[idx]=$3; return; fi
	idx=${#ST_LINES[@]}
	ST_LINES+=("$3")
	case $1 in
	sysctl) ST_SYSCTL[$2]=$idx ;;
	file) ST_FILE[$2]=$idx ;;
	dir) ST_DIR[$2]=$idx ;;
	esac
}

# ----------------------------------------------------------------------------
# apply
# ----------------------------------------------------------------------------
RUN_TMP=
STATE_EXISTED=0
STATE_DIR_CREATED=0
declare -a DONE_KEYS=() DONE_FILES=() DONE_DIRS=()
declare -A RUN_FILE_BACKUP=()

cleanup_run() { [ -z "$RUN_TMP" ] || rm -rf -- "$RUN_TMP"; }

# Give up before any value changed: leave the state dir as it was.
abort_apply() {
	if [ "$STATE_EXISTED" = 0 ]; then
		rm -f -- "$STATE_FILE"
		rm -rf -- "$STATE_DIR/files"
		if [ "$STATE_DIR_CREATED" = 1 ]; then rm -f -- "$STATE_DIR/lock"; rmdir -- "$STATE_DIR" 2>/dev/null; fi
	fi
	die "$@"
}

maybe_load_conntrack() {
	[ "$NO_CONNTRACK" = 0 ] || return 0
	[ "$ONLY_NETNS" = 0 ] || return 0
	[ -e "$GLOBAL_ROOT/net/netfilter/nf_conntrack_max" ] && return 0
	if [ "$GLOBAL_ROOT" != /proc/sys ]; then
		note "nf_conntrack keys absent under $GLOBAL_ROOT; not loading modules for a redirected global root"
		return 0
	fi
	if ! command -v modprobe >/dev/null 2>&1; then
		note "nf_conntrack is not loaded and there is no modprobe: conntrack keys skipped (nothing is tracked now; if a firewall loads it later, apply again)"
		return 0
	fi
	if [ "$DRY_RUN" = 1 ]; then
		say "would load nf_conntrack (modprobe nf_conntrack) to size it before a firewall rule starts tracking"
		return 0
	fi
	if modprobe nf_conntrack 2>/dev/null && [ -e "$GLOBAL_ROOT/net/netfilter/nf_conntrack_max" ]; then
		say "loaded nf_conntrack (no rule tracks anything until a firewall rule asks for it; its limit is now in place)"
	else
		note "could not load nf_conntrack: conntrack keys skipped"
	fi
}

rollback_run() {
	local i k p f b d err
	say "rolling back what this run changed:"
	for ((i = ${#DONE_FILES[@]} - 1; i >= 0; i--)); do
		f=${DONE_FILES[$i]}; b=${RUN_FILE_BACKUP[$f]:-}
		if [ -n "$b" ]; then cp -p -- "$b" "$f" && say "  restored $f"; else rm -f -- "$f" && say "  removed $f"; fi
	done
	for ((i = ${#DONE_DIRS[@]} - 1; i >= 0; i--)); do rmdir -- "${DONE_DIRS[$i]}" 2>/dev/null; done
	for ((i = ${#DONE_KEYS[@]} - 1; i >= 0; i--)); do
		k=${DONE_KEYS[$i]}; p=${PATHOF[$k]}
		if err=$(write_value "$p" "${CUR[$k]}") && [ "$(read_value "$p")" = "${CUR[$k]}" ]; then
			say "  $k back to ${CUR[$k]}"
		else
			say "  FAILED to put $k back to ${CUR[$k]}: ${err:-kernel kept $(read_value "$p")}"
		fi
	done
	if [ "$STATE_EXISTED" = 1 ]; then
		cp -p -- "$RUN_TMP/state.before" "$STATE_FILE"
	else
		rm -f -- "$STATE_FILE"
		rm -rf -- "$STATE_DIR/files"
		if [ "$STATE_DIR_CREATED" = 1 ]; then rm -f -- "$STATE_DIR/lock"; rmdir -- "$STATE_DIR" 2>/dev/null; fi
	fi
}

fail_run() {
	say "apply FAILED: $*" >&2
	rollback_run
	say "nothing from this run is left applied; exit 1"
	cleanup_run
	exit 1
}

on_signal() { fail_run "interrupted"; }

mkdir_recorded() { # create DIR and its missing parents, recording each
	local d=$1
	local -a missing=()
	while [ ! -d "$d" ]; do missing=("$d" "${missing[@]}"); d=$(dirname -- "$d"); done
	for d in "${missing[@]}"; do
		mkdir -- "$d" 2>/dev/null || return 1
		DONE_DIRS+=("$d")
		state_set dir "$d" "dir	$d"
	done
	return 0
}

cmd_apply() {
	local k p err got changed=0 unchanged=0 n_files i f backup state_ns
	local -a change=()
	[ "$DRY_RUN" = 1 ] || require_root
	RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ringcast-tune.XXXXXX") || die "cannot create a temp dir"
	trap cleanup_run EXIT

	maybe_load_conntrack
	prepare

	for k in "${ACTIVE[@]}"; do
		case ${STATUS[$k]} in
		ok) unchanged=$((unchanged + 1)) ;;
		absent) note "$k: $(absent_reason "$k"); skipped" ;;
		skipped) note "$k: host-global, skipped (--only-netns)" ;;
		low)
			if [ "${WRITABLE[$k]}" = 1 ]; then
				change+=("$k")
			else
				note "$k: read-only here (${PATHOF[$k]}; writable only from the initial network namespace); left at ${CUR[$k]}, needs ${REQ[$k]}"
			fi ;;
		esac
	done
	stage_persist_files
	n_files=${#PFILES[@]}
	limit_row
	if [ "$PERSIST" = 0 ] && [ "$LIMIT_STATUS" = low ]; then
		note "$LIMIT_LABEL is $LIMIT_CUR, needs $NOFILE: not a sysctl; set LimitNOFILE=$NOFILE in ringcast.service or use --persist"
	fi

	if [ ${#change[@]} -eq 0 ] && [ "$n_files" -eq 0 ]; then
		say "nothing to change: every setting already meets $N connections ($unchanged already OK)"
		print_notes
		return 0
	fi

	if [ "$DRY_RUN" = 1 ]; then
		say "dry run: $N connections, role $ROLE; nothing is changed"
		for k in "${change[@]}"; do say "would set $k: ${CUR[$k]} -> ${NEWV[$k]}  (${PATHOF[$k]})"; done
		for f in "${PFILES[@]}"; do
			if [ -f "$f" ]; then say "would rewrite $f"; else say "would write $f"; fi
		done
		say "would save the originals in $STATE_FILE"
		print_notes
		return 0
	fi

	# ---- state first: originals are on disk before anything changes ----
	if [ -d "$STATE_DIR" ]; then :; else
		{ mkdir -p -- "$STATE_DIR" && chmod 0700 -- "$STATE_DIR"; } || die "cannot create state dir $STATE_DIR"
		STATE_DIR_CREATED=1
	fi
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$STATE_DIR/lock" || abort_apply "cannot open $STATE_DIR/lock"
		flock -n 9 || abort_apply "another $PROG apply/revert holds $STATE_DIR/lock"
	fi
	if load_state; then
		STATE_EXISTED=1
		cp -p -- "$STATE_FILE" "$RUN_TMP/state.before"
		state_ns=$(state_netns)
		for k in "${change[@]}"; do
			if [ "${SCOPE[$k]}" = netns ] && [ "$state_ns" != "$(netns_id)" ]; then
				abort_apply "$STATE_FILE belongs to network namespace net:[$state_ns], this is net:[$(netns_id)]; revert there first, or use another --state-dir"
			fi
		done
	else
		state_set meta version "version	$STATE_VERSION"
		state_set meta netns "netns	$(netns_id)"
	fi
	for k in "${change[@]}"; do
		if [ -n "${ST_SYSCTL[$k]:-}" ]; then
			# keep the original from the first apply; update the applied value
			IFS=$'\t' read -r _ _ _ p got _ <<<"${ST_LINES[${ST_SYSCTL[$k]}]}"
			state_set sysctl "$k" "sysctl	$k	${SCOPE[$k]}	$p	$got	${NEWV[$k]}"
		else
			state_set sysctl "$k" "sysctl	$k	${SCOPE[$k]}	${PATHOF[$k]}	${CUR[$k]}	${NEWV[$k]}"
		fi
	done
	mkdir -p -- "$STATE_DIR/files" 2>/dev/null
	i=0
	for f in "${PFILES[@]}"; do
		i=$((i + 1))
		if [ -f "$f" ]; then
			cp -p -- "$f" "$RUN_TMP/pre.$i" || abort_apply "cannot read $f"
			RUN_FILE_BACKUP[$f]=$RUN_TMP/pre.$i
		fi
		[ -z "${ST_FILE[$f]:-}" ] || continue
		backup=-
		if [ -f "$f" ]; then
			backup=$STATE_DIR/files/$(printf '%s' "$f" | tr '/' '%')
			cp -p -- "$f" "$backup" || abort_apply "cannot back up $f"
		fi
		state_set file "$f" "file	$f	$backup"
	done
	save_state || abort_apply "cannot write $STATE_FILE; nothing changed"

	# ---- change sysctls ----
	trap on_signal INT TERM HUP
	for k in "${change[@]}"; do
		p=${PATHOF[$k]}
		DONE_KEYS+=("$k")
		if ! err=$(write_value "$p" "${NEWV[$k]}"); then
			fail_run "$k: writing '${NEWV[$k]}' to $p: $err"
		fi
		got=$(read_value "$p")
		[ "$got" = "${NEWV[$k]}" ] || fail_run "$k: wrote '${NEWV[$k]}' but the kernel keeps '$got'"
		say "set $k: ${CUR[$k]} -> ${NEWV[$k]}"
		changed=$((changed + 1))
	done

	# ---- persist ----
	for f in "${PFILES[@]}"; do
		mkdir_recorded "$(dirname -- "$f")" || fail_run "cannot create $(dirname -- "$f")"
		DONE_FILES+=("$f")
		if ! err=$(cp -- "${PSTAGED[$f]}" "$f" 2>&1); then fail_run "writing $f: $err"; fi
		say "wrote $f"
	done
	if [ ${#DONE_DIRS[@]} -gt 0 ]; then save_state || fail_run "cannot update $STATE_FILE"; fi
	trap - INT TERM HUP

	say "applied: $changed changed, $unchanged already OK, $n_files file(s) written; originals saved in $STATE_FILE"
	if [ "$n_files" -gt 0 ] && [ "$ROLE" = server ]; then
		note "run 'systemctl daemon-reload' so ringcast.service picks up the drop-in"
	fi
	print_notes
	return 0
}

# ----------------------------------------------------------------------------
# revert
# ----------------------------------------------------------------------------
cmd_revert() {
	local i line kind key scope path orig applied backup cur err here state_ns=unknown
	local restored=0 same=0 failed=0 nfiles=0
	local -a keep=()
	[ "$DRY_RUN" = 1 ] || require_root
	if ! load_state; then
		say "nothing to revert: no state in $STATE_DIR"
		return 0
	fi
	if [ "$DRY_RUN" = 0 ] && command -v flock >/dev/null 2>&1; then
		exec 9>"$STATE_DIR/lock" || die "cannot open $STATE_DIR/lock"
		flock -n 9 || die "another $PROG apply/revert holds $STATE_DIR/lock"
	fi
	here=$(netns_id)
	state_ns=$(state_netns)
	for line in "${ST_LINES[@]}"; do
		IFS=$'\t' read -r kind key scope _ <<<"$line"
		if [ "$kind" = sysctl ] && [ "$scope" = netns ] && [ "$state_ns" != "$here" ]; then
			die "state was written in network namespace net:[$state_ns], this is net:[$here]; run revert there (e.g. ip netns exec NAME $0 revert)"
		fi
	done

	for ((i = ${#ST_LINES[@]} - 1; i >= 0; i--)); do
		line=${ST_LINES[$i]}
		IFS=$'\t' read -r kind key <<<"$line"
		case $kind in
		sysctl)
			IFS=$'\t' read -r kind key scope path orig applied <<<"$line"
			if ! cur=$(read_value "$path"); then
				say "FAILED $key: $path is gone; original was $orig"
				failed=$((failed + 1)); keep=("$line" "${keep[@]}"); continue
			fi
			if [ "$cur" = "$orig" ]; then
				say "$key already $orig"; same=$((same + 1)); continue
			fi
			[ "$cur" = "$applied" ] || say "note: $key is $cur, not the $applied apply set; restoring the original anyway"
			if [ "$DRY_RUN" = 1 ]; then say "would restore $key: $cur -> $orig"; continue; fi
			if err=$(write_value "$path" "$orig") && [ "$(read_value "$path")" = "$orig" ]; then
				say "restored $key: $cur -> $orig"; restored=$((restored + 1))
			else
				say "FAILED to restore $key to $orig: ${err:-kernel keeps $(read_value "$path")}"
				failed=$((failed + 1)); keep=("$line" "${keep[@]}")
			fi ;;
		file)
			IFS=$'\t' read -r kind path backup <<<"$line"
			if [ "$DRY_RUN" = 1 ]; then
				if [ "$backup" = - ]; then say "would remove $path"; else say "would restore $path from $backup"; fi
				continue
			fi
			if [ "$backup" = - ]; then
				if rm -f -- "$path"; then say "removed $path"; nfiles=$((nfiles + 1)); else failed=$((failed + 1)); keep=("$line" "${keep[@]}"); fi
			else
				if cp -p -- "$backup" "$path"; then say "restored $path"; nfiles=$((nfiles + 1)); else failed=$((failed + 1)); keep=("$line" "${keep[@]}"); fi
			fi ;;
		esac
	done
	# directories apply created, deepest first, once their files are gone
	for ((i = ${#ST_LINES[@]} - 1; i >= 0; i--)); do
		IFS=$'\t' read -r kind path <<<"${ST_LINES[$i]}"
		[ "$kind" = dir ] || continue
		if [ "$DRY_RUN" = 1 ]; then say "would remove directory $path if empty"; continue; fi
		rmdir -- "$path" 2>/dev/null || true
	done
	if [ "$DRY_RUN" = 1 ]; then say "dry run: nothing restored"; return 0; fi
	if [ "$failed" -gt 0 ]; then
		ST_LINES=("version	$STATE_VERSION" "netns	$state_ns" "${keep[@]}")
		save_state || say "FAILED to rewrite $STATE_FILE"
		say "revert: $restored restored, $same unchanged, $failed FAILED; the failed entries stay in $STATE_FILE"
		return 1
	fi
	rm -f -- "$STATE_FILE"
	rm -rf -- "$STATE_DIR/files"
	rm -f -- "$STATE_DIR/lock"
	rmdir -- "$STATE_DIR" 2>/dev/null || true
	say "reverted: $restored value(s) restored, $same already at the original, $nfiles file(s) restored/removed; state removed"
	return 0
}

# ----------------------------------------------------------------------------
main() {
	[ $# -ge 1 ] || { usage_main >&2; exit 64; }
	CMD=$1; shift
	case $CMD in
	-h | --help | help)
		if [ $# -ge 1 ]; then usage_for "$1"; else usage_main; fi
		exit 0 ;;
	plan | check | apply | revert) ;;
	*) echo "$PROG: unknown command '$CMD'" >&2; usage_main >&2; exit 64 ;;
	esac
	parse_args "$@"
	if [ "$SHOW_HELP" = 1 ]; then usage_for "$CMD"; exit 0; fi
	case $CMD in
	plan) cmd_plan ;;
	check) cmd_check ;;
	apply) cmd_apply ;;
	revert) cmd_revert ;;
	esac
}

main "$@"
