#!/bin/sh
# mdm-serve end to end: devices simulated with openssl and curl.  Each
# request body is signed as an Apple device signs it (openssl cms -sign
# -binary, detached, in the Mdm-Signature header), or sent over mutual
# TLS, or with the certificate in a proxy header.  Covers enrollment, the
# command round trip, NotNow, Error, CommandFormatError, user channels,
# bootstrap tokens, GetToken, DeclarativeManagement, certificate spoofing
# and renewal, webhooks with a receiver that is down and comes back, the
# shared fixtures, and garbage.
. "$MDM_SOURCE_DIR/tests/cmd/lib.sh"

for tool in openssl curl sqlite3; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "1..0 # skip $tool is not installed"
		exit 77
	fi
done

serve() {	# serve NAME ARGS...: mdm-serve on a free port; sets URL
	name=$1
	shift
	start "$name" mdm-serve -v --listen 127.0.0.1:0 --threads 2 \
		--port-file "$T/$name.port" "$@" || return 1
	URL="http://127.0.0.1:$PORT"
}

sink() {	# sink NAME STATUS [LISTEN] [BODYFILE]: an http_sink
	mkdir -p "$T/$1"
	start "$1" http_sink "${3:-127.0.0.1:0}" "$T/$1.port" "$T/$1" "$2" \
		${4:+"$4"}
}

# plist FILE KEY=VALUE...: an XML plist dict of strings; a key written
# data:K, bool:K or raw:K takes base64 data, true/false or raw XML.
plist() {
	f=$1
	shift
	{
		printf '<?xml version="1.0" encoding="UTF-8"?>\n'
		printf '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
		printf '<plist version="1.0">\n<dict>\n'
		for kv; do
			k=${kv%%=*}
			v=${kv#*=}
			case $k in
			data:*) printf '<key>%s</key><data>%s</data>\n' "${k#data:}" "$v" ;;
			bool:*) printf '<key>%s</key><%s/>\n' "${k#bool:}" "$v" ;;
			raw:*) printf '<key>%s</key>%s\n' "${k#raw:}" "$v" ;;
			*) printf '<key>%s</key><string>%s</string>\n' "$k" "$v" ;;
			esac
		done
		printf '</dict>\n</plist>\n'
	} >"$f"
}

