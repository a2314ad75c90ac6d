#!/usr/bin/env bash
# rabbitmq-cluster.sh runs a RabbitMQ cluster with its MQTT plugin on loopback
# ports, for tests that need a clustered MQTT broker.
#
#   rabbitmq-cluster.sh start  [DIR [NODES]]  start NODES (default 3) nodes and cluster them
#   rabbitmq-cluster.sh stop   [DIR]          stop every node and the cluster's epmd
#   rabbitmq-cluster.sh status [DIR]          one line per node; exit 0 only if all are up
#   rabbitmq-cluster.sh kill-node  DIR N      SIGKILL node N's Erlang VM (N counts from 1)
#   rabbitmq-cluster.sh start-node DIR N      start node N again; it rejoins the cluster
#   rabbitmq-cluster.sh start-nodes DIR       start every node that is down, together
#   rabbitmq-cluster.sh ctl DIR N ARGS...     run rabbitmqctl ARGS against node N
#
# DIR defaults to $RABBIT_CLUSTER_DIR or /tmp/smartboxd-rabbit. Everything the
# cluster writes stays in DIR: the Erlang cookie (HOME is DIR), each node's
# configuration, database and logs under DIR/node-N, and DIR/cluster.env, which
# lists the ports as KEY=VALUE lines (NODES, EPMD_PORT, NODE_N_NAME,
# NODE_N_AMQP, NODE_N_DIST, NODE_N_MQTT).
#
# The nodes are rabbit-N@localhost. Every port is on 127.0.0.1 and taken from
# one block of 100 below the ephemeral range: epmd at the base, node N's AMQP,
# distribution and MQTT ports at base+10N, +1 and +2, and rabbitmqctl's own
# distribution ports at base+70..89. The cluster has its own epmd on its own
# port, so it never touches a system epmd on 4369, and several clusters (in
# different DIRs) can run at once. Every process the script starts carries
# SMARTBOX_RABBIT_DIR=DIR in its environment; stop ends exactly those.
#
# Environment:
#   RABBIT_MQTT_QUEUE_TYPE  classic (default) or quorum: the queue type of
#                           persistent sessions (mqtt.durable_queue_type).
#                           Classic session queues are mirrored to every node
#                           by the policy "mqtt-sessions".
#   RABBIT_START_TIMEOUT    seconds to wait for a node to come up (default 180:
#                           a node boots in seconds, but minutes on a loaded machine).
#
# MQTT settings, and what they mean for a client (RabbitMQ 3.10):
#   - Anonymous clients are let in as guest, which RabbitMQ allows only from
#     loopback; vhost "/", exchange amq.topic.
#   - A persistent session (clean session off) is a durable queue named
#     mqtt-subscription-<client id>qos1 on the node the client first
#     subscribed through. mqtt.subscription_ttl is infinity, so the queue is
#     kept however long the client is away (the plugin's default is 24 h).
#   - Retained messages are kept in a DETS file on each node and are NOT
#     replicated: a message retained through node 1 is seen only by clients
#     that subscribe through node 1, and is gone with node 1's disk.
#   - Client ids are tracked cluster-wide with Raft (mqtt_node): a second
#     connection with the same id, on any node, closes the first. New MQTT
#     connections need a majority of nodes up, so two-node clusters are not
#     supported.
set -euo pipefail

RABBITMQ_BIN=/usr/lib/rabbitmq/bin
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
START_TIMEOUT="${RABBIT_START_TIMEOUT:-180}"
QUEUE_TYPE="${RABBIT_MQTT_QUEUE_TYPE:-classic}"
MAX_NODES=6

die() {
	echo "rabbitmq-cluster: $*" >&2
	exit 1
}

note() {
	echo "rabbitmq-cluster: $*" >&2
}

