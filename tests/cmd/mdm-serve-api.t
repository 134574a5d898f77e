#!/bin/sh
# mdm-serve's admin API and /metrics end to end: a device enrolled by
# playing it with openssl and curl (as mdm-serve.t does), then NanoMDM-
# style calls with curl -u nanomdm:KEY: enqueue (with and without a push,
# to tests/tools/apns_mock), a wrong key, a malformed plist, push,
# pushcert upload and listing, /version, the read endpoints and the
# counters /metrics shows after that traffic.
. "$MDM_SOURCE_DIR/tests/cmd/lib.sh"

for tool in openssl curl; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "1..0 # skip $tool is not installed"
		exit 77
	fi
done
if [ ! -x "$MDM_BIN/apns_mock" ]; then
	echo "1..0 # skip apns_mock is not built"
	exit 77
fi

plist() {	# plist FILE KEY=VALUE...: a dict of strings (data:K for data)
	f=$1
	shift
	{
		printf '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n'
		for kv; do
			k=${kv%%=*}
			v=${kv#*=}
			case $k in
			data:*) printf '<key>%s</key><data>%s</data>\n' "${k#data:}" "$v" ;;
			*) printf '<key>%s</key><string>%s</string>\n' "$k" "$v" ;;
			esac
		done
		printf '</dict>\n</plist>\n'
	} >"$f"
}

# device PATH CONTENT-TYPE FILE: PUTs FILE signed by the device; the body
# answered in $T/resp, the status in $CODE.
device() {
	sig=$(openssl cms -sign -binary -outform DER -in "$3" \
		-signer "$T/dev.pem" -inkey "$T/dev.key" | base64 -w0)
	CODE=$(curl -s -o "$T/resp" -w '%{http_code}' -X PUT \
		--data-binary "@$3" -H "Content-Type: $2" \
		-H "Mdm-Signature: $sig" "$URL$1")
}

# api ARGS...: curl against the server; the body in $T/resp, the status
# in $CODE.
api() {
	CODE=$(curl -s -o "$T/resp" -w '%{http_code}' "$@")
}

