#!/bin/sh
# One mdm-serve, a whole enrollment, 200 devices: each simulated device
# fetches the profile at /mdm/enroll, gets its identity at /scep with the
# profile's one-time challenge, and checks in signed with it.  Every one
# becomes an enrollment bound to its certificate; a command queued for
# all comes back Acknowledged from all; a device that answers NotNow gets
# its command on a later check-in; a NanoMDM-style curl to the admin API
# queues a command a device then runs; a profile's challenge pays for one
# certificate only.
. "$MDM_SOURCE_DIR/tests/cmd/lib.sh"
D=$T/devices
N=200

for tool in openssl sqlite3 curl; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "1..0 # skip $tool is not installed"
		exit 77
	fi
done

TOPIC=com.apple.mgmt.External.enrollment-test
expect 0 "mdm-certs init" mdm-certs init --hostname 127.0.0.1
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$T/push.key" \
    -out "$T/push.pem" -subj "/UID=$TOPIC/CN=APSP:test/C=US" 2>/dev/null
chmod 600 "$T/push.key"
expect 0 "push-import" mdm-certs push-import "$T/push.pem" "$T/push.key"
umask 077
echo enrollment-test-key >"$T/api.key"
umask 022

# The profile names the server's URL, so the port must be known first:
# take the one a first start picked, then serve on it.
start probe mdm-serve --no-tls --listen 127.0.0.1:0 --port-file "$T/probe.port"
stop "$SPID"
URL=http://127.0.0.1:$PORT
start serve mdm-serve -v --no-tls --listen "127.0.0.1:$PORT" --url "$URL" \
    --api-key-file "$T/api.key" --metrics --port-file "$T/serve.port"
code=$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$URL/mdm/enroll")
check "mdm-serve serves /mdm/enroll" test "$code" = "200 application/x-apple-aspen-config"

expect 0 "$N devices enroll through /mdm/enroll and /scep" \
    mdm-devsim enroll --dir "$D" --url "$URL/mdm/enroll" -n "$N" -c 4
check "$N reported enrolled" test "$(grep -c '	enrolled$' "$T/out")" = "$N"
check "$N enrollments, enabled, with push tokens" test "$(sql "SELECT count(*)
    FROM enrollments WHERE enabled = 1 AND push_token IS NOT NULL
    AND topic = '$TOPIC'")" = "$N"
check "each bound to a certificate our CA issued at /scep" \
    test "$(sql "SELECT count(DISTINCT e.cert_hash) FROM enrollments e
    JOIN certificates c ON lower(c.sha256) = lower(e.cert_hash)")" = "$N"
check "$N certificates issued, one a profile" test "$(sql "SELECT count(*)
    FROM certificates")" = "$N"

mdm-devsim list --dir "$D" | cut -f1 | sort >"$T/ids"
sql "SELECT id FROM enrollments ORDER BY id" | sort >"$T/eids"
check "the devices' UDIDs are the enrollment ids" cmp "$T/ids" "$T/eids"

# ---- a command to all ----
expect 0 "DeviceInformation queued for all" sh -c \
    "mdm-queue enqueue DeviceInformation <'$T/ids'"
DI=$(cat "$T/out")
expect 0 "the devices check in and answer" mdm-devsim run --dir "$D" --once -c 4
check "Acknowledged from all $N" test "$(sql "SELECT count(*) FROM results r
    JOIN commands c ON c.cid = r.command WHERE c.uuid = '$DI'
    AND r.status = 'acknowledged'")" = "$N"
check "nothing left pending" test "$(sql "SELECT count(*) FROM queue
    WHERE status = 'pending'")" = 0

# ---- NotNow, then later ----
first=$(head -n 1 "$T/ids")
expect 0 "SecurityInfo for one device" mdm-queue enqueue SecurityInfo "$first"
SI=$(cat "$T/out")
expect 0 "it answers NotNow" mdm-devsim run --dir "$D" --once --notnow-rate 1 "$first"
check "NotNow reported" grep -q "$SI	SecurityInfo	NotNow" "$T/out"
check "the command stays queued" test "$(mdm-queue list "$first" | grep -c "$SI")" = 1
expect 0 "a later check-in" mdm-devsim run --dir "$D" --once "$first"
check "gets it, and it is Acknowledged" grep -q "$SI	SecurityInfo	Acknowledged" "$T/out"

# ---- the admin API, as NanoMDM's scripts call it ----
second=$(sed -n 2p "$T/ids")
cat >"$T/cmd.plist" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CommandUUID</key><string>nano-1</string>
<key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict>
</dict></plist>
EOF
code=$(curl -s -o "$T/resp" -w '%{http_code}' -T "$T/cmd.plist" \
    -u nanomdm:enrollment-test-key "$URL/v1/enqueue/$second?nopush=1")
check "curl -T cmd.plist -u nanomdm:KEY /v1/enqueue/ID: 200" test "$code" = 200
check "it names the command" grep -q '"command_uuid":"nano-1"' "$T/resp"
code=$(curl -s -o /dev/null -w '%{http_code}' -T "$T/cmd.plist" \
    -u nanomdm:wrong "$URL/v1/enqueue/$second")
check "a wrong key: 401" test "$code" = 401
expect 0 "the device runs it" mdm-devsim run --dir "$D" --once "$second"
check "ProfileList Acknowledged" grep -q "nano-1	ProfileList	Acknowledged" "$T/out"

# ---- a profile's challenge works once ----
curl -s -o "$T/enroll.der" "$URL/mdm/enroll"
expect 0 "a profile fetched to a file" test -s "$T/enroll.der"
expect 0 "a device enrolls with it" mdm-devsim enroll --dir "$T/one" \
    --url "$T/enroll.der"
expect 1 "a second device with the same profile is refused" \
    mdm-devsim enroll --dir "$T/two" --url "$T/enroll.der"
check "the SCEP failInfo says why" grep -q badRequest "$T/err"

curl -s -u nanomdm:enrollment-test-key "$URL/metrics" >"$T/metrics"
check "metrics: $N + 1 SCEP issuances" \
    grep -q "^mdm_scep_requests_total{outcome=\"issued\"} $((N + 1))$" "$T/metrics"
check "metrics: $((N + 1)) Authenticate check-ins" \
    grep -q "^mdm_checkins_total{message_type=\"Authenticate\"} $((N + 1))$" "$T/metrics"
stop "$SPID"
check "mdm-serve stops cleanly" test $? = 0

done_testing