# put WHO PATH CONTENT-TYPE FILE [CURL-ARGS...]: PUTs FILE to $URL$PATH,
# signed by device WHO ("-": unsigned); the status in $CODE, the body in
# $T/resp.
put() {
	who=$1 path=$2 ct=$3 f=$4
	shift 4
	if [ "$who" = - ]; then
		CODE=$(curl -s -o "$T/resp" -w '%{http_code}' -X PUT \
			--data-binary "@$f" -H "Content-Type: $ct" "$@" "$URL$path")
	else
		sig=$(openssl cms -sign -binary -outform DER -in "$f" \
			-signer "$T/dev/$who.pem" -inkey "$T/dev/$who.key" | base64 -w0)
		CODE=$(curl -s -o "$T/resp" -w '%{http_code}' -X PUT \
			--data-binary "@$f" -H "Content-Type: $ct" \
			-H "Mdm-Signature: $sig" "$@" "$URL$path")
	fi
}
checkin() {	# checkin WHO FILE [CURL-ARGS...]
	who=$1 f=$2
	shift 2
	put "$who" /mdm/checkin application/x-apple-aspen-mdm-checkin "$f" "$@"
}
report() {	# report WHO FILE [CURL-ARGS...]
	who=$1 f=$2
	shift 2
	put "$who" /mdm/connect application/x-apple-aspen-mdm "$f" "$@"
}
status() {	# status WANT DESCRIPTION
	if [ "$CODE" = "$1" ]; then
		t_result 0 "$2"
	else
		t_result 1 "$2"
		echo "# expected HTTP $1, got $CODE"
		tail -n 3 "$T"/*.log 2>/dev/null | sed 's/^/# /'
	fi
}

# mkdev NAME [CADIR]: a device key and certificate issued by CADIR's CA
# (ours by default), as SCEP would issue it.
mkdir -p "$T/dev" "$T/b" "$T/evil"
mkdev() {
	ca=${2:-$S/ca}
	openssl req -new -newkey rsa:2048 -nodes -keyout "$T/dev/$1.key" \
		-subj "/CN=$1" -out "$T/dev/$1.csr" 2>/dev/null &&
	openssl x509 -req -in "$T/dev/$1.csr" -CA "$ca/ca.pem" \
		-CAkey "$ca/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
		-days 30 -out "$T/dev/$1.pem" 2>/dev/null &&
	openssl x509 -in "$T/dev/$1.pem" -outform DER -out "$T/dev/$1.der"
}
hash_of() {
	openssl x509 -in "$T/dev/$1.pem" -outform DER | sha256sum | cut -c1-64
}
# record NAME [RENEWED-FROM-HASH]: our CA's record of NAME's certificate.
record() {
	der=$T/dev/$1.der
	serial=$(openssl x509 -in "$T/dev/$1.pem" -noout -serial | sed 's/.*=//')
	from=NULL
	[ -n "${2:-}" ] && from="'$2'"
	sql "INSERT INTO certificates (serial, subject, sha256, kind,
		not_before, not_after, der, created_at, renewed_from)
		VALUES ('$serial', 'CN=$1', '$(hash_of "$1")', 'device', 0,
		4102444800, readfile('$der'), 0, $from)"
}

expect 0 "mdm-certs init" mdm-certs init --organization "Test MDM"
for d in dev1 dev2 dev3 dev1b ue; do
	mkdev $d
done
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/evil/ca.key" \
	-out "$T/evil/ca.pem" -subj "/CN=evil CA" -days 30 2>/dev/null
mkdev evil "$T/evil"
record dev1
record dev1b "$(hash_of dev1)"
record dev3

# ---- start-up ----
expect 78 "no state directory: configuration error" mdm-serve --state-dir "$T/nowhere" --no-tls
expect 64 "a wrong flag" mdm-serve --bogus
expect 64 "operands are refused" mdm-serve extra
expect 64 "--no-tls with --tls-cert" mdm-serve --no-tls --tls-cert x
expect 64 "--webhook-url must be http(s)" mdm-serve --webhook-url ftp://x
expect 78 "--token-exec must be executable" mdm-serve --no-tls --token-exec /nonexistent
check "--help lists the flags" sh -c "mdm-serve --help | grep -q -- --cert-header"

serve main --no-tls || echo "# mdm-serve did not start"
MAIN=$SPID
check "seal.key made 0600" test "$(file_mode "$S/seal.key")" = 600

U1=0000AAAA-1111-2222-3333-444455556666
U2=0000BBBB-1111-2222-3333-444455556666

# ---- enrollment ----
plist "$T/b/auth1" MessageType=Authenticate UDID=$U1 Topic=com.apple.mgmt.test \
	SerialNumber=C02TEST1 OSVersion=14.1 ProductName=Mac14,2 DeviceName=One
checkin dev1 "$T/b/auth1"
status 200 "Authenticate signed by dev1"
check "empty body" test ! -s "$T/resp"
check "enrollment stored, disabled until TokenUpdate" \
	test "$(sql "SELECT enabled || serial_number FROM enrollments WHERE id = '$U1'")" = 0C02TEST1
check "dev1's certificate bound" \
	test "$(sql "SELECT cert_hash FROM enrollments WHERE id = '$U1'")" = "$(hash_of dev1)"

TOK=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAc=
plist "$T/b/tok1" MessageType=TokenUpdate UDID=$U1 Topic=com.apple.mgmt.test \
	data:Token="$TOK" PushMagic=MAGIC-1 data:UnlockToken=dW5sb2Nr
checkin dev1 "$T/b/tok1"
status 200 "TokenUpdate"
check "enabled, push magic stored" \
	test "$(sql "SELECT enabled || push_magic FROM enrollments WHERE id = '$U1'")" = 1MAGIC-1

# ---- command round trip ----
plist "$T/b/idle1" Status=Idle UDID=$U1
report dev1 "$T/b/idle1"
status 200 "Idle with an empty queue"
check "no command: empty body" test ! -s "$T/resp"

expect 0 "enqueue DeviceInformation" mdm-queue enqueue DeviceInformation $U1
C1=$(cat "$T/out")
report dev1 "$T/b/idle1"
status 200 "Idle gets the command"
check "the body is that command" grep -q "<string>$C1</string>" "$T/resp"
check "a DeviceInformation command" grep -q DeviceInformation "$T/resp"
plist "$T/b/ack1" Status=Acknowledged UDID=$U1 CommandUUID="$C1" \
	raw:QueryResponses='<dict><key>DeviceName</key><string>One</string></dict>'
report dev1 "$T/b/ack1"
status 200 "Acknowledged"
check "nothing more to do" test ! -s "$T/resp"
expect 0 "mdm-queue results" mdm-queue results --command "$C1"
check "the result is acknowledged" grep -q acknowledged "$T/out"
expect 0 "mdm-queue results --raw" mdm-queue results --raw --command "$C1"
check "the raw result is stored" grep -q "<string>One</string>" "$T/out"

# NotNow: kept, skipped for the session, offered in the next one.
expect 0 "enqueue ProfileList" mdm-queue enqueue ProfileList $U1
C2=$(cat "$T/out")
report dev1 "$T/b/idle1"
check "Idle gets ProfileList" grep -q "$C2" "$T/resp"
plist "$T/b/nn" Status=NotNow UDID=$U1 CommandUUID="$C2"
report dev1 "$T/b/nn"
status 200 "NotNow"
check "not offered again in this session" test ! -s "$T/resp"
check "still pending, NotNow counted" \
	test "$(sql "SELECT status || not_now_count FROM queue q JOIN commands c ON c.cid = q.command WHERE c.uuid = '$C2'")" = pending1
report dev1 "$T/b/idle1"
check "offered again in the next session" grep -q "$C2" "$T/resp"
plist "$T/b/ack2" Status=Acknowledged UDID=$U1 CommandUUID="$C2" raw:ProfileList='<array/>'
report dev1 "$T/b/ack2"
status 200 "then acknowledged"

# Error and CommandFormatError dequeue, with the ErrorChain kept.
expect 0 "enqueue SecurityInfo and CertificateList" sh -c \
	"mdm-queue enqueue SecurityInfo $U1 > '$T/c3' && mdm-queue enqueue CertificateList $U1 > '$T/c4'"
C3=$(cat "$T/c3")
C4=$(cat "$T/c4")
report dev1 "$T/b/idle1"
check "SecurityInfo first" grep -q "$C3" "$T/resp"
plist "$T/b/err" Status=Error UDID=$U1 CommandUUID="$C3" \
	raw:ErrorChain='<array><dict><key>ErrorCode</key><integer>12021</integer><key>ErrorDomain</key><string>MCMDMErrorDomain</string><key>LocalizedDescription</key><string>Nope</string></dict></array>'
report dev1 "$T/b/err"
status 200 "Error"
check "the answer is the next command" grep -q "$C4" "$T/resp"
plist "$T/b/cfe" Status=CommandFormatError UDID=$U1 CommandUUID="$C4"
report dev1 "$T/b/cfe"
status 200 "CommandFormatError"
expect 0 "results of the failed commands" mdm-queue results --json $U1
check "the error is stored with its chain" grep -q 12021 "$T/out"
check "the format error is stored" grep -q format_error "$T/out"

# A result for a command the device does not have: 200 and the next one.
expect 0 "enqueue RestartDevice" mdm-queue enqueue RestartDevice $U1
C5=$(cat "$T/out")
plist "$T/b/ghost" Status=Acknowledged UDID=$U1 CommandUUID=no-such-command
report dev1 "$T/b/ghost"
status 200 "a result for an unknown command"
check "answered with the next command" grep -q "$C5" "$T/resp"
# A report that cannot be parsed is stored and does not block the queue.
printf 'this is not a plist' >"$T/b/junk"
report dev1 "$T/b/junk"
status 200 "an unparseable report from a known certificate"
check "stored as unparseable" test "$(sql "SELECT count(*) FROM results WHERE status = 'unparseable'")" -ge 1
check "and its command left the queue" \
	test "$(sql "SELECT status FROM queue q JOIN commands c ON c.cid = q.command WHERE c.uuid = '$C5'")" = unparseable

# ---- /mdm told apart by Content-Type; methods, paths ----
put dev1 /mdm application/x-apple-aspen-mdm-checkin "$T/b/tok1"
status 200 "/mdm with the check-in type is a check-in"
put dev1 /mdm application/x-apple-aspen-mdm "$T/b/idle1"
status 200 "/mdm with the command type is a report"
put dev1 /nowhere application/x-apple-aspen-mdm "$T/b/idle1"
status 404 "an unknown path"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "$URL/mdm/connect")
status 405 "GET is not a device request"

# ---- user channel ----
plist "$T/b/utok" MessageType=TokenUpdate UDID=$U1 UserID=USER-1 \
	UserShortName=alice Topic=com.apple.mgmt.test data:Token="$TOK" PushMagic=MAGIC-U
checkin dev1 "$T/b/utok"
status 200 "user channel TokenUpdate"
check "user enrollment created" test "$(sql "SELECT type FROM enrollments WHERE id = '$U1:USER-1'")" = user
expect 0 "enqueue to the user channel" mdm-queue enqueue ProfileList "$U1:USER-1"
C6=$(cat "$T/out")
plist "$T/b/uidle" Status=Idle UDID=$U1 UserID=USER-1
report dev1 "$T/b/uidle"
check "the user channel gets its command" grep -q "$C6" "$T/resp"
plist "$T/b/uua" MessageType=UserAuthenticate UDID=$U1 UserID=USER-2 UserShortName=bob
checkin dev1 "$T/b/uua"
status 410 "UserAuthenticate is declined by default"

# ---- bootstrap token: stored sealed ----
plist "$T/b/sbt" MessageType=SetBootstrapToken UDID=$U1 data:BootstrapToken=c2VjcmV0LWJvb3RzdHJhcA==
checkin dev1 "$T/b/sbt"
status 200 "SetBootstrapToken"
check "not stored in the clear" sh -c \
	"! sqlite3 '$S/mdm.db' \"SELECT hex(bootstrap_token) FROM enrollments WHERE id = '$U1'\" | grep -qi 7365637265742D626F6F747374726170"
check "but stored" test -n "$(sql "SELECT hex(bootstrap_token) FROM enrollments WHERE id = '$U1'")"
plist "$T/b/gbt" MessageType=GetBootstrapToken UDID=$U1
checkin dev1 "$T/b/gbt"
status 200 "GetBootstrapToken"
check "the token comes back" grep -q c2VjcmV0LWJvb3RzdHJhcA== "$T/resp"
sql "UPDATE enrollments SET bootstrap_token = bootstrap_token WHERE id = '$U1'"

# ---- GetToken and DeclarativeManagement, not configured ----
plist "$T/b/gt" MessageType=GetToken UDID=$U1 TokenServiceType=com.apple.maid
checkin dev1 "$T/b/gt"
status 400 "GetToken without --token-exec is refused"
plist "$T/b/dm" MessageType=DeclarativeManagement UDID=$U1 Endpoint=tokens
checkin dev1 "$T/b/dm"
status 400 "DeclarativeManagement without --dm-url is refused"

# ---- spoofing ----
plist "$T/b/idle2" Status=Idle UDID=$U2
report dev2 "$T/b/idle1"
status 400 "another device's (unbound) certificate for U1"
plist "$T/b/auth2" MessageType=Authenticate UDID=$U2 Topic=com.apple.mgmt.test
checkin dev1 "$T/b/auth2"
status 400 "dev1's certificate cannot Authenticate a second device"
checkin dev2 "$T/b/auth2"
status 200 "dev2 enrolls as U2"
report dev2 "$T/b/idle1"
status 400 "dev2's certificate speaking for U1"
report dev1 "$T/b/idle2"
status 400 "dev1's certificate speaking for U2"
report evil "$T/b/idle1"
status 400 "a certificate from an unknown CA"
report - "$T/b/idle1"
status 400 "no identity at all"
sig=$(openssl cms -sign -binary -outform DER -in "$T/b/idle1" \
	-signer "$T/dev/dev1.pem" -inkey "$T/dev/dev1.key" | base64 -w0)
CODE=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$T/b/idle2" \
	-H "Mdm-Signature: $sig" "$URL/mdm/connect")
status 400 "a signature over another body (tampered)"
CODE=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$T/b/idle1" \
	-H "Mdm-Signature: bm90IGEgc2lnbmF0dXJl" "$URL/mdm/connect")
status 400 "a signature that is not CMS"
report dev1 "$T/b/idle1" -H "X-Client-Cert: :$(base64 -w0 "$T/dev/dev2.der"):"
status 200 "a cert header is ignored unless --cert-header is given"
check "refusals are logged with the reason" grep -q "not enrolled\|bound to another" "$T/main.log"
check "no request was answered 401" sh -c "! grep -q ' 401 ' '$T/main.log'"

# ---- renewal and revocation ----
report dev1b "$T/b/idle1"
status 200 "a renewed certificate (RenewalReq signed by dev1) is accepted"
check "and re-bound" test "$(sql "SELECT cert_hash FROM enrollments WHERE id = '$U1'")" = "$(hash_of dev1b)"
report dev1 "$T/b/idle1"
status 400 "the replaced certificate no longer speaks for U1"
plist "$T/b/auth3" MessageType=Authenticate UDID=DEV-3 Topic=com.apple.mgmt.test
checkin dev3 "$T/b/auth3"
status 200 "dev3 enrolls"
expect 0 "revoke dev3's certificate" mdm-scep revoke "$(openssl x509 -in "$T/dev/dev3.pem" -noout -serial | sed 's/.*=//')"
plist "$T/b/idle3" Status=Idle UDID=DEV-3
report dev3 "$T/b/idle3"
status 400 "a revoked certificate is refused"

# ---- Authenticate clears the queues; CheckOut disables ----
expect 0 "queue for U2" mdm-queue enqueue ProfileList $U2
checkin dev2 "$T/b/auth2"
status 200 "U2 authenticates again"
check "its queue was cleared" test "$(sql "SELECT count(*) FROM queue q JOIN enrollments e ON e.eid = q.enrollment WHERE e.id = '$U2' AND q.status = 'pending'")" = 0
plist "$T/b/co" MessageType=CheckOut UDID=$U2 Topic=com.apple.mgmt.test
checkin dev2 "$T/b/co"
status 200 "CheckOut"
check "the enrollment is disabled" test "$(sql "SELECT enabled FROM enrollments WHERE id = '$U2'")" = 0

# ---- User Enrollment ----
plist "$T/b/ueauth" MessageType=Authenticate EnrollmentID=UE-ENR-1 Topic=com.apple.mgmt.test
checkin ue "$T/b/ueauth"
status 200 "User Enrollment Authenticate (EnrollmentID)"
check "typed user-enrollment-device" test "$(sql "SELECT type FROM enrollments WHERE id = 'UE-ENR-1'")" = user-enrollment-device

# ---- the shared fixtures ----
if F=$(fixture nanomdm/mdm/testdata/Authenticate.2.plist); then
	mkdev fx
	checkin fx "$F"
	status 200 "NanoMDM's Authenticate fixture"
	FID=$(sed -n 's:.*<string>\([0-9A-F-]\{36\}\)</string>.*:\1:p' "$F" | head -n 1)
	for n in TokenUpdate.2.plist; do
		checkin fx "$(fixture nanomdm/mdm/testdata/$n)"
		status 200 "NanoMDM's $n fixture"
	done
	expect 0 "queue the command the fixture answers" mdm-queue enqueue \
		DeviceInformation --uuid 76eda240-5488-4989-8339-f2ae160113c4 "$FID"
	report fx "$(fixture nanomdm/mdm/testdata/DeviceInformation.1.plist)"
	status 200 "NanoMDM's DeviceInformation result fixture"
	check "the result is stored" test "$(sql "SELECT count(*) FROM results r JOIN enrollments e ON e.eid = r.enrollment WHERE e.cert_hash = '$(hash_of fx)' AND r.status = 'acknowledged'")" = 1
else
	skip 6 "fixtures not present"
fi
if F=$(fixture nanomdm/mdm/testdata/Authenticate.1.plist); then
	mkdev fx2
	checkin fx2 "$F"
	status 200 "NanoMDM's Authenticate.1 fixture (an iOS UDID)"
	checkin fx2 "$(fixture nanomdm/mdm/testdata/TokenUpdate.1.plist)"
	status 200 "NanoMDM's TokenUpdate.1 fixture"
else
	skip 2 "fixtures not present"
fi
if F=$(fixture micromdm/checkin/testdata/TokenUpdate.plist); then
	mkdev fx3
	plist "$T/b/auth-fx3" MessageType=Authenticate \
		UDID=FA01680E-98CA-5557-8F59-7716ECFEE964 \
		Topic=com.apple.mgmt.XServer.8b4034c3-8cd9-4121-9999-cd2ddbf9a5b1
	checkin fx3 "$T/b/auth-fx3"
	checkin fx3 "$F"
	status 200 "MicroMDM's TokenUpdate fixture (empty UnlockToken, empty strings)"
	check "its push magic is stored" test "$(sql "SELECT push_magic FROM enrollments WHERE id = 'FA01680E-98CA-5557-8F59-7716ECFEE964'")" = 5002D9F7-2FCC-45D0-BDFD-5CB0597F18B5
else
	skip 2 "fixtures not present"
fi

# ---- garbage ----
head -c 10000000 /dev/zero >"$T/b/big"
CODE=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$T/b/big" "$URL/mdm/connect")
status 413 "a 10 MB body"
head -c 5000 /dev/urandom >"$T/b/rand"
report dev1b "$T/b/rand"
status 200 "random bytes from a known device are stored, not fatal"
checkin dev1b "$T/b/rand"
status 400 "a check-in that is not a plist"
check "the server survived all that" kill -0 "$MAIN"
stop "$MAIN"

# ---- GetToken, DDM, zero-length UserAuthenticate ----
cat >"$T/token.sh" <<'EOF'
#!/bin/sh
cat >/dev/null
printf 'token-for-%s-%s' "$MDM_ENROLLMENT_ID" "$MDM_TOKEN_SERVICE_TYPE"
EOF
chmod 755 "$T/token.sh"
printf '{"Declarations":{}}' >"$T/dm.json"
sink ddm 200 127.0.0.1:0 "$T/dm.json"
DDM=$SPID
serve extra --no-tls --token-exec "$T/token.sh" --dm-url "http://127.0.0.1:$PORT/ddm" \
	--user-auth-zero-challenge
checkin dev1b "$T/b/gt"
status 200 "GetToken through --token-exec"
check "TokenData is what it printed" test "$(tr -d ' \t\n' <"$T/resp" |
	sed 's:.*<data>\([^<]*\)</data>.*:\1:' | base64 -d)" = "token-for-$U1-com.apple.maid"
checkin dev1b "$T/b/dm"
status 200 "DeclarativeManagement forwarded"
check "the DDM answer comes back" grep -q Declarations "$T/resp"
check "the DDM server got the endpoint and the enrollment" \
	grep -q "X-Enrollment-ID: $U1" "$T/ddm/1.req"
check "GET /ddm/tokens" grep -q "GET /ddm/tokens" "$T/ddm/1.req"
checkin dev1b "$T/b/uua"
status 200 "UserAuthenticate with --user-auth-zero-challenge"
check "an empty DigestChallenge" grep -q "<key>DigestChallenge</key>" "$T/resp"
stop "$SPID"
stop "$DDM"

# ---- mutual TLS and the proxy header ----
serve tls
TPORT=$PORT
TURL="https://127.0.0.1:$TPORT"
CODE=$(curl -s -o "$T/resp" -w '%{http_code}' --cacert "$S/ca/ca.pem" \
	--cert "$T/dev/dev1b.pem" --key "$T/dev/dev1b.key" -X PUT \
	--data-binary "@$T/b/idle1" "$TURL/mdm/connect")
status 200 "Idle over mutual TLS, no signature"
CODE=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$S/ca/ca.pem" \
	-X PUT --data-binary "@$T/b/idle1" "$TURL/mdm/connect")
status 400 "TLS without a client certificate or signature"
CODE=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$S/ca/ca.pem" \
	--cert "$T/dev/evil.pem" --key "$T/dev/evil.key" -X PUT \
	--data-binary "@$T/b/idle1" "$TURL/mdm/connect")
status 400 "a client certificate from an unknown CA: 400, not a TLS alert"
stop "$SPID"

serve proxy --no-tls --cert-header X-Client-Cert
report - "$T/b/idle1" -H "X-Client-Cert: :$(base64 -w0 "$T/dev/dev1b.der"):"
status 200 "RFC 9440 certificate header"
esc=$(od -An -v -tx1 "$T/dev/dev1b.pem" | tr -d ' \n' | sed 's/\(..\)/%\1/g')
report - "$T/b/idle1" -H "X-Client-Cert: $esc"
status 200 "nginx's escaped PEM header"
report - "$T/b/idle1" -H "X-Client-Cert: :$(base64 -w0 "$T/dev/evil.der"):"
status 400 "a forwarded certificate from an unknown CA"
stop "$SPID"

# ---- a real renewal: scepclient enrolls and renews at mdm-serve's /scep ----
# scepclient sends single DES: this also shows the SCEP mount reads it
# without the legacy provider loaded process-wide.
if command -v scepclient >/dev/null 2>&1; then
	serve renew --no-tls --challenge s3cret
	SURL="$URL/scep"
	mkdir -p "$T/sc"
	openssl genrsa -traditional -out "$T/sc/key.pem" 2048 2>/dev/null
	expect 0 "scepclient enrolls at /scep" scepclient -server-url "$SURL" \
		-private-key "$T/sc/key.pem" -challenge s3cret -cn renewer
	check "the certificate chains to our CA" \
		openssl verify -CAfile "$S/ca/ca.pem" "$T/sc/client.pem"
	cp "$T/sc/client.pem" "$T/dev/sc1.pem"
	cp "$T/sc/key.pem" "$T/dev/sc1.key"
	plist "$T/b/authr" MessageType=Authenticate UDID=RENEW-1 Topic=com.apple.mgmt.test
	checkin sc1 "$T/b/authr"
	status 200 "the SCEP identity enrolls"
	expect 0 "scepclient renews it (RenewalReq signed by the first)" \
		scepclient -server-url "$SURL" -private-key "$T/sc/key.pem" -cn renewer
	cp "$T/sc/client.pem" "$T/dev/sc2.pem"
	cp "$T/sc/key.pem" "$T/dev/sc2.key"
	check "a new certificate" sh -c "! cmp -s '$T/dev/sc1.pem' '$T/dev/sc2.pem'"
	plist "$T/b/idler" Status=Idle UDID=RENEW-1
	report sc2 "$T/b/idler"
	status 200 "the renewed identity is accepted without a new Authenticate"
	check "and bound" test "$(sql "SELECT cert_hash FROM enrollments WHERE id = 'RENEW-1'")" = "$(hash_of sc2)"
	report sc1 "$T/b/idler"
	status 400 "the old one is not"
	mkdir -p "$T/sc3"
	openssl genrsa -traditional -out "$T/sc3/key.pem" 2048 2>/dev/null
	expect 1 "a wrong challenge is refused" scepclient -server-url "$SURL" \
		-private-key "$T/sc3/key.pem" -challenge wrong -cn other
	stop "$SPID"

	# One process, a whole enrollment: the profile's one-time challenge
	# pays for one certificate at /scep.
	if [ ! -s "$S/push/com.apple.mgmt.test.pem" ]; then
		openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
			-keyout "$T/pt.key" -out "$T/pt.pem" \
			-subj "/UID=com.apple.mgmt.test/CN=APSP:test/C=US" 2>/dev/null
		chmod 600 "$T/pt.key"
		mdm-certs push-import "$T/pt.pem" "$T/pt.key" >/dev/null
	fi
	serve enroll --no-tls --url https://mdm.example.org
	type=$(curl -s -o "$T/enroll.der" -w '%{http_code} %{content_type}' "$URL/mdm/enroll")
	check "GET /mdm/enroll: 200, a configuration profile" \
		test "$type" = "200 application/x-apple-aspen-config"
	check "signed by our signing identity" openssl cms -verify -inform DER \
		-in "$T/enroll.der" -CAfile "$S/ca/ca.pem" -purpose any -out "$T/enroll.xml"
	check "its URLs are the server's" grep -q \
		"<string>https://mdm.example.org/mdm/checkin</string>" "$T/enroll.xml"
	otp=$(tr -d '\n\t' <"$T/enroll.xml" | sed -n 's/.*<key>Challenge<\/key><string>\([^<]*\)<.*/\1/p')
	check "it holds a one-time challenge" test "${#otp}" = 24
	mkdir -p "$T/sc4" "$T/sc5"
	openssl genrsa -traditional -out "$T/sc4/key.pem" 2048 2>/dev/null
	openssl genrsa -traditional -out "$T/sc5/key.pem" 2048 2>/dev/null
	expect 0 "the profile's challenge enrolls at /scep" scepclient \
		-server-url "$URL/scep" -private-key "$T/sc4/key.pem" \
		-challenge "$otp" -cn otp-device
	expect 1 "once: another key cannot use it again" scepclient -server-url "$URL/scep" \
		-private-key "$T/sc5/key.pem" -challenge "$otp" -cn otp-again
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary junk "$URL/mdm/enroll")
	check "a DEP POST that is not a signed MachineInfo: 400" test "$code" = 400
	code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$URL/mdm/enroll")
	check "DELETE /mdm/enroll: 405" test "$code" = 405
	stop "$SPID"
	serve noscep --no-tls --no-scep
	code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/mdm/enroll")
	check "without --url /mdm/enroll is 404" test "$code" = 404
	code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/scep?operation=GetCACaps")
	check "--no-scep: /scep is not served" test "$code" != 200
	stop "$SPID"