usage() {
	sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# abs_dir prints the absolute form of a directory, creating it.
abs_dir() {
	mkdir -p "$1"
	(cd "$1" && pwd -P)
}

# port_busy reports whether something accepts TCP connections on 127.0.0.1:$1.
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

load_env() {
	[ -f "$DIR/cluster.env" ] || die "no cluster in $DIR (no cluster.env); run start first"
	# shellcheck disable=SC1091
	. "$DIR/cluster.env"
}

# node_env N prints node N's environment, one NAME=VALUE a line, for env(1).
node_env() {
	local n=$1 nd="$DIR/node-$1"
	local amqp="NODE_${n}_AMQP" dist="NODE_${n}_DIST"
	local loopback_dist='-kernel inet_dist_use_interface {127,0,0,1}'
	cat <<EOF
SMARTBOX_RABBIT_DIR=$DIR
HOME=$DIR
ERL_EPMD_PORT=$EPMD_PORT
ERL_EPMD_ADDRESS=127.0.0.1
ERL_CRASH_DUMP=$nd/erl_crash.dump
RABBITMQ_CONF_ENV_FILE=$DIR/rabbitmq-env.conf
RABBITMQ_NODENAME=rabbit-$n@localhost
RABBITMQ_USE_LONGNAME=false
RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
RABBITMQ_NODE_PORT=${!amqp}
RABBITMQ_DIST_PORT=${!dist}
RABBITMQ_MNESIA_BASE=$nd/mnesia
RABBITMQ_LOG_BASE=$nd/log
RABBITMQ_CONFIG_FILE=$nd/rabbitmq.conf
RABBITMQ_ADVANCED_CONFIG_FILE=$nd/advanced.config
RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/enabled_plugins
RABBITMQ_ENABLED_PLUGINS=rabbitmq_mqtt
RABBITMQ_PID_FILE=$nd/pid
RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=$loopback_dist
RABBITMQ_CTL_ERL_ARGS=$loopback_dist
RABBITMQ_CTL_DIST_PORT_MIN=$((BASE + 70))
RABBITMQ_CTL_DIST_PORT_MAX=$((BASE + 89))
EOF
}

# in_env N CMD... runs CMD with node N's environment (and nothing else of
# rabbitmq's from the caller), in DIR.
in_env() {
	local n=$1
	shift
	local vars=()
	mapfile -t vars < <(node_env "$n")
	(cd "$DIR" && env -u RABBITMQ_NODENAME -u RABBITMQ_CONFIG_FILE "${vars[@]}" "$@")
}

ctl() {
	local n=$1
	shift
	in_env "$n" "$RABBITMQ_BIN/rabbitmqctl" -n "rabbit-$n@localhost" "$@"
}

# our_pids [PATTERN] prints the pids of processes started for DIR whose
# command name matches PATTERN (an extended regexp; any when empty).
our_pids() {
	local want="${1:-}" p comm
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = "$$" ] && continue
		[ "$p" = "$BASHPID" ] && continue
		if tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qxF "SMARTBOX_RABBIT_DIR=$DIR"; then
			comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
			if [ -z "$want" ] || [[ $comm =~ $want ]]; then
				echo "$p"
			fi
		fi
	done
}

# beam_pid N prints node N's Erlang VM pid when it is running.
beam_pid() {
	local n=$1 p
	p=$(cat "$DIR/node-$n/pid" 2>/dev/null) || return 1
	[ -n "$p" ] && [ -r "/proc/$p/environ" ] || return 1
	tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" |
		grep -qxF "RABBITMQ_MNESIA_BASE=$DIR/node-$n/mnesia" || return 1
	echo "$p"
}

pick_ports() {
	local try base p busy n
	for try in $(seq 1 30); do
		base=$(((RANDOM % 120) * 100 + 20000)) # 20000..31900
		busy=
		for p in "$base" $(seq $((base + 10)) $((base + 89))); do
			if port_busy "$p"; then
				busy=$p
				break
			fi
		done
		[ -z "$busy" ] && {
			BASE=$base
			return 0
		}
	done
	die "found no free block of 100 loopback ports in 20000-31999"
}

