#!/usr/bin/env bash
# Cross-compiles each package's tests for linux/arm (v7) and linux/arm64 and
# runs them under qemu user emulation, the two architectures side by side.
# Tests that need a broker or a pseudo-terminal of the host run too:
# qemu-user passes system calls through.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v qemu-arm-static >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static) >/dev/null
	else
		echo "test-arm: qemu-user-static is missing and we are not root" >&2
		exit 1
	fi
fi
bash .ci/install-deps.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Packages whose tests run here: the box's own code. cmd/ tests build and
# run the daemon for the host, and internal/mqtttest tests the host's test
# brokers (mosquitto, a RabbitMQ cluster), not code that runs on a box:
# both are left to the host run.
pkgs=$(go list ./... | grep -v -e '/cmd/' -e '/internal/deptest' -e '/internal/mqtttest$')

# run_arch builds and runs every package's tests for one architecture and
# writes its report to $out/$1.report; it fails when any package failed.
run_arch() {
	local arch=$1 qemu=qemu-aarch64-static fail=0 pkg name dir began
	[ "$arch" = arm ] && qemu=qemu-arm-static
	for pkg in $pkgs; do
		name=$(echo "$pkg" | tr / _)
		began=$SECONDS
		GOOS=linux GOARCH=$arch GOARM=7 CGO_ENABLED=0 go test -c -o "$out/$name.$arch" "$pkg" 2>&1
		[ -f "$out/$name.$arch" ] || continue # no test files
		dir=$(go list -f '{{.Dir}}' "$pkg")
		if (cd "$dir" && SMARTBOX_EXEC_WRAPPER="$qemu" "$qemu" "$out/$name.$arch" -test.short -test.count=1 >"$out/$name.$arch.log" 2>&1); then
			echo "ok   $arch $pkg ($((SECONDS - began))s)"
		else
			echo "FAIL $arch $pkg"
			cat "$out/$name.$arch.log"
			fail=1
		fi
	done >"$out/$arch.report" 2>&1
	return $fail
}

run_arch arm & armpid=$!
run_arch arm64 & arm64pid=$!
fail=0
wait $armpid || fail=1
wait $arm64pid || fail=1
cat "$out/arm.report" "$out/arm64.report"
exit $fail
