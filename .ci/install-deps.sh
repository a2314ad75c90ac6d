#!/usr/bin/env bash
# install-deps.sh installs the system packages the tests need: Debian's
# mosquitto broker, which internal/mqtttest starts on free loopback ports.
#
# It is idempotent and silent when everything is already there, so tests and
# CI may call it freely. Concurrent callers are serialised with flock so that
# only one of them drives apt/dpkg. It installs only when running as root (or
# when passwordless sudo is available) and exits non-zero with a message
# saying what is missing otherwise.
set -euo pipefail

LOCK_FILE="${SMARTBOX_DEPS_LOCK:-/tmp/smartboxd-install-deps.lock}"

have_mosquitto() {
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]
}

if have_mosquitto; then
	exit 0
fi

die() {
	echo "install-deps: $*" >&2
	exit 1
}

as_root=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		as_root=(sudo -n)
	else
		die "mosquitto is not installed and this user cannot install it; run as root: apt-get install mosquitto"
	fi
fi
command -v apt-get >/dev/null 2>&1 || die "mosquitto is not installed and apt-get is not available; install the mosquitto broker by hand"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is required to install mosquitto safely"

exec 9>>"$LOCK_FILE" || die "cannot open lock file $LOCK_FILE"
flock -w 900 9 || die "timed out waiting for another install to finish ($LOCK_FILE)"

# Another caller may have installed it while we waited for the lock.
if have_mosquitto; then
	exit 0
fi

log="$(mktemp "${TMPDIR:-/tmp}/install-deps.XXXXXX")"
trap 'rm -f "$log"' EXIT

echo "install-deps: installing mosquitto" >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get update >"$log" 2>&1; then
	cat "$log" >&2
	die "apt-get update failed"
fi
if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y --no-install-recommends mosquitto >>"$log" 2>&1; then
	cat "$log" >&2
	die "apt-get install mosquitto failed"
fi

# The package may start a system broker on port 1883. Tests start their own
# brokers on free ports, so stop and disable the service; on machines without
# an init system these commands fail, which is fine.
{
	"${as_root[@]}" service mosquitto stop
	"${as_root[@]}" systemctl stop mosquitto
	"${as_root[@]}" systemctl disable mosquitto
	"${as_root[@]}" update-rc.d mosquitto disable
} >/dev/null 2>&1 || true

have_mosquitto || die "mosquitto was installed but no mosquitto binary was found"
echo "install-deps: mosquitto installed" >&2
