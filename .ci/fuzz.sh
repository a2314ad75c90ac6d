#!/usr/bin/env bash
# Runs every Fuzz target of the module for the given time each (default 5s).
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-5s}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
		echo "fuzz $pkg $target ($time)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" "$pkg" >/tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; exit 1; }
	done
done
rm -f /tmp/fuzz-$$.log
echo "fuzz: every target ran for $time without a failure"
