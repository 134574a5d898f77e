#!/bin/sh
# mdm-scep end to end: "mdm-scep serve" on a free port against Debian's
# scepclient (micromdm), curl and openssl: enrollment with static and
# one-time challenges, renewal, revocation and the CRL, the policy flags,
# and garbage of every kind.  The scepclient checks are skipped when it
# is not installed (apt-get install scep).
. "$MDM_SOURCE_DIR/tests/cmd/lib.sh"

have_client=no
command -v scepclient >/dev/null 2>&1 && have_client=yes
have_curl=no
command -v curl >/dev/null 2>&1 && have_curl=yes

# fails DESCRIPTION CMD...: CMD exits with a status other than 0.
fails() {
	desc=$1
	shift
	if "$@" >"$T/out" 2>"$T/err"; then
		t_result 1 "$desc"
		echo "# expected a failure: $*"
	else
		t_result 0 "$desc"
	fi
}

# serve NAME ARGS...: starts "mdm-scep -v serve" on a free loopback port
# in the background, its log in $T/NAME.log; sets SPID, PORT and URL.
serve() {
	name=$1
	shift
	start "$name" mdm-scep -v serve --listen 127.0.0.1:0 \
		--port-file "$T/$name.port" --threads 2 "$@" || return 1
	URL="http://127.0.0.1:$PORT/scep"
}

# Client keys, made up front: scepclient would make a 2048-bit key per run.
mkdir -p "$T/keys"
key_n=0
if [ "$have_client" = yes ]; then
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
		openssl genrsa -traditional -out "$T/keys/$i.pem" 2048 2>/dev/null &
		[ $((i % 2)) = 0 ] && wait
	done
	wait
	openssl genrsa -traditional -out "$T/keys/small.pem" 1024 2>/dev/null
fi

# client DIR: a scepclient directory with a key no request has used yet.
# scepclient keeps its CSR (with the challenge in it) and the certificate
# beside the key, so every fresh enrollment needs a fresh directory.
client() {
	key_n=$((key_n + 1))
	mkdir -p "$1"
	cp "$T/keys/$key_n.pem" "$1/key.pem"
}

# enroll DIR ARGS...: scepclient in DIR; a RenewalReq when DIR holds a
# certificate already.
enroll() {
	d=$1
	shift
	if ! scepclient -server-url "$URL" -private-key "$d/key.pem" "$@" \
	    >"$d/log" 2>&1; then
		sed 's/^/scepclient: /' "$d/log" >&2
		return 1
	fi
}

serial_of() {
	openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'
}

# code ARGS...: curl's HTTP status for a request; body in $T/body.
code() {
	curl -s -o "$T/body" -w '%{http_code}' "$@"
}

# Before the state exists.
expect 78 "serve on an uninitialised state" timeout 10 mdm-scep serve --listen 127.0.0.1:0
check "says to run mdm-certs init" grep -q "mdm-certs init" "$T/err"
expect 78 "list on an uninitialised state" mdm-scep list
expect 78 "challenge on an uninitialised state" mdm-scep challenge
expect 64 "serve takes no operands" timeout 10 mdm-scep serve extra
expect 64 "--challenge and --challenge-file exclude each other" \
	timeout 10 mdm-scep serve --challenge a --challenge-file /dev/null
expect 64 "a bad --allow-subject regex" timeout 10 mdm-scep serve --allow-subject '('
expect 64 "--validity-days 0" timeout 10 mdm-scep serve --validity-days 0
expect 64 "--min-key-bits 512" timeout 10 mdm-scep serve --min-key-bits 512
expect 64 "--threads 0" timeout 10 mdm-scep serve --threads 0
expect 64 "--max-body 100m is over the cap" timeout 10 mdm-scep serve --max-body 100m
expect 64 "--timeout soon" timeout 10 mdm-scep serve --timeout soon
expect 64 "challenge --ttl forever" mdm-scep challenge --ttl forever
expect 64 "crl --days 0" mdm-scep crl --days 0
expect 64 "list --expiring-within soon" mdm-scep list --expiring-within soon

