#!/bin/sh
# demo.sh BIN STATE: what the toolkit does today, end to end, on a fresh
# local state directory.  Each step prints the command it runs.
set -eu
bin=$1
state=$2
src=$(cd "$(dirname "$0")/.." && pwd)
PATH="$bin:$PATH"
export MDM_STATE_DIR="$state"
rm -rf "$state"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() {
	printf '\n$ %s\n' "$*"
	"$@"
}

echo "mdm demo: state directory $state"
step mdm-certs init --hostname localhost --hostname 127.0.0.1
step mdm-certs init
step mdm-certs sign-profile -o "$work/passcode.signed.mobileconfig" \
	"$src/examples/profiles/passcode.mobileconfig"
step mdm-certs verify-profile -o "$work/passcode.out.mobileconfig" \
	"$work/passcode.signed.mobileconfig"
step cmp "$src/examples/profiles/passcode.mobileconfig" "$work/passcode.out.mobileconfig"
echo "(content bytes unchanged by signing)"
step openssl cms -verify -inform DER -binary -in "$work/passcode.signed.mobileconfig" \
	-CAfile "$state/ca/ca.pem" -purpose any -out /dev/null

# A stand-in push certificate: Apple's portal issues the real one.
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -keyout "$work/push.key" \
	-out "$work/push.pem" -subj "/UID=com.apple.mgmt.External.demo-0001/CN=APSP:demo-0001/C=US" \
	2>/dev/null
step mdm-certs push-csr --email admin@example.com -o "$work/push.csr"
step mdm-certs push-import "$work/push.pem" "$work/push.key"
step mdm-certs dep-keypair abm
step mdm-certs list
step mdm-certs list --json --kind push
printf '\n$ mdm-certs list --expiring-within 400 --kind tls\n'
mdm-certs list --expiring-within 400 --kind tls
echo
echo "mdm demo: done; the state is in $state"
