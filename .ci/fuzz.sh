#!/usr/bin/env bash
# Runs every Fuzz target of the module for the given time each (default 5s).
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-5s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
		began=$SECONDS
		for try in 1 2; do
			if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" "$pkg" >"$log" 2>&1; then
				echo "fuzz $pkg $target ($time): ok in $((SECONDS - began))s"
				break
			fi
			# The fuzzing engine itself sometimes misses its own deadline on
			# a loaded machine ("context deadline exceeded", no failing
			# input): that is not a finding, so such a run is tried again
			# once. Anything else fails at once.
			if [ "$try" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
				echo "fuzz $pkg $target: the engine missed its deadline; trying again"
				continue
			fi
			cat "$log"
			exit 1
		done
	done
done
echo "fuzz: every target ran for $time without a failure"