mdm-certs init --hostname localhost >/dev/null 2>&1
expect 0 "list on a fresh state" mdm-scep list
check "prints nothing" test ! -s "$T/out"
expect 1 "list --revoked on a fresh state: nothing, exit 1" mdm-scep list --revoked
expect 64 "a --listen without a port" timeout 10 mdm-scep serve --listen 8080
expect 64 "an IPv6 --listen without brackets" timeout 10 mdm-scep serve --listen ::1:8080
expect 78 "--csr-verify-exec that does not exist" \
	timeout 10 mdm-scep serve --listen 127.0.0.1:0 --csr-verify-exec /nonexistent/prog
expect 78 "--csr-verify-exec without a path" \
	timeout 10 mdm-scep serve --listen 127.0.0.1:0 --csr-verify-exec true
printf 's3cret\n' >"$T/chal"
chmod 644 "$T/chal"
expect 77 "a challenge file others can read" \
	timeout 10 mdm-scep serve --listen 127.0.0.1:0 --challenge-file "$T/chal"
chmod 600 "$T/chal"

# A challenge: 24 characters of base64url.
expect 0 "challenge" mdm-scep challenge
check "challenge is 24 base64url characters" grep -Eqx '[A-Za-z0-9_-]{24}' "$T/out"
expect 0 "challenge --json" mdm-scep challenge --json --ttl 10m
check "challenge --json is one object" grep -Eqx '\{"challenge":"[A-Za-z0-9_-]{24}"\}' "$T/out"

if ! serve main --challenge-file "$T/chal"; then
	t_result 1 "serve starts on a free port"
	sed 's/^/# /' "$T/main.log"
	done_testing
	exit 1
fi
t_result 0 "serve starts on a free port ($PORT)"
MAIN=$SPID
check "says where it listens" grep -q "listening on 127.0.0.1:$PORT" "$T/main.log"
expect 69 "a second server on the same port" timeout 10 mdm-scep serve --listen "127.0.0.1:$PORT"

