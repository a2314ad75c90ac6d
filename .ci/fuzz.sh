#!/usr/bin/env bash
# Runs every Fuzz target of the module for the given time each (default 5s),
# two at a time with one worker each: a run's fixed cost (building with
# coverage, reading the corpus) overlaps the other's fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-5s}
jobs=${FUZZ_JOBS:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# fuzz_one pkg target: runs one target, once more when the engine itself
# missed its deadline, and prints one line; on a failure it prints the log
# and fails.
fuzz_one() {
	local pkg=$1 target=$2 time=$3 log began try
	log=$(mktemp)
	began=$SECONDS
	for try in 1 2; do
		if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" -parallel 1 "$pkg" >"$log" 2>&1; then
			echo "fuzz $pkg $target ($time): ok in $((SECONDS - began))s"
			rm -f "$log"
			return 0
		fi
		# The fuzzing engine sometimes misses its own deadline on a loaded
		# machine ("context deadline exceeded", no failing input): that is
		# not a finding, so such a run is tried again once. Anything else
		# fails at once.
		if [ "$try" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
			echo "fuzz $pkg $target: the engine missed its deadline; trying again"
			continue
		fi
		break
	done
	echo "FAIL fuzz $pkg $target"
	cat "$log"
	rm -f "$log"
	return 1
}
export -f fuzz_one

for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
		echo "$pkg $target"
	done
done >"$out/targets"
echo "fuzz: $(wc -l <"$out/targets") targets, $jobs at a time, $time each"
if ! xargs -P "$jobs" -L 1 bash -c 'fuzz_one "$0" "$1" "'"$time"'"' <"$out/targets"; then
	echo "fuzz: a target failed"
	exit 1
fi
echo "fuzz: every target ran for $time without a failure"