else
	skip 21 "scepclient is not installed"
fi

# ---- webhooks: the receiver is down, then comes back ----
sink probe 200
HPORT=$PORT
stop "$SPID"
printf 'hook-secret\n' >"$T/hmac.key"
chmod 600 "$T/hmac.key"
serve hooks --no-tls --webhook-url "http://127.0.0.1:$HPORT/webhook" \
	--webhook-hmac-key-file "$T/hmac.key"
HOOKS=$SPID
report dev1b "$T/b/idle1"
checkin dev1b "$T/b/tok1"
report dev1b "$T/b/idle1"
status 200 "check-ins go on while the receiver is down"
sleep 2
check "events wait in the outbox" test "$(sql "SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL")" -ge 3
check "attempts were made and recorded" test "$(sql "SELECT max(attempts) FROM webhook_outbox")" -ge 1
sink hooksink 200 "127.0.0.1:$HPORT"
n=0
while [ "$(sql "SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL")" != 0 ] && [ $n -lt 150 ]; do
	sleep 0.2
	n=$((n + 1))
done
check "every event delivered once the receiver is back" \
	test "$(sql "SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL")" = 0
got=$(ls "$T/hooksink" | grep -c '\.req$')
check "none lost, none twice: 3 events" test "$got" = 3
check "in order: Connect, TokenUpdate, Connect" sh -c \
	"grep -q mdm.Connect '$T/hooksink/1.body' && grep -q mdm.TokenUpdate '$T/hooksink/2.body' && grep -q mdm.Connect '$T/hooksink/3.body'"
want=$(openssl dgst -sha256 -hmac hook-secret -binary <"$T/hooksink/2.body" | base64 -w0)
check "signed with X-Hmac-Signature" grep -q "X-Hmac-Signature: $want" "$T/hooksink/2.req"
check "the raw payload is the body sent" sh -c \
	"grep -q \"\$(base64 -w0 < '$T/b/tok1')\" '$T/hooksink/2.body'"
stop "$HOOKS"

done_testing
