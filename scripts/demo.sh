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

# The SCEP CA, as Apple devices (and micromdm's scepclient) use it.
if command -v scepclient >/dev/null 2>&1; then
	printf '\n$ mdm-scep serve --listen 127.0.0.1:0 --challenge demo-secret &\n'
	mdm-scep serve --listen 127.0.0.1:0 --port-file "$work/port" \
		--challenge demo-secret 2>"$work/scep.log" &
	spid=$!
	n=0
	while [ ! -s "$work/port" ] && [ "$n" -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	url="http://127.0.0.1:$(cat "$work/port")/scep"
	mkdir "$work/device"
	openssl genrsa -traditional -out "$work/device/key.pem" 2048 2>/dev/null
	step scepclient -server-url "$url" -private-key "$work/device/key.pem" \
		-certificate "$work/device/cert.pem" -challenge demo-secret -cn demo-device
	step openssl verify -CAfile "$state/ca/ca.pem" "$work/device/cert.pem"
	otp=$(mdm-scep challenge --ttl 10m)
	printf '\n$ mdm-scep challenge --ttl 10m\n%s\n' "$otp"
	mkdir "$work/device2"
	openssl genrsa -traditional -out "$work/device2/key.pem" 2048 2>/dev/null
	step scepclient -server-url "$url" -private-key "$work/device2/key.pem" \
		-certificate "$work/device2/cert.pem" -challenge "$otp" -cn demo-device-2
	step mdm-scep list
	serial=$(openssl x509 -in "$work/device2/cert.pem" -noout -serial | sed 's/serial=//')
	step mdm-scep revoke "$serial"
	step mdm-scep crl -o "$work/ca.crl"
	step openssl crl -inform DER -in "$work/ca.crl" -CAfile "$state/ca/ca.pem" -noout
	kill "$spid"
	wait "$spid" 2>/dev/null || true
	spid=
	step mdm-certs list --kind device
else
	echo "(scepclient not installed: skipping the SCEP part)"
fi
# The MDM endpoint.  A device, played here by openssl and curl, signs each
# body with its SCEP identity (the Mdm-Signature header, as Apple devices
# do), enrolls, and runs one command.
dev=$work/device
if [ ! -s "$dev/cert.pem" ]; then
	mkdir -p "$dev"
	openssl req -new -newkey rsa:2048 -nodes -keyout "$dev/key.pem" \
		-subj /CN=demo-device -out "$dev/csr.pem" 2>/dev/null
	openssl x509 -req -in "$dev/csr.pem" -CA "$state/ca/ca.pem" \
		-CAkey "$state/ca/ca.key" -set_serial 0x1001 -days 30 \
		-out "$dev/cert.pem" 2>/dev/null
fi
printf '\n$ mdm-serve --no-tls --listen 127.0.0.1:0 &\n'
mdm-serve --no-tls --listen 127.0.0.1:0 --port-file "$work/mdm.port" \
	2>"$work/serve.log" &
spid=$!
n=0
while [ ! -s "$work/mdm.port" ] && [ "$n" -lt 100 ]; do
	sleep 0.1
	n=$((n + 1))
done
mdm=http://127.0.0.1:$(cat "$work/mdm.port")
udid=0000DEMO-0000-4000-8000-000000000001
plist() {
	printf '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>%s<key>UDID</key><string>%s</string></dict></plist>\n' "$1" "$udid"
}
# device PATH TYPE WHAT BODY: the device PUTs BODY, signed.
device() {
	printf '%s' "$4" >"$work/body"
	sig=$(openssl cms -sign -binary -outform DER -in "$work/body" \
		-signer "$dev/cert.pem" -inkey "$dev/key.pem" | base64 -w0)
	printf '\n$ curl -X PUT %s%s  (%s, signed)\n' "$mdm" "$1" "$3"
	curl -sS -X PUT --data-binary "@$work/body" -o "$work/answer" \
		-w 'HTTP %{http_code}\n' -H "Content-Type: $2" \
		-H "Mdm-Signature: $sig" "$mdm$1"
	if [ -s "$work/answer" ]; then
		tr -d '\n\t' <"$work/answer" | grep -o \
			'<key>RequestType</key><string>[A-Za-z]*</string>\|<key>CommandUUID</key><string>[^<]*</string>' |
			sed 's/<[^>]*>/ /g; s/  */ /g; s/^/  answer:/'
	fi
}
checkin=application/x-apple-aspen-mdm-checkin
device /mdm/checkin $checkin Authenticate "$(plist '<key>MessageType</key><string>Authenticate</string><key>Topic</key><string>com.apple.mgmt.External.demo-0001</string><key>SerialNumber</key><string>DEMO0001</string>')"
device /mdm/checkin $checkin TokenUpdate "$(plist '<key>MessageType</key><string>TokenUpdate</string><key>Topic</key><string>com.apple.mgmt.External.demo-0001</string><key>Token</key><data>3q2+7w==</data><key>PushMagic</key><string>demo-magic</string>')"
printf '\n$ mdm-queue enqueue DeviceInformation %s\n' "$udid"
cmd=$(mdm-queue enqueue DeviceInformation "$udid")
echo "$cmd"
device /mdm/connect application/x-apple-aspen-mdm Idle "$(plist '<key>Status</key><string>Idle</string>')"
device /mdm/connect application/x-apple-aspen-mdm Acknowledged "$(plist "<key>Status</key><string>Acknowledged</string><key>CommandUUID</key><string>$cmd</string><key>QueryResponses</key><dict><key>DeviceName</key><string>Demo iPad</string></dict>")"
step mdm-queue results
step mdm-queue list --all
kill "$spid"
wait "$spid" 2>/dev/null || true
spid=

echo
echo "mdm demo: done; the state is in $state"
