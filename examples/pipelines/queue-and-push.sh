#!/bin/sh
# Queue a command for a list of devices and wake them with a push, then
# report the devices the push did not reach.
#
# usage: queue-and-push.sh REQUEST_TYPE < ids.txt
#
# ids.txt names one device a line: enrollment id, UDID or serial number.
# mdm-queue resolves them and prints the command's UUID; the enrollments
# it was queued for are read back with "mdm-queue list --command", so
# mdm-push gets exactly the ids as resolved.
#
# Output: one line per device whose push was not accepted,
# "id<TAB>outcome<TAB>status<TAB>reason", on stdout.  Exit status:
# mdm-push's (0 all accepted, 1 some refused for good, 75 APNs busy: run
# again later, 69 APNs unreachable), or mdm-queue's when queuing failed.
#
# Environment: MDM_STATE_DIR as for every mdm tool.
set -eu

type=${1:?usage: queue-and-push.sh REQUEST_TYPE < ids.txt}

uuid=$(mdm-queue enqueue "$type")
out=$(mktemp)
trap 'rm -f "$out"' EXIT

status=0
mdm-queue list --command "$uuid" | cut -f1 | mdm-push >"$out" || status=$?
awk -F '\t' '$2 != "ok"' "$out"
exit "$status"
