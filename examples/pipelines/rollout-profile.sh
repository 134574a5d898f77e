#!/bin/sh
# Roll a configuration profile out to a list of devices, wake them, wait
# for their answers and report the ones that did not install it.
#
# usage: rollout-profile.sh profile.mobileconfig < ids.txt
#
# ids.txt names one device a line: enrollment id, UDID or serial number.
# The profile may be signed (mdm-certs sign-profile) or not; it is sent as
# it is.  A device that already has an older revision of the same profile
# queued gets only this one: mdm-queue supersedes the older install.
#
# Output: one line per device that did not acknowledge the profile in time,
# "id<TAB>status<TAB>error", on stdout.  Exit status: 0 when every device
# installed it, 1 when some did not (yet), else mdm-queue's status (66: an
# id names no enrollment, and nothing was queued; 65: not a profile).
#
# Environment: MDM_STATE_DIR as for every mdm tool; WAIT (seconds to wait
# for answers, default 300).
set -eu

profile=${1:?usage: rollout-profile.sh profile.mobileconfig < ids.txt}
wait_secs=${WAIT:-300}

# 1. Queue it.  The ids come from stdin; the command's UUID is printed.
uuid=$(mdm-queue enqueue InstallProfile --profile "$profile")

# 2. Wake exactly the devices that got it (the ids as resolved from
#    serial numbers and UDIDs).  Without mdm-push they get it at their next
#    check-in anyway.
if command -v mdm-push >/dev/null 2>&1; then
	mdm-queue list --command "$uuid" | cut -f1 | mdm-push >/dev/null || :
fi

# 3. Wait while any device still has it pending (list exits 1 when none).
deadline=$(( $(date +%s) + wait_secs ))
while mdm-queue list --command "$uuid" >/dev/null 2>&1; do
	[ "$(date +%s)" -lt "$deadline" ] || break
	sleep 10
done

# 4. Report: still pending, or answered with anything but Acknowledged.
{
	mdm-queue list --command "$uuid" || :
	mdm-queue results --command "$uuid" || :
} | awk -F '\t' '
	NF == 9 { print $1 "\t" $4 "\t" (($5 > 0) ? "NotNow x" $5 : ""); bad = 1; next }
	$4 != "acknowledged" { print $1 "\t" $4 "\t" $6; bad = 1 }
	END { exit bad }'