status() {	# status WANT DESCRIPTION
	if [ "$CODE" = "$1" ]; then
		t_result 0 "$2"
	else
		t_result 1 "$2"
		echo "# expected HTTP $1, got $CODE"
		sed 's/^/# body: /' "$T/resp" | head -n 3
		tail -n 3 "$T"/*.log 2>/dev/null | sed 's/^/# /'
	fi
}

pending() {	# pending ID: the number of pending commands of ID
	mdm-queue list "$1" 2>/dev/null | grep -c .
}

# ---- set-up: a state, the mock APNs, a push certificate ----
expect 0 "mdm-certs init" mdm-certs init --organization "API Test"
umask 077
printf 'sekrit\n' >"$T/key"
umask 022
TOPIC=com.apple.mgmt.External.api-test
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$T/ca.key" \
	-out "$T/ca.pem" -subj "/CN=Mock APNs CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" \
	-subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
	-CAcreateserial -days 30 -extfile "$T/ext" -out "$T/srv.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$T/push.key" \
	-out "$T/push.pem" -subj "/UID=$TOPIC/CN=APSP:api/C=US" 2>/dev/null
start mock apns_mock --cert "$T/srv.pem" --key "$T/srv.key" --any-client \
	--log "$T/mock.log" --port-file "$T/mock.port" || echo "# no mock"
APNS="https://127.0.0.1:$PORT"

expect 64 "--sandbox without --api-key-file" mdm-serve --no-tls --sandbox
expect 64 "--apns-url with --sandbox" mdm-serve --no-tls --api-key-file \
	"$T/key" --apns-url "$APNS" --sandbox
expect 64 "--apns-url must be https" mdm-serve --no-tls --api-key-file \
	"$T/key" --apns-url http://x
expect 66 "a missing key file" mdm-serve --no-tls --api-key-file \
	"$T/nokey" --listen 127.0.0.1:0

start serve mdm-serve -v --no-tls --listen 127.0.0.1:0 --threads 2 \
	--api-key-file "$T/key" --metrics --apns-url "$APNS" \
	--apns-ca "$T/ca.pem" --port-file "$T/serve.port" ||
	echo "# mdm-serve did not start"
URL="http://127.0.0.1:$PORT"

# ---- a device enrolls ----
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/dev.key" \
	-subj "/CN=dev" -out "$T/dev.csr" 2>/dev/null
openssl x509 -req -in "$T/dev.csr" -CA "$S/ca/ca.pem" -CAkey "$S/ca/ca.key" \
	-set_serial "0x$(openssl rand -hex 8)" -days 30 -out "$T/dev.pem" \
	2>/dev/null
U=0000CCCC-1111-2222-3333-444455556666
plist "$T/auth" MessageType=Authenticate UDID=$U Topic=$TOPIC \
	SerialNumber=C02API1
device /mdm/checkin application/x-apple-aspen-mdm-checkin "$T/auth"
status 200 "Authenticate"
plist "$T/tok" MessageType=TokenUpdate UDID=$U Topic=$TOPIC \
	data:Token=qgECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= PushMagic=MAGIC
device /mdm/checkin application/x-apple-aspen-mdm-checkin "$T/tok"
status 200 "TokenUpdate"
plist "$T/idle" Status=Idle UDID=$U

# ---- /version, auth ----
api "$URL/version"
status 200 "/version needs no key"
check "it names the version" grep -q '"version":"' "$T/resp"
cat >"$T/cmd.plist" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
	<key>Command</key>
	<dict><key>RequestType</key><string>ProfileList</string></dict>
	<key>CommandUUID</key>
	<string>api-cmd-1</string>
</dict>
</plist>
EOF
CODE=$(curl -s -D "$T/hdr" -o "$T/resp" -w '%{http_code}' -T "$T/cmd.plist" \
	-u nanomdm:wrong "$URL/v1/enqueue/$U")
status 401 "a wrong key: 401"
check "WWW-Authenticate: Basic realm=\"mdm\"" \
	grep -qi '^WWW-Authenticate: Basic realm="mdm"' "$T/hdr"
api -T "$T/cmd.plist" "$URL/v1/enqueue/$U"
status 401 "no key: 401"
check "nothing queued" test "$(pending $U)" = 0

# ---- enqueue ----
printf '<plist><dict><key>Command</key>' >"$T/bad.plist"
api -T "$T/bad.plist" -u nanomdm:sekrit "$URL/v1/enqueue/$U"
status 400 "a malformed plist: 400"
check "with a command_error" grep -q '"command_error"' "$T/resp"
check "nothing queued" test "$(pending $U)" = 0

api -T "$T/cmd.plist" -u nanomdm:sekrit "$URL/v1/enqueue/$U?nopush=1"
status 200 "enqueue ?nopush=1"
check "no_push true" grep -q '"no_push":true' "$T/resp"
check "command_uuid" grep -q '"command_uuid":"api-cmd-1"' "$T/resp"
check "request_type" grep -q '"request_type":"ProfileList"' "$T/resp"
check "mdm-queue list shows it" sh -c "mdm-queue list $U | grep -q api-cmd-1"
check "no push was sent" test ! -s "$T/mock.log"

# No push certificate yet: the push fails, the command stays queued.
sed 's/api-cmd-1/api-cmd-2/' "$T/cmd.plist" >"$T/cmd2.plist"
api -T "$T/cmd2.plist" -u nanomdm:sekrit "$URL/v1/enqueue/$U"
status 500 "no push certificate: every push failed, 500"
check "push_error no-push-cert" grep -q '"push_error":"no-push-cert' "$T/resp"
check "queued all the same" test "$(pending $U)" = 2

# ---- pushcert ----
cat "$T/push.pem" "$T/push.key" >"$T/bundle.pem"
api -T "$T/bundle.pem" -u nanomdm:sekrit "$URL/v1/pushcert"
status 200 "PUT /v1/pushcert"
check "its topic" grep -q "\"topic\":\"$TOPIC\"" "$T/resp"
check "its not_after" grep -q '"not_after":"20' "$T/resp"
check "stored as STATE/push/TOPIC.pem" test -s "$S/push/$TOPIC.pem"
check "its key 0600" test "$(file_mode "$S/push/$TOPIC.key")" = 600
api -u nanomdm:sekrit "$URL/v1/pushcert"
status 200 "GET /v1/pushcert"
check "lists the topic" grep -q "\"topic\":\"$TOPIC\"" "$T/resp"
api -u nanomdm:sekrit "$URL/v1/pushcert?topic=$TOPIC"
status 200 "GET /v1/pushcert?topic="
api -T "$T/push.pem" -u nanomdm:sekrit "$URL/v1/pushcert"
status 400 "a certificate without its key: 400"

# ---- enqueue with a push, push ----
sed 's/api-cmd-1/api-cmd-3/' "$T/cmd.plist" >"$T/cmd3.plist"
api -T "$T/cmd3.plist" -u nanomdm:sekrit "$URL/v1/enqueue/$U"
status 200 "enqueue and push"
check "push_result ok" grep -q "\"$U\":{\"push_result\":\"ok\"}" "$T/resp"
check "the mock got the push" grep -q "$TOPIC" "$T/mock.log"
api -u nanomdm:sekrit "$URL/v1/push/$U,NOPE"
status 207 "push to the device and an unknown id: 207"
check "ok for the device" grep -q "\"$U\":{\"push_result\":\"ok\"}" "$T/resp"
check "unknown for the other" grep -q '"NOPE":{"push_error":"unknown' "$T/resp"

# ---- the device gets the commands ----
device /mdm/connect application/x-apple-aspen-mdm "$T/idle"
status 200 "Idle"
check "gets api-cmd-1" grep -q api-cmd-1 "$T/resp"
plist "$T/ack" Status=Acknowledged UDID=$U CommandUUID=api-cmd-1
device /mdm/connect application/x-apple-aspen-mdm "$T/ack"
status 200 "Acknowledged"
check "then api-cmd-2" grep -q api-cmd-2 "$T/resp"
plist "$T/nn" Status=NotNow UDID=$U CommandUUID=api-cmd-2
device /mdm/connect application/x-apple-aspen-mdm "$T/nn"
status 200 "NotNow"

# ---- read endpoints ----
api -u nanomdm:sekrit "$URL/v1/enrollments"
status 200 "GET /v1/enrollments"
check "the device, enabled" grep -q "\"id\":\"$U\".*\"enabled\":true" "$T/resp"
api -u nanomdm:sekrit "$URL/v1/queue/$U"
status 200 "GET /v1/queue/ID"
check "api-cmd-2 pending" grep -q '"command_uuid":"api-cmd-2"' "$T/resp"
check "api-cmd-1 no longer" sh -c "! grep -q api-cmd-1 '$T/resp'"
api -u nanomdm:sekrit "$URL/v1/results/$U?limit=1"
status 200 "GET /v1/results/ID?limit=1"
check "api-cmd-1 acknowledged" grep -q '"command_uuid":"api-cmd-1".*"status":"acknowledged"' "$T/resp"
api -u nanomdm:sekrit "$URL/v1/results/$U?limit=5000"
status 400 "a limit over the cap: 400"

# ---- metrics ----
api "$URL/metrics"
status 401 "metrics are behind the API key"
api -u prometheus:sekrit "$URL/metrics"
status 200 "GET /metrics"
m() {	# m LINE: /metrics has this exact line
	check "metrics: $1" grep -qxF "$1" "$T/resp"
}
m 'mdm_checkins_total{message_type="Authenticate"} 1'
m 'mdm_checkins_total{message_type="TokenUpdate"} 1'
m 'mdm_command_reports_total{status="Idle"} 1'
m 'mdm_command_reports_total{status="NotNow"} 1'
m 'mdm_push_total{outcome="ok"} 2'
m 'mdm_push_total{outcome="no-push-cert"} 1'
m 'mdm_push_total{outcome="unknown"} 1'
m 'mdm_queue_rows{status="pending"} 2'
m 'mdm_queue_rows{status="acknowledged"} 1'
m 'mdm_queue_not_now 1'
m 'mdm_enrollments_pushable 1'
m 'mdm_state_up 1'
m 'mdm_http_requests_total{route="mdm",code="2xx"} 5'
check "metrics: API 4xx counted" grep -q '^mdm_http_requests_total{route="api",code="4xx"} [1-9]' "$T/resp"
check "metrics: push certificate expiry" \
	grep -q "^mdm_certificate_not_after_seconds{kind=\"push\",topic=\"$TOPIC\"} [1-9]" "$T/resp"
check "metrics: CA expiry" \
	grep -q '^mdm_certificate_not_after_seconds{kind="ca",topic=""} [1-9]' "$T/resp"
check "metrics: +Inf bucket of mdm = its count" sh -c "
	a=\$(grep '^mdm_http_request_duration_seconds_bucket{route=\"mdm\",le=\"+Inf\"}' '$T/resp' | cut -d' ' -f2)
	b=\$(grep '^mdm_http_request_duration_seconds_count{route=\"mdm\"}' '$T/resp' | cut -d' ' -f2)
	test \"\$a\" = \"\$b\" -a \"\$a\" = 5"

done_testing