write_files() {
	local n
	rm -rf "$DIR"/node-*
	{
		echo "BASE=$BASE"
		echo "NODES=$NODES"
		echo "EPMD_PORT=$BASE"
		echo "QUEUE_TYPE=$QUEUE_TYPE"
		for n in $(seq 1 "$NODES"); do
			echo "NODE_${n}_NAME=rabbit-$n@localhost"
			echo "NODE_${n}_AMQP=$((BASE + 10 * n))"
			echo "NODE_${n}_DIST=$((BASE + 10 * n + 1))"
			echo "NODE_${n}_MQTT=$((BASE + 10 * n + 2))"
		done
	} >"$DIR/cluster.env.tmp"
	mv "$DIR/cluster.env.tmp" "$DIR/cluster.env"
	load_env
	: >"$DIR/rabbitmq-env.conf"
	echo '[rabbitmq_mqtt].' >"$DIR/enabled_plugins"
	if [ ! -s "$DIR/.erlang.cookie" ]; then
		rm -f "$DIR/.erlang.cookie"
		(umask 077 && head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$DIR/.erlang.cookie")
		chmod 400 "$DIR/.erlang.cookie"
	fi
	for n in $(seq 1 "$NODES"); do
		local nd="$DIR/node-$n" mqtt="NODE_${n}_MQTT"
		mkdir -p "$nd/mnesia" "$nd/log"
		cat >"$nd/rabbitmq.conf" <<EOF
# rabbitmq.conf of rabbit-$n@localhost, written by .ci/rabbitmq-cluster.sh
log.console = false
log.file.level = info
# Loopback only: AMQP (RABBITMQ_NODE_IP_ADDRESS/RABBITMQ_NODE_PORT) and
# distribution (inet_dist_use_interface) are set in the environment.
mqtt.listeners.tcp.1 = 127.0.0.1:${!mqtt}
mqtt.listeners.ssl = none
mqtt.allow_anonymous = true
mqtt.default_user = guest
mqtt.default_pass = guest
mqtt.vhost = /
mqtt.exchange = amq.topic
# Keep a persistent session's queue however long its client is away.
mqtt.subscription_ttl = infinity
# At most this many unacknowledged QoS 1 deliveries per subscription queue.
mqtt.prefetch = 10
mqtt.durable_queue_type = $QUEUE_TYPE
mqtt.retained_message_store = rabbit_mqtt_retained_msg_store_dets
mqtt.retained_message_store_dets_sync_interval = 1000
mqtt.tcp_listen_options.backlog = 1024
mqtt.tcp_listen_options.nodelay = true
# The core's limit on one message (the 3.10 default, 128 MiB); payloads of
# the daemon are at most 256 KiB.
max_message_size = 134217728
# Several clusters and the tests share one small machine.
vm_memory_high_watermark.relative = 0.2
disk_free_limit.absolute = 100MB
EOF
		if [ "$n" -gt 1 ]; then
			# Join node 1 when first booted, retrying until node 1's
			# database is up; cmd_start falls back to join_cluster
			# for a node that came up on its own all the same.
			cat >>"$nd/rabbitmq.conf" <<EOF
cluster_formation.peer_discovery_backend = classic_config
cluster_formation.classic_config.nodes.1 = rabbit-1@localhost
cluster_formation.discovery_retry_limit = $((START_TIMEOUT * 2))
cluster_formation.discovery_retry_interval = 500
EOF
		fi
		echo '[].' >"$nd/advanced.config"
	done
}

# close_fds closes every descriptor above 2, so that a daemon holds no pipe
# of whoever ran this script (which would wait for it to close).
close_fds() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
	done
	return 0
}

# launch N starts node N in the background, in its own session.
launch() {
	local n=$1
	rm -f "$DIR/node-$n/pid"
	(
		close_fds
		in_env "$n" setsid "$RABBITMQ_BIN/rabbitmq-server"
	) >>"$DIR/node-$n/server.out" 2>&1 </dev/null &
	# This subshell lives exactly as long as the node's VM.
	echo $! >"$DIR/node-$n/launcher.pid"
}

# show_log N prints the end of node N's output and log to stderr.
show_log() {
	local n=$1
	{
		echo "--- rabbit-$n@localhost: end of server.out"
		tail -n 15 "$DIR/node-$n/server.out"
		echo "--- rabbit-$n@localhost: end of its log"
		tail -n 40 "$DIR/node-$n/log/rabbit-$n@localhost.log"
	} >&2 2>/dev/null || true
}

