#!/bin/sh
# demo.sh BIN STATE: the whole system at work on a fresh local state
# directory, in under a minute: mdm-serve on loopback serves enrollment,
# SCEP, check-in, commands, the admin API and metrics; a handful of
# simulated devices (mdm-devsim) enroll through it and answer commands
# queued with mdm-queue and with a NanoMDM-style curl.  Each step prints
# the command it runs.
set -eu
bin=$1
state=$2
src=$(cd "$(dirname "$0")/.." && pwd)
PATH="$bin:$PATH"
export MDM_STATE_DIR="$state"
rm -rf "$state"
work=$(mktemp -d)
spid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

step() {
	printf '\n$ %s\n' "$*"
	"$@"
}

# A port nothing answers on: the profile names the server's URL before
# the server starts, so port 0 will not do here.
free_port() {
	p=18443
	while curl -s -o /dev/null "http://127.0.0.1:$p/" 2>/dev/null ||
	    [ $? -ne 7 ]; do
		p=$((p + 1))
		[ "$p" -gt 18543 ] && return 1
	done
	echo "$p"
}

echo "mdm demo: state directory $state"
step mdm-certs init --hostname localhost --hostname 127.0.0.1

# A stand-in push certificate: Apple's portal issues the real one, for
# the CSR that push-csr makes.
topic=com.apple.mgmt.External.demo-0001
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -keyout "$work/push.key" \
	-out "$work/push.pem" -subj "/UID=$topic/CN=APSP:demo-0001/C=US" \
	2>/dev/null
step mdm-certs push-csr --email admin@example.com -o "$work/push.csr"
step mdm-certs push-import "$work/push.pem" "$work/push.key"
step mdm-certs list

# Devices on this machine are simulated, so the server speaks plain HTTP
# on loopback; a real one serves https (its own TLS, or behind nginx:
# examples/nginx/mdm-serve.conf).
port=$(free_port)
url=http://127.0.0.1:$port
umask 077
printf 'demo-api-key\n' >"$work/api.key"
umask 022
printf '\n$ mdm-serve --no-tls --listen 127.0.0.1:%s --url %s --api-key-file api.key --metrics &\n' \
	"$port" "$url"
mdm-serve --no-tls --listen "127.0.0.1:$port" --url "$url" \
	--api-key-file "$work/api.key" --metrics --port-file "$work/mdm.port" \
	2>"$work/serve.log" &
spid=$!
n=0
while [ ! -s "$work/mdm.port" ] && [ "$n" -lt 100 ]; do
	sleep 0.1
	n=$((n + 1))
done
if [ ! -s "$work/mdm.port" ]; then
	cat "$work/serve.log" >&2
	exit 1
fi

# Five devices fetch the profile at /mdm/enroll, get an identity from
# /scep with its one-time challenge, and send Authenticate and
# TokenUpdate signed with it (Mdm-Signature).
devs=$work/devices
step mdm-devsim enroll --dir "$devs" --url "$url/mdm/enroll" -n 5
mdm-devsim list --dir "$devs" | cut -f1 >"$work/ids"
step mdm-certs list --kind device

step mdm-certs sign-profile -o "$work/passcode.signed.mobileconfig" \
	"$src/examples/profiles/passcode.mobileconfig"
printf '\n$ mdm-queue enqueue DeviceInformation < ids\n'
mdm-queue enqueue DeviceInformation <"$work/ids"
printf '\n$ mdm-queue enqueue InstallProfile --profile passcode.signed.mobileconfig < ids\n'
mdm-queue enqueue InstallProfile --profile "$work/passcode.signed.mobileconfig" \
	<"$work/ids"
printf '\n$ mdm-queue enqueue ProfileList < ids\n'
mdm-queue enqueue ProfileList <"$work/ids"
step mdm-queue list

# No APNs here: the devices poll, as if woken by a push.
step mdm-devsim run --dir "$devs" --once
step mdm-queue results

# The admin API, as NanoMDM's scripts call it.
first=$(head -n 1 "$work/ids")
cat >"$work/cmd.plist" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CommandUUID</key><string>demo-security-info-1</string>
<key>Command</key><dict><key>RequestType</key><string>SecurityInfo</string></dict>
</dict></plist>
EOF
printf '\n$ curl -T cmd.plist -u nanomdm:KEY %s/v1/enqueue/%s?nopush=1\n' "$url" "$first"
curl -sS -T "$work/cmd.plist" -u nanomdm:demo-api-key \
	"$url/v1/enqueue/$first?nopush=1"
echo
step mdm-devsim run --dir "$devs" --once "$first"
printf '\n$ curl -u nanomdm:KEY %s/v1/results/%s\n' "$url" "$first"
curl -sS -u nanomdm:demo-api-key "$url/v1/results/$first"
echo
printf '\n$ curl -u nanomdm:KEY %s/metrics | grep ...\n' "$url"
curl -sS -u nanomdm:demo-api-key "$url/metrics" |
	grep -E '^mdm_(checkins_total|command_reports_total|scep_[a-z_]*total)' |
	grep -v ' 0$'

kill "$spid"
wait "$spid" 2>/dev/null || true
spid=

echo
echo "mdm demo: done; the state is in $state"