# The HTTP side, with curl.
if [ "$have_curl" = yes ]; then
	check "GetCACaps: 200" test "$(code "$URL?operation=GetCACaps")" = 200
	check "GetCACaps offers POSTPKIOperation" grep -q '^POSTPKIOperation' "$T/body"
	check "GetCACaps offers Renewal" grep -q '^Renewal' "$T/body"
	check "GetCACaps offers SHA-256" grep -q '^SHA-256' "$T/body"
	check "GetCACaps offers AES" grep -q '^AES' "$T/body"
	check "GetCACert: 200" test "$(code -D "$T/hdr" "$URL?operation=GetCACert")" = 200
	check "GetCACert is application/x-x509-ca-cert" grep -qi '^content-type: application/x-x509-ca-cert' "$T/hdr"
	openssl x509 -in "$S/ca/ca.pem" -outform DER -out "$T/ca.der"
	check "GetCACert's DER is ca.pem" cmp "$T/body" "$T/ca.der"
	check "the classic path /cgi-bin/pkiclient.exe works" \
		test "$(code "http://127.0.0.1:$PORT/cgi-bin/pkiclient.exe?operation=GetCACert")" = 200
	check "another path: 404" test "$(code "http://127.0.0.1:$PORT/other?operation=GetCACert")" = 404
	check "PUT: 405" test "$(code -X PUT -d x "$URL?operation=PKIOperation")" = 405
	check "no operation: 400" test "$(code "$URL")" = 400
	check "an unknown operation: 400" test "$(code "$URL?operation=Frobnicate")" = 400
	head -c 4096 /dev/urandom >"$T/random"
	check "PKIOperation POST of random bytes: 400" \
		test "$(code --data-binary @"$T/random" -H 'Content-Type: application/x-pki-message' "$URL?operation=PKIOperation")" = 400
	head -c 300 "$T/ca.der" >"$T/truncated"
	check "PKIOperation POST of truncated DER: 400" \
		test "$(code --data-binary @"$T/truncated" "$URL?operation=PKIOperation")" = 400
	check "PKIOperation POST of a certificate (not CMS): 400" \
		test "$(code --data-binary @"$T/ca.der" "$URL?operation=PKIOperation")" = 400
	check "PKIOperation POST with no body: 400" \
		test "$(code -X POST "$URL?operation=PKIOperation")" = 400
	check "PKIOperation GET of garbage base64: 400" \
		test "$(code "$URL?operation=PKIOperation&message=%%%not-base64")" = 400
	check "PKIOperation GET without message: 400" \
		test "$(code "$URL?operation=PKIOperation")" = 400
	truncate -s 100M "$T/big"
	check "a 100 MB body (Content-Length): 413 before it is sent" \
		test "$(code -X POST -T "$T/big" "$URL?operation=PKIOperation")" = 413
	c=$(head -c 100000000 /dev/zero | code -X POST -T - "$URL?operation=PKIOperation")
	# The server answers 413 once 256k have arrived and closes; curl,
	# still sending, may see only that close (000), or the close after
	# the "100 Continue" it got first (100).
	check "a 100 MB chunked body: 413 or the connection closed ($c)" \
		sh -c "test '$c' = 413 || test '$c' = 000 || test '$c' = 100"
	rm -f "$T/big"
	check "the server survived all that" kill -0 "$MAIN"
	check "GetCACaps still answers" test "$(code "$URL?operation=GetCACaps")" = 200

	# A real Apple request, by GET: with its '+' escaped, and raw (a
	# '+' a client did not escape arrives as a space).  It is encrypted
	# to another CA, so it cannot be granted, but it must parse.
	if f=$(fixture scep/testdata/PKCSReq.der); then
		b64=$(base64 -w0 "$f")
		esc=$(printf '%s' "$b64" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
		c1=$(code "$URL?operation=PKIOperation&message=$esc")
		cp "$T/body" "$T/get1"
		c2=$(code "$URL?operation=PKIOperation&message=$b64")
		check "Apple PKCSReq by GET parses: 200 ($c1)" test "$c1" = 200
		check "the same with raw '+' answers the same ($c2)" test "$c2" = "$c1"
		sp=$(printf '%s' "$b64" | sed 's/+/%20/g')
		c3=$(code "$URL?operation=PKIOperation&message=$sp")
		check "the same with '+' sent as a space answers the same ($c3)" test "$c3" = "$c1"
		check "its answer is a CertRep (CMS SignedData)" \
			openssl cms -cmsout -inform DER -in "$T/get1" -noout
		check "by POST too" test "$(code --data-binary @"$f" "$URL?operation=PKIOperation")" = 200
	else
		skip 5 "no shared fixtures"
	fi
else
	skip 28 "curl is not installed"
fi

if [ "$have_client" = yes ]; then
	# Enrollment with the static challenge.
	client "$T/c1"
	expect 0 "scepclient enrolls with the static challenge" enroll "$T/c1" -challenge s3cret -cn dev1
	check "the certificate verifies against our CA" \
		openssl verify -CAfile "$S/ca/ca.pem" "$T/c1/client.pem"
	check "its subject is the CSR's" sh -c "openssl x509 -in '$T/c1/client.pem' -noout -subject | grep -q 'CN *= *dev1'"
	check "it is for client authentication" sh -c "openssl x509 -in '$T/c1/client.pem' -noout -ext extendedKeyUsage | grep -q 'Client Authentication'"
	s1=$(serial_of "$T/c1/client.pem")
	expect 0 "list" mdm-scep list
	check "list shows it" grep -q "^$s1	CN=dev1," "$T/out"
	check "list has five columns" test "$(awk -F '\t' '{print NF}' "$T/out" | sort -u)" = 5
	check "list's fingerprint is openssl's" grep -q "	$(openssl x509 -in "$T/c1/client.pem" -outform DER | sha256sum | cut -d' ' -f1)\$" "$T/out"
	check "not revoked: empty column" test "$(awk -F '\t' '{print $4}' "$T/out")" = ""
	check "the access log has the issue" grep -q "PKIOperation issued serial=$s1 status=200" "$T/main.log"

	# Wrong challenge.
	client "$T/c2"
	fails "a wrong challenge fails" enroll "$T/c2" -challenge wrong -cn dev2
	check "scepclient was told FAILURE with a failInfo" grep -q 'failInfo' "$T/c2/log"
	check "the server answered a FAILURE CertRep, HTTP 200" grep -q 'PKIOperation failure:badRequest serial=- status=200' "$T/main.log"
	check "no certificate" test ! -e "$T/c2/client.pem"
	client "$T/c2b"
	fails "no challenge fails" enroll "$T/c2b" -cn dev2

	# One-time challenges: once, then never again; not after expiry.
	ch=$(mdm-scep challenge)
	client "$T/c3"
	expect 0 "a one-time challenge enrolls" enroll "$T/c3" -challenge "$ch" -cn dev3
	client "$T/c4"
	fails "the same challenge fails the second time" enroll "$T/c4" -challenge "$ch" -cn dev4
	ch=$(mdm-scep challenge --ttl 1s)
	sleep 2
	client "$T/c5"
	fails "an expired one-time challenge fails" enroll "$T/c5" -challenge "$ch" -cn dev5

	# A key below the minimum.
	mkdir -p "$T/small"
	cp "$T/keys/small.pem" "$T/small/key.pem"
	fails "a 1024-bit key is refused by default" enroll "$T/small" -challenge s3cret -cn small

	# Renewal: scepclient sends a RenewalReq signed by client.pem.
	cp "$T/c1/client.pem" "$T/c1/first.pem"
	expect 0 "scepclient renews (RenewalReq, no challenge)" enroll "$T/c1" -cn dev1
	s2=$(serial_of "$T/c1/client.pem")
	check "the renewed certificate is a new one ($s2)" test "$s2" != "$s1"
	check "and verifies" openssl verify -CAfile "$S/ca/ca.pem" "$T/c1/client.pem"
	check "the access log says renewed" grep -q "PKIOperation renewed serial=$s2 status=200" "$T/main.log"
	h1=$(openssl x509 -in "$T/c1/first.pem" -outform DER | sha256sum | cut -c1-64)
	check "the renewal records the certificate it replaces (for mdm-serve)" \
		test "$(sqlite3 "$S/mdm.db" "SELECT renewed_from FROM certificates WHERE serial = '$s2'")" = "$h1"
	check "a first enrollment records none" \
		test -z "$(sqlite3 "$S/mdm.db" "SELECT renewed_from FROM certificates WHERE serial = '$s1'")"
	mdm-scep list >"$T/list"
	check "list has both" sh -c "grep -q '^$s1	' '$T/list' && grep -q '^$s2	' '$T/list'"

	# Revocation and the CRL.
	expect 0 "revoke the renewed certificate" mdm-scep revoke "$s2"
	check "revoke says revoked" test "$(cat "$T/out")" = "$s2	revoked"
	expect 1 "revoking it again: exit 1" mdm-scep revoke "$s2"
	check "revoke says already-revoked" test "$(cat "$T/out")" = "$s2	already-revoked"
	expect 0 "revoke reads serials on stdin, any case" sh -c "echo '$s1' | tr A-F a-f | mdm-scep revoke"
	check "and revoked that one" grep -q "	revoked" "$T/out"
	expect 66 "an unknown serial: 66" mdm-scep revoke 0DEADBEEF0
	check "says it is unknown" test -s "$T/err"
	expect 65 "a serial that is not hex: 65" mdm-scep revoke not-hex
	expect 0 "list --revoked" mdm-scep list --revoked
	check "lists both revoked certificates" test "$(wc -l <"$T/out")" = 2
	check "with the revocation time" grep -Eq "^$s2	.*	[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z	" "$T/out"
	expect 0 "mdm-certs list shows the device identities" mdm-certs list --kind device
	check "the revoked one among them" grep -q "	$s2	" "$T/out"
	expect 0 "mdm-certs list --expiring-within: devices due for renewal" \
		mdm-certs list --kind device --expiring-within 400
	check "leaves the revoked ones out" sh -c "! grep -q '	$s2	' '$T/out' && ! grep -q '	$s1	' '$T/out'"
	expect 0 "list --json" mdm-scep list --json
	check "JSON revoked is a time or null" sh -c "grep -q '\"revoked\":\"20' '$T/out' && grep -q '\"revoked\":null' '$T/out'"
	expect 0 "crl -o" mdm-scep crl -o "$T/crl.der"
	check "openssl reads the CRL" openssl crl -inform DER -in "$T/crl.der" -noout
	check "the CRL lists the revoked serial" sh -c "openssl crl -inform DER -in '$T/crl.der' -noout -text | tr -d ' ' | grep -qx 'SerialNumber:$s2'"
	check "the CRL verifies against the CA" openssl crl -inform DER -in "$T/crl.der" -CAfile "$S/ca/ca.pem" -noout -verify
	expect 0 "crl to a pipe" sh -c "mdm-scep crl --days 2 | openssl crl -inform DER -noout -nextupdate"
	expect 1 "list --expiring-within 30: nothing" mdm-scep list --expiring-within 30
	expect 0 "list --expiring-within 400: all" mdm-scep list --expiring-within 400
	fails "a renewal signed by the revoked certificate fails" enroll "$T/c1" -cn dev1
	check "the server answered it with a FAILURE CertRep" sh -c "grep PKIOperation '$T/main.log' | tail -n 1 | grep -q 'PKIOperation failure:[a-zA-Z]* serial=- status=200'"
	cp "$T/c1/first.pem" "$T/c1/client.pem"
	fails "so does one signed by the other revoked one" enroll "$T/c1" -cn dev1

	# After all the garbage above, a fresh enrollment still works.
	client "$T/c6"
	expect 0 "the server still enrolls" enroll "$T/c6" -challenge s3cret -cn dev6

	# PKIOperation by GET, end to end: a proxy turns scepclient's POSTs
	# into GETs, with the base64 escaped the first time and its '+' left
	# raw (as a careless client sends it) the second.
	if command -v python3 >/dev/null 2>&1; then
		cat >"$T/get-proxy.py" <<'EOF'
import base64, http.server, sys, urllib.parse, urllib.request
upstream, portfile = sys.argv[1], sys.argv[2]
posts = 0
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def relay(self, url):
        with urllib.request.urlopen(url) as r:
            body, ctype = r.read(), r.headers.get("Content-Type", "")
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.relay(upstream + "?" + urllib.parse.urlsplit(self.path).query)
    def do_POST(self):
        global posts
        posts += 1
        n = int(self.headers["Content-Length"])
        b64 = base64.b64encode(self.rfile.read(n)).decode()
        msg = urllib.parse.quote(b64, safe="") if posts == 1 else b64
        self.relay(upstream + "?operation=PKIOperation&message=" + msg)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(portfile, "w").write("%d\n" % s.server_address[1])
s.serve_forever()
EOF
		python3 "$T/get-proxy.py" "$URL" "$T/proxy.port" &
		PIDS="$PIDS $!"
		n=0
		while [ ! -s "$T/proxy.port" ] && [ "$n" -lt 100 ]; do
			sleep 0.05
			n=$((n + 1))
		done
		real=$URL
		URL="http://127.0.0.1:$(cat "$T/proxy.port")/scep"
		client "$T/g1"
		expect 0 "enrollment with PKIOperation by GET" enroll "$T/g1" -challenge s3cret -cn get1
		check "the certificate verifies" openssl verify -CAfile "$S/ca/ca.pem" "$T/g1/client.pem"
		check "the server saw a GET PKIOperation" grep -q "GET PKIOperation issued serial=$(serial_of "$T/g1/client.pem") " "$T/main.log"
		expect 0 "renewal by GET with a raw '+' in the message" enroll "$T/g1" -cn get1
		check "the server saw it" grep -q "GET PKIOperation renewed serial=$(serial_of "$T/g1/client.pem") " "$T/main.log"
		URL=$real
	else
		skip 5 "python3 is not installed"
	fi
else
	skip 54 "scepclient is not installed (apt-get install scep)"
fi

expect 0 "SIGTERM stops the server with status 0" stop "$MAIN"
check "it says so" grep -q "stopped (SIGTERM)" "$T/main.log"
if [ "$have_curl" = yes ] || [ "$have_client" = yes ]; then
	check "one access-log line per request" test "$(grep -c ' status=[0-9]* [0-9]*us$' "$T/main.log")" -ge 20
else
	skip 1 "no client made requests"
fi

# Policy flags, on a second server.
if [ "$have_client" = yes ]; then
	cat >"$T/verify" <<EOF
#!/bin/sh
cat >"$T/verify.csr"
echo "\$SCEP_TRANSACTION_ID \$SCEP_MESSAGE_TYPE" >"$T/verify.env"
exit 0
EOF
	chmod 755 "$T/verify"
	if serve policy --challenge s3cret --csr-verify-exec "$T/verify" \
	    --allow-subject '^CN=ok[0-9]*,' --validity-days 10; then
		client "$T/p1"
		expect 0 "an allowed subject enrolls" enroll "$T/p1" -challenge s3cret -cn ok1
		check "the verifier got the CSR in PEM" grep -q 'BEGIN CERTIFICATE REQUEST' "$T/verify.csr"
		check "and the transaction ID and message type" grep -Eq '^[^ ]+ (19|PKCSReq)' "$T/verify.env"
		check "--validity-days 10: it expires within 10 days" \
			sh -c "! openssl x509 -in '$T/p1/client.pem' -noout -checkend 864300"
		check "but not within 9" \
			openssl x509 -in "$T/p1/client.pem" -noout -checkend 777600
		expect 0 "list --expiring-within 11 lists it" mdm-scep list --expiring-within 11
		check "and only it" test "$(cut -f1 "$T/out")" = "$(serial_of "$T/p1/client.pem")"
		client "$T/p2"
		fails "a subject the regex refuses fails" enroll "$T/p2" -challenge s3cret -cn other
		stop "$SPID"
	else
		t_result 1 "the policy server starts"
		sed 's/^/# /' "$T/policy.log"
	fi
	if serve refuse --challenge s3cret --csr-verify-exec /bin/false; then
		client "$T/r1"
		fails "--csr-verify-exec /bin/false refuses" enroll "$T/r1" -challenge s3cret -cn ok2
		check "with a FAILURE CertRep" grep -q 'failure:badRequest serial=- status=200' "$T/refuse.log"
		stop "$SPID"
	else
		t_result 1 "the refusing server starts"
	fi
else
	skip 10 "scepclient is not installed (apt-get install scep)"
fi

# An RA (ra-init): GetCACert answers in the CA+RA form, requests go to
# the RA and CertReps come from it; the certificates still from the CA.
expect 0 "ra-init makes an RA" mdm-scep ra-init --days 30
check "it prints where the certificate is" grep -q "ca/ra.pem" "$T/out"
check "the RA key is 0600" test "$(file_mode "$S/ca/ra.key")" = 600
check "the RA certificate verifies against the CA" openssl verify -CAfile "$S/ca/ca.pem" "$S/ca/ra.pem"
check "it is no CA, and may sign and decrypt" sh -c "openssl x509 -in '$S/ca/ra.pem' -noout -ext basicConstraints,keyUsage | tr -d '\n' | grep -q 'CA:FALSE.*Digital Signature, Key Encipherment'"
expect 78 "ra-init again without --force fails" mdm-scep ra-init
check "and says to use --force" grep -q -- "--force" "$T/err"
if [ "$have_client" = yes ]; then
	if serve ra --challenge s3cret; then
		if [ "$have_curl" = yes ]; then
			check "GetCACert: application/x-x509-ca-ra-cert" sh -c "curl -s -o '$T/ra.p7' -w '%{content_type}' '$URL?operation=GetCACert' | grep -qx 'application/x-x509-ca-ra-cert'"
			check "a PKCS#7 of the CA and the RA certificates" sh -c "openssl pkcs7 -inform DER -in '$T/ra.p7' -print_certs -noout | grep -c '^subject=' | grep -qx 2"
		else
			skip 2 "curl is not installed"
		fi
		client "$T/ra1"
		expect 0 "scepclient enrolls through the RA" enroll "$T/ra1" -challenge s3cret -cn ra1
		check "the certificate verifies against the CA" openssl verify -CAfile "$S/ca/ca.pem" "$T/ra1/client.pem"
		expect 0 "and renews through it" enroll "$T/ra1" -cn ra1
		check "the new certificate verifies too" openssl verify -CAfile "$S/ca/ca.pem" "$T/ra1/client.pem"
		check "the server issued and renewed" sh -c "grep -q 'POST PKIOperation issued' '$T/ra.log' && grep -q 'POST PKIOperation renewed' '$T/ra.log'"
		stop "$SPID"
	else
		t_result 1 "the RA server starts"
		sed 's/^/# /' "$T/ra.log"
	fi
else
	skip 8 "scepclient is not installed (apt-get install scep)"
fi
rm -f "$S/ca/ra.key"
expect 78 "an RA certificate without its key stops serve" timeout 10 mdm-scep serve --listen 127.0.0.1:0
rm -f "$S/ca/ra.pem"

done_testing