# wait_node N waits until node N's MQTT listener accepts connections, which
# it opens as the last step of its boot. It returns 1 when the node exits
# first, and fails when the node is still booting after START_TIMEOUT.
wait_node() {
	local n=$1 mqtt="NODE_$1_MQTT" deadline=$((SECONDS + START_TIMEOUT))
	local launcher
	launcher=$(cat "$DIR/node-$n/launcher.pid")
	until port_busy "${!mqtt}"; do
		if ! kill -0 "$launcher" 2>/dev/null; then
			show_log "$n"
			note "rabbit-$n@localhost exited while booting (logs in $DIR/node-$n)"
			return 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			show_log "$n"
			die "rabbit-$n@localhost did not listen on 127.0.0.1:${!mqtt} within ${START_TIMEOUT}s (logs in $DIR/node-$n)"
		fi
		sleep 0.2
	done
}

start_epmd() {
	local vars=()
	mapfile -t vars < <(node_env 1)
	(
		close_fds
		cd "$DIR"
		exec env "${vars[@]}" setsid epmd -port "$EPMD_PORT" -address 127.0.0.1
	) >>"$DIR/epmd.out" 2>&1 </dev/null &
	local deadline=$((SECONDS + 10))
	until port_busy "$EPMD_PORT"; do
		[ $SECONDS -lt $deadline ] || die "epmd did not listen on 127.0.0.1:$EPMD_PORT"
		sleep 0.05
	done
}

# running_nodes N prints the running nodes of node N's cluster, one a line.
running_nodes() {
	ctl "$1" -q cluster_status --formatter json |
		grep -o '"running_nodes":\[[^]]*\]' | grep -o 'rabbit-[0-9]*@localhost' | sort -u
}

cmd_start() {
	case "$NODES" in
	'' | *[!0-9]*) die "NODES must be a number, got '$NODES'" ;;
	esac
	[ "$NODES" -ge 1 ] && [ "$NODES" -le $MAX_NODES ] || die "NODES must be 1 to $MAX_NODES, got $NODES"
	case "$QUEUE_TYPE" in
	classic | quorum) ;;
	*) die "RABBIT_MQTT_QUEUE_TYPE must be classic or quorum, got '$QUEUE_TYPE'" ;;
	esac
	bash "$SCRIPT_DIR/install-rabbitmq.sh"
	command -v epmd >/dev/null 2>&1 || die "epmd (Erlang) is not installed"
	if [ -n "$(our_pids)" ]; then
		die "a cluster is already running in $DIR; stop it first"
	fi
	local t0=$SECONDS n
	pick_ports
	write_files
	start_epmd
	# Node 1 first, then the others together: each joins node 1 as it
	# boots (classic_config peer discovery), which saves restarting it.
	# A node must not join node 1 before node 1 has finished its first
	# boot (it would find node 1's tables half migrated and stop with
	# schema_integrity_check_failed); one that fails anyway is wiped and
	# booted once more.
	launch 1
	wait_node 1 || die "rabbit-1@localhost did not boot"
	for n in $(seq 2 "$NODES"); do
		launch "$n"
	done
	for n in $(seq 2 "$NODES"); do
		if ! wait_node "$n"; then
			note "booting rabbit-$n@localhost again from scratch"
			rm -rf "$DIR/node-$n/mnesia"
			mkdir -p "$DIR/node-$n/mnesia"
			launch "$n"
			wait_node "$n" || die "rabbit-$n@localhost did not boot twice"
		fi
	done
	local members
	members=$(running_nodes 1)
	for n in $(seq 2 "$NODES"); do
		if ! grep -qxF "rabbit-$n@localhost" <<<"$members"; then
			note "rabbit-$n@localhost booted on its own; joining it to rabbit-1@localhost"
			ctl "$n" -q stop_app >/dev/null
			ctl "$n" -q join_cluster "rabbit-1@localhost" >/dev/null
			ctl "$n" -q start_app >/dev/null
		fi
	done
	if [ "$QUEUE_TYPE" = classic ] && [ "$NODES" -gt 1 ]; then
		ctl 1 -q set_policy --apply-to queues --priority 0 mqtt-sessions '^mqtt-subscription-' \
			'{"ha-mode":"all","ha-sync-mode":"automatic"}' >/dev/null
	fi
	local running
	running=$(running_nodes 1 | wc -l)
	[ "$running" -eq "$NODES" ] || die "cluster has $running running nodes, want $NODES (logs in $DIR)"
	note "$NODES nodes up in $((SECONDS - t0))s; MQTT on$(for n in $(seq 1 "$NODES"); do v="NODE_${n}_MQTT"; printf ' 127.0.0.1:%s' "${!v}"; done)"
}

