#!/bin/sh
# run.sh DIR SECONDS: runs every fuzz_* target in DIR for SECONDS each,
# starting from its seeds in tests/fuzz/corpus/NAME and the regression
# inputs in tests/data/NAME.  Fails on the first crash, leak or timeout.
set -eu
dir=$1
secs=${2:-30}
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for f in "$dir"/fuzz_*; do
	[ -x "$f" ] || continue
	name=${f##*/fuzz_}
	mkdir -p "$work/$name"
	for seeds in "$src/tests/fuzz/corpus/$name" "$src/tests/data/$name"; do
		[ -d "$seeds" ] && cp -r "$seeds"/. "$work/$name"/
	done
	echo "fuzz: $name for ${secs}s"
	if ! "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$work/" "$work/$name" \
	    >"$work/$name.log" 2>&1; then
		tail -n 40 "$work/$name.log"
		# The scratch folder goes away: keep the input in the log.
		for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
			[ -f "$a" ] || continue
			echo "fuzz: $name input ${a##*/}, base64:"
			base64 -w 0 "$a"
			echo
			rm -f "$a"
		done
		echo "fuzz: $name FAILED"
		status=1
		continue
	fi
	grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$work/$name.log" | sed "s/^/fuzz: $name /"
done
[ "$status" = 0 ] && echo "fuzz: all targets clean"
exit "$status"
