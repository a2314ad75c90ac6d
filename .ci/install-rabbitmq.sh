#!/usr/bin/env bash
# install-rabbitmq.sh installs Debian's rabbitmq-server (with its MQTT plugin),
# which .ci/rabbitmq-cluster.sh runs as a three-node cluster on loopback ports.
#
# Like install-deps.sh it is idempotent and silent when the server is already
# there, serialises concurrent callers with flock (the same lock, so it never
# runs apt beside install-deps.sh), installs only as root or with passwordless
# sudo, and exits non-zero saying what is missing otherwise.
set -euo pipefail

LOCK_FILE="${SMARTBOX_DEPS_LOCK:-/tmp/smartboxd-install-deps.lock}"
RABBITMQ_HOME_DIR=/usr/lib/rabbitmq

have_rabbitmq() {
	[ -x "$RABBITMQ_HOME_DIR/bin/rabbitmq-server" ] &&
		[ -x "$RABBITMQ_HOME_DIR/bin/rabbitmqctl" ] &&
		compgen -G "$RABBITMQ_HOME_DIR/lib/rabbitmq_server-*/plugins/rabbitmq_mqtt-*" >/dev/null
}

if have_rabbitmq; then
	exit 0
fi

die() {
	echo "install-rabbitmq: $*" >&2
	exit 1
}

as_root=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		as_root=(sudo -n)
	else
		die "rabbitmq-server is not installed and this user cannot install it; run as root: apt-get install rabbitmq-server"
	fi
fi
command -v apt-get >/dev/null 2>&1 || die "rabbitmq-server is not installed and apt-get is not available; install it by hand"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is required to install rabbitmq-server safely"

exec 9>>"$LOCK_FILE" || die "cannot open lock file $LOCK_FILE"
flock -w 900 9 || die "timed out waiting for another install to finish ($LOCK_FILE)"

if have_rabbitmq; then
	exit 0
fi

log="$(mktemp "${TMPDIR:-/tmp}/install-rabbitmq.XXXXXX")"
trap 'rm -f "$log"' EXIT

echo "install-rabbitmq: installing rabbitmq-server" >&2
if ! "${as_root[@]}" apt-get update >"$log" 2>&1; then
	cat "$log" >&2
	die "apt-get update failed"
fi
if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y --no-install-recommends rabbitmq-server >>"$log" 2>&1; then
	cat "$log" >&2
	die "apt-get install rabbitmq-server failed"
fi

# The package may start a system node (rabbit@HOST on 5672, and epmd on
# 4369). The cluster script runs its own nodes with their own epmd, so stop
# and disable the service; without an init system these fail, which is fine.
{
	"${as_root[@]}" service rabbitmq-server stop
	"${as_root[@]}" systemctl stop rabbitmq-server
	"${as_root[@]}" systemctl disable rabbitmq-server
	"${as_root[@]}" update-rc.d rabbitmq-server disable
	"${as_root[@]}" systemctl stop epmd.socket epmd.service
	"${as_root[@]}" systemctl disable epmd.socket epmd.service
} >/dev/null 2>&1 || true

have_rabbitmq || die "rabbitmq-server was installed but $RABBITMQ_HOME_DIR/bin/rabbitmq-server or its MQTT plugin is missing"
echo "install-rabbitmq: rabbitmq-server installed" >&2