cmd_start_node() {
	load_env
	local n=$1
	[ "$n" -ge 1 ] && [ "$n" -le "$NODES" ] || die "no node $n (the cluster has $NODES)"
	beam_pid "$n" >/dev/null && die "rabbit-$n@localhost is already running"
	port_busy "$EPMD_PORT" || start_epmd
	launch "$n"
	wait_node "$n" || die "rabbit-$n@localhost did not boot"
}

# cmd_start_nodes boots every node that is not running at once and waits
# for each. After the whole cluster went down, a node waits as it boots for
# the tables of the peers that were running when it stopped, so the nodes
# must boot together: one started alone waits for the others, then fails.
# Booting together, each restoring its queues, they take longer than one:
# each gets twice START_TIMEOUT.
cmd_start_nodes() {
	load_env
	local n started=()
	START_TIMEOUT=$((START_TIMEOUT * 2))
	port_busy "$EPMD_PORT" || start_epmd
	for n in $(seq 1 "$NODES"); do
		beam_pid "$n" >/dev/null && continue
		launch "$n"
		started+=("$n")
	done
	for n in "${started[@]}"; do
		wait_node "$n" || die "rabbit-$n@localhost did not boot"
	done
}

cmd_kill_node() {
	load_env
	local n=$1 p
	[ "$n" -ge 1 ] && [ "$n" -le "$NODES" ] || die "no node $n (the cluster has $NODES)"
	p=$(beam_pid "$n") || die "rabbit-$n@localhost is not running"
	kill -KILL "$p"
	while [ -e "/proc/$p" ] && [ "$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)" != Z ]; do
		sleep 0.05
	done
}

cmd_stop() {
	[ -f "$DIR/cluster.env" ] || return 0
	load_env
	local n p pids=() deadline
	for n in $(seq 1 "$NODES"); do
		if p=$(beam_pid "$n"); then
			kill -TERM "$p" 2>/dev/null || true
			pids+=("$p")
		fi
	done
	deadline=$((SECONDS + 30))
	for p in "${pids[@]}"; do
		while [ -e "/proc/$p" ] && [ $SECONDS -lt $deadline ]; do
			sleep 0.1
		done
	done
	# Whatever is left (a node that would not stop, rabbitmqctl, epmd).
	for _ in 1 2 3; do
		mapfile -t pids < <(our_pids)
		[ ${#pids[@]} -eq 0 ] && break
		kill -KILL "${pids[@]}" 2>/dev/null || true
		sleep 0.2
	done
	[ -z "$(our_pids)" ] || die "processes of $DIR survived SIGKILL: $(our_pids | tr '\n' ' ')"
}

cmd_status() {
	load_env
	local n p v up=0
	for n in $(seq 1 "$NODES"); do
		v="NODE_${n}_MQTT"
		if p=$(beam_pid "$n") && port_busy "${!v}"; then
			echo "rabbit-$n@localhost up pid=$p mqtt=127.0.0.1:${!v}"
			up=$((up + 1))
		elif p=$(beam_pid "$n"); then
			echo "rabbit-$n@localhost starting pid=$p mqtt=127.0.0.1:${!v}"
		else
			echo "rabbit-$n@localhost down mqtt=127.0.0.1:${!v}"
		fi
	done
	[ "$up" -eq "$NODES" ]
}

[ $# -ge 1 ] || usage
action=$1
shift
DIR=$(abs_dir "${1:-${RABBIT_CLUSTER_DIR:-/tmp/smartboxd-rabbit}}")
case "$action" in
start)
	NODES=${2:-3}
	cmd_start
	;;
stop) cmd_stop ;;
status) cmd_status ;;
kill-node)
	[ $# -eq 2 ] || usage
	cmd_kill_node "$2"
	;;
start-node)
	[ $# -eq 2 ] || usage
	cmd_start_node "$2"
	;;
start-nodes)
	[ $# -eq 1 ] || usage
	cmd_start_nodes
	;;
ctl)
	[ $# -ge 3 ] || usage
	load_env
	n=$2
	shift 2
	ctl "$n" "$@"
	;;
*) usage ;;
esac
