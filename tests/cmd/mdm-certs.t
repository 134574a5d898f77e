#!/bin/sh
# mdm-certs end to end: every subcommand, the state it leaves, interop
# with openssl, the shared fixtures, and bad input of every kind.
. "$MDM_SOURCE_DIR/tests/cmd/lib.sh"
S=$MDM_STATE_DIR
P=$MDM_SOURCE_DIR/examples/profiles/passcode.mobileconfig

# init
expect 0 "init creates a fresh state" mdm-certs init --hostname mdm.test --hostname 127.0.0.1
check "init prints what it made, one kind and path a line" \
	test "$(cut -f1 "$T/out" | tr '\n' ' ')" = "ca tls signing "
check "CA key is 0600" test "$(file_mode "$S/ca/ca.key")" = 600
check "TLS key is 0600" test "$(file_mode "$S/tls/server.key")" = 600
check "signing key is 0600" test "$(file_mode "$S/signing/signing.key")" = 600
check "mdm.db is 0600" test "$(file_mode "$S/mdm.db")" = 600
check "TLS certificate chains to the CA" openssl verify -CAfile "$S/ca/ca.pem" "$S/tls/server.pem"
check "TLS certificate names the host" sh -c "openssl x509 -in '$S/tls/server.pem' -noout -ext subjectAltName | grep -q 'DNS:mdm.test'"
check "TLS certificate names the IP" sh -c "openssl x509 -in '$S/tls/server.pem' -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1'"
check "TLS certificate is for servers" sh -c "openssl x509 -in '$S/tls/server.pem' -noout -ext extendedKeyUsage | grep -q 'Server Authentication'"
check "signing certificate chains to the CA" openssl verify -CAfile "$S/ca/ca.pem" -purpose any "$S/signing/signing.pem"
sum_before=$(cat "$S"/ca/* "$S"/tls/* "$S"/signing/* | cksum)
expect 0 "init again succeeds" mdm-certs init
check "init again prints nothing on stdout" test ! -s "$T/out"
check "init again says it changed nothing" grep -q "already initialised" "$T/err"
check "init again changed no file" test "$sum_before" = "$(cat "$S"/ca/* "$S"/tls/* "$S"/signing/* | cksum)"
expect 0 "init with another hostname keeps the TLS certificate" mdm-certs init --hostname other.test
check "and warns that it does not cover the name" grep -q "does not cover 'other.test'" "$T/err"
expect 64 "init takes no operands" mdm-certs init extra

# list
expect 0 "list" mdm-certs list
check "list shows CA, TLS and signing" test "$(cut -f1 "$T/out" | tr '\n' ' ')" = "ca tls signing "
check "list has seven columns" test "$(head -n1 "$T/out" | awk -F'\t' '{print NF}')" = 7
check "not_after is ISO 8601 UTC" sh -c "cut -f3 '$T/out' | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$'"
check "fingerprint matches openssl's" test "$(awk -F'\t' '$1=="ca"{print $6}' "$T/out")" = \
	"$(openssl x509 -in "$S/ca/ca.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)"
expect 0 "list --json" mdm-certs list --json
check "JSON Lines, one per certificate" test "$(grep -c '^{"kind":' "$T/out")" = 3
check "days_left is a number in JSON" grep -q '"days_left":[0-9]' "$T/out"
expect 1 "nothing expires within 30 days: exit 1" mdm-certs list --expiring-within 30
check "and prints nothing" test ! -s "$T/out"
expect 0 "the TLS certificate expires within 400 days" mdm-certs list --expiring-within 400 --kind tls
check "only the TLS certificate is listed" test "$(cut -f1 "$T/out")" = tls
expect 0 "global options after the subcommand" mdm-certs list --kind ca --state-dir "$S"
expect 0 "global options before the subcommand" mdm-certs --state-dir "$S" -0 list --kind ca
check "-0 ends records with NUL" sh -c "tr '\\0' '\\n' < '$T/out' | grep -q '^ca'"
expect 64 "unknown kind" mdm-certs list --kind bogus
expect 64 "bad day count" mdm-certs list --expiring-within soon
expect 64 "--json and -0 together" mdm-certs list --json -0
expect 78 "an uninitialised state directory" mdm-certs --state-dir "$T/nowhere" list
check "says to run init" grep -q "mdm-certs init" "$T/err"

# sign-profile and verify-profile
expect 0 "sign a profile" mdm-certs sign-profile -o "$T/signed" "$P"
check "openssl cms -verify accepts it with our CA" openssl cms -verify -inform DER -binary \
	-in "$T/signed" -CAfile "$S/ca/ca.pem" -purpose any -out "$T/content"
check "content bytes unchanged" cmp "$T/content" "$P"
check "output is DER (no PEM armour)" sh -c "head -c1 '$T/signed' | od -An -tx1 | grep -q 30"
expect 0 "verify-profile accepts it" mdm-certs verify-profile -o "$T/content2" "$T/signed"
check "verify-profile names the signer" grep -q "^signer	CN=mdm profile signing" "$T/out"
check "verify-profile extracts the content unchanged" cmp "$T/content2" "$P"
expect 0 "verify-profile -o - writes the profile to stdout" mdm-certs verify-profile -o - "$T/signed"
check "and only the profile" cmp "$T/out" "$P"
expect 0 "sign from stdin to stdout" sh -c "mdm-certs sign-profile - < '$P' > '$T/signed2'"
check "stdin-signed profile verifies with openssl" openssl cms -verify -inform DER -binary \
	-in "$T/signed2" -CAfile "$S/ca/ca.pem" -purpose any -out /dev/null
printf 'l1\r\nl2\n' > "$T/crlf.txt"
openssl cms -sign -nodetach -binary -outform DER -in "$P" -signer "$S/signing/signing.pem" \
	-inkey "$S/signing/signing.key" -out "$T/ossl-signed" 2>/dev/null
expect 0 "verify-profile accepts what openssl cms -sign makes" mdm-certs verify-profile "$T/ossl-signed"
openssl cms -sign -nodetach -binary -stream -outform DER -in "$P" -signer "$S/signing/signing.pem" \
	-inkey "$S/signing/signing.key" -out "$T/ber-signed" 2>/dev/null
expect 0 "verify-profile accepts BER indefinite-length CMS" mdm-certs verify-profile -o "$T/ber-content" "$T/ber-signed"
check "BER content extracted unchanged" cmp "$T/ber-content" "$P"

# a signer from another CA
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=other-ca -keyout "$T/other.key" \
	-out "$T/other.pem" 2>/dev/null
chmod 600 "$T/other.key"
expect 0 "sign with --signer and --key" mdm-certs sign-profile --signer "$T/other.pem" --key "$T/other.key" -o "$T/other-signed" "$P"
expect 65 "a signer our CA did not issue is refused" mdm-certs verify-profile "$T/other-signed"
check "with a clear message" grep -qi "verif\|untrusted\|certificate" "$T/err"
expect 0 "trusted with --ca of its own" mdm-certs verify-profile --ca "$T/other.pem" "$T/other-signed"
expect 64 "--signer without --key" mdm-certs sign-profile --signer "$T/other.pem" "$P"
expect 65 "--key of another certificate" mdm-certs sign-profile --signer "$S/ca/ca.pem" --key "$T/other.key" -o "$T/x" "$P"

# tampering and bad input: clear errors, nothing written
cp "$T/signed" "$T/tampered"
off=$(grep -abo 'minLength' "$T/tampered" | head -n1 | cut -d: -f1)
printf 'X' | dd of="$T/tampered" bs=1 seek="$off" conv=notrunc 2>/dev/null
expect 65 "a tampered profile fails verification" mdm-certs verify-profile -o "$T/never" "$T/tampered"
check "and nothing is written" test ! -e "$T/never"
head -c 200 "$T/signed" > "$T/truncated"
expect 65 "a truncated CMS blob" mdm-certs verify-profile "$T/truncated"
head -c 3000 /dev/urandom > "$T/garbage"
expect 65 "binary garbage as a signed profile" mdm-certs verify-profile "$T/garbage"
expect 65 "binary garbage as a profile to sign" mdm-certs sign-profile -o "$T/never" "$T/garbage"
head -c 300 "$P" > "$T/trunc.mobileconfig"
expect 65 "a truncated plist" mdm-certs sign-profile -o "$T/never" "$T/trunc.mobileconfig"
check "says where" grep -q "trunc.mobileconfig" "$T/err"
{
	printf '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">'
	i=0; while [ $i -lt 5000 ]; do printf '<array>'; i=$((i + 1)); done
	i=0; while [ $i -lt 5000 ]; do printf '</array>'; i=$((i + 1)); done
	printf '</plist>\n'
} > "$T/deep.plist"
expect 65 "a deeply nested plist" mdm-certs sign-profile -o "$T/never" "$T/deep.plist"
truncate -s 1G "$T/huge"
expect 65 "a 1 GB file is refused without reading it" mdm-certs sign-profile -o "$T/never" "$T/huge"
expect 65 "a 1 GB file as a signed profile" mdm-certs verify-profile "$T/huge"
rm -f "$T/huge"
expect 66 "a missing file" mdm-certs sign-profile -o "$T/never" "$T/nope.mobileconfig"
expect 65 "an already signed profile is not signed again" mdm-certs sign-profile -o "$T/never" "$T/signed"
check "no output file from any failure" test ! -e "$T/never"
expect 64 "sign-profile takes one file" mdm-certs sign-profile -o "$T/never"

# key files others can read are refused
chmod 644 "$S/signing/signing.key"
expect 77 "a world-readable signing key is refused" mdm-certs sign-profile -o "$T/never" "$P"
check "the message says how to fix it" grep -q "chmod 600" "$T/err"
chmod 600 "$S/signing/signing.key"

# push-csr
expect 64 "push-csr needs --email" mdm-certs push-csr
expect 0 "push-csr" mdm-certs push-csr --email admin@example.com --country US -o "$T/push.csr"
check "the CSR verifies" openssl req -in "$T/push.csr" -noout -verify
check "the CSR carries the email" sh -c "openssl req -in '$T/push.csr' -noout -subject | grep -q 'emailAddress *= *admin@example.com'"
check "the CSR carries the country" sh -c "openssl req -in '$T/push.csr' -noout -subject | grep -q 'C *= *US'"
check "the push key is kept 0600" test "$(file_mode "$S/push/pending.key")" = 600
pub1=$(openssl req -in "$T/push.csr" -noout -pubkey)
expect 0 "push-csr again" mdm-certs push-csr --email admin@example.com
check "reuses the same key" test "$pub1" = "$(openssl req -noout -pubkey < "$T/out")"
expect 64 "a bad country code" mdm-certs push-csr --email a@b.c --country USA

openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=MDM Vendor" -keyout "$T/vendor.key" \
	-out "$T/vendor.pem" 2>/dev/null
chmod 600 "$T/vendor.key"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=WWDR stand-in" -keyout "$T/wwdr.key" \
	-out "$T/wwdr.pem" 2>/dev/null
expect 0 "push-csr signed by a vendor" mdm-certs push-csr --email admin@example.com \
	--vendor-cert "$T/vendor.pem" --vendor-key "$T/vendor.key" --vendor-chain "$T/wwdr.pem" -o "$T/req.b64"
check "the request is one base64 text" sh -c "base64 -d '$T/req.b64' > '$T/req.plist'"
check "it holds the three keys" sh -c "grep -q PushCertRequestCSR '$T/req.plist' && grep -q PushCertCertificateChain '$T/req.plist' && grep -q PushCertSignature '$T/req.plist'"
sed -n '/PushCertRequestCSR/{n;s/.*<string>\(.*\)<\/string>.*/\1/p;}' "$T/req.plist" | base64 -d > "$T/req.csr.der"
sed -n '/PushCertSignature/{n;s/.*<string>\(.*\)<\/string>.*/\1/p;}' "$T/req.plist" | base64 -d > "$T/req.sig"
openssl x509 -in "$T/vendor.pem" -noout -pubkey > "$T/vendor.pub"
check "the CSR in it is DER and verifies" openssl req -inform DER -in "$T/req.csr.der" -noout -verify
check "the vendor signature over the CSR verifies" openssl dgst -sha256 -verify "$T/vendor.pub" \
	-signature "$T/req.sig" "$T/req.csr.der"
check "the chain lists the vendor certificate, then the rest" sh -c \
	"grep -c 'BEGIN CERTIFICATE' '$T/req.plist' | grep -qx 2"
expect 64 "--vendor-cert without --vendor-key" mdm-certs push-csr --email a@b.c --vendor-cert "$T/vendor.pem"
chmod 644 "$T/vendor.key"
expect 77 "a vendor key others can read is refused" mdm-certs push-csr --email a@b.c \
	--vendor-cert "$T/vendor.pem" --vendor-key "$T/vendor.key"
chmod 600 "$T/vendor.key"

# push-import
mkpush() {	# mkpush NAME SUBJECT: a stand-in push certificate and key
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "$2" -keyout "$T/$1.key" \
		-out "$T/$1.pem" 2>/dev/null
	chmod 600 "$T/$1.key"
}
mkpush p1 "/UID=com.apple.mgmt.External.11111111-2222-3333-4444-555555555555/CN=APSP:1/C=US"
mkpush p2 "/UID=com.apple.mgmt.External.99999999-2222-3333-4444-555555555555/CN=APSP:2/C=US"
expect 0 "push-import stores a push certificate" mdm-certs push-import "$T/p1.pem" "$T/p1.key"
check "and prints its topic" test "$(cat "$T/out")" = com.apple.mgmt.External.11111111-2222-3333-4444-555555555555
check "the key is stored 0600 by topic" test "$(file_mode "$S/push/com.apple.mgmt.External.11111111-2222-3333-4444-555555555555.key")" = 600
expect 0 "a renewal of the same topic needs no --force" mdm-certs push-import "$T/p1.pem" "$T/p1.key"
expect 78 "another topic is refused" mdm-certs push-import "$T/p2.pem" "$T/p2.key"
check "with a message naming both topics" sh -c "grep -q 11111111 '$T/err' && grep -q 99999999 '$T/err'"
check "and nothing stored for it" test ! -e "$S/push/com.apple.mgmt.External.99999999-2222-3333-4444-555555555555.pem"
expect 0 "another topic with --force" mdm-certs push-import --force "$T/p2.pem" "$T/p2.key"
expect 65 "a key that does not match" mdm-certs push-import "$T/p1.pem" "$T/p2.key"
openssl pkcs12 -export -in "$T/p1.pem" -inkey "$T/p1.key" -passout pass:s3cret -out "$T/p1.p12"
expect 0 "a PKCS#12 file with its password" mdm-certs push-import --password s3cret "$T/p1.p12"
expect 65 "a PKCS#12 file with a wrong password" mdm-certs push-import --password wrong "$T/p1.p12"
check "says the password is wrong" grep -qi "password" "$T/err"
echo s3cret > "$T/pw"
expect 0 "--password-file" mdm-certs push-import --password-file "$T/pw" "$T/p1.p12"
expect 0 "--password-file - reads stdin" sh -c "echo s3cret | mdm-certs push-import --password-file - '$T/p1.p12'"
cat "$T/p1.pem" "$T/p1.key" > "$T/p1.both"
chmod 600 "$T/p1.both"
expect 0 "certificate and key in one PEM (NanoMDM's form)" mdm-certs push-import "$T/p1.both"
mkpush nouid "/CN=no uid here/C=US"
expect 65 "a certificate without UID is refused" mdm-certs push-import "$T/nouid.pem" "$T/nouid.key"
mkpush badpfx "/UID=com.example.wrong/CN=x"
expect 65 "a UID without the com.apple.mgmt. prefix is refused" mdm-certs push-import "$T/badpfx.pem" "$T/badpfx.key"
mkpush evil "/UID=com.apple.mgmt.x\/..\/..\/evil/CN=x"
expect 65 "a topic that is no file name is refused" mdm-certs push-import "$T/evil.pem" "$T/evil.key"
expect 64 "push-import takes CERT [KEY]" mdm-certs push-import
expect 64 "--password with --password-file" mdm-certs push-import --password a --password-file "$T/pw" "$T/p1.p12"

if f=$(fixture micromdm/pkg/crypto/testdata/mock_push_cert.pem); then
	d=$MDM_FIXTURES/micromdm/pkg/crypto/testdata
	expect 0 "fixture mock push cert: dry run extracts the topic" mdm-certs --state-dir "$T/nostate" push-import -n "$f"
	check "topic is com.apple.mgmt.External.<uuid>" grep -Eq '^com\.apple\.mgmt\.External\.[0-9a-f-]{36}$' "$T/out"
	expect 65 "fixture cert without UID refused" mdm-certs push-import -n "$d/mock_push_cert_no_uid.pem"
	check "with a clear message" grep -q "has no UID" "$T/err"
	expect 65 "fixture cert with the wrong UID prefix refused" mdm-certs push-import -n "$d/mock_push_cert_wrong_uid_prefix.pem"
	check "with a clear message" grep -q "does not start with com.apple.mgmt." "$T/err"
	expect 0 "NanoMDM's real Apple push cert: topic extracted" mdm-certs push-import -n "$(fixture nanomdm/test/e2e/testdata/push.pem)"
	check "its topic" grep -q '^com\.apple\.mgmt\.External\.' "$T/out"
	check "and a warning that it expired" grep -q "expired" "$T/err"
	m=$MDM_FIXTURES/micromdm/server/testdata
	expect 65 "MicroMDM's p12 (legacy RC2) opens with its password, then has no UID" \
		mdm-certs push-import -n --password secret "$m/pushcert.p12"
	check "the failure is the missing UID, not the file" grep -q "has no UID" "$T/err"
	expect 65 "MicroMDM's p12 with a wrong password" mdm-certs push-import -n --password nope "$m/pushcert.p12"
	cp "$m/ProviderPrivateKey.key" "$T/provider.key"
	chmod 600 "$T/provider.key"
	expect 65 "an encrypted key with a wrong password" mdm-certs sign-profile --signer "$m/pushcert.pem" \
		--key "$T/provider.key" -o "$T/never" "$P"
else
	skip 13 "shared fixtures not present"
fi

# dep-keypair
expect 0 "dep-keypair" mdm-certs dep-keypair abm-main
check "prints the certificate path" test "$(cat "$T/out")" = "$S/dep/abm-main.pem"
check "the key is 0600" test "$(file_mode "$S/dep/abm-main.key")" = 600
check "the certificate is self-signed" openssl verify -CAfile "$S/dep/abm-main.pem" -purpose any "$S/dep/abm-main.pem"
check "it may encrypt keys" sh -c "openssl x509 -in '$S/dep/abm-main.pem' -noout -ext keyUsage | grep -q 'Key Encipherment'"
sum=$(cksum < "$S/dep/abm-main.key")
expect 78 "an existing name is refused" mdm-certs dep-keypair abm-main
check "and its key is untouched" test "$sum" = "$(cksum < "$S/dep/abm-main.key")"
expect 64 "a name that is no file name" mdm-certs dep-keypair ../evil
expect 64 "--days out of range" mdm-certs dep-keypair --days 0 x
expect 0 "--days" mdm-certs dep-keypair --days 30 short
expect 0 "list now shows push and dep certificates" mdm-certs list
check "two push, two dep" test "$(cut -f1 "$T/out" | sort | uniq -c | awk '$2=="push"||$2=="dep"{print $1}' | tr '\n' ' ')" = "2 2 "
expect 0 "the 30-day DEP keypair expires within 31 days" mdm-certs list --expiring-within 31
check "only it" test "$(cut -f2 "$T/out")" = short

# enrollment-profile, in a state of its own
E=$T/enr
T1=com.apple.mgmt.External.11111111-2222-3333-4444-555555555555
T2=com.apple.mgmt.External.99999999-2222-3333-4444-555555555555
pval() {	# pval KEY FILE: the values of KEY in an XML plist, one a line
	sed -n "/<key>$1<\/key>/{n;s/^[[:space:]]*<[a-z]*>//;s/<\/[a-z]*>\$//;s/^[[:space:]]*<\([a-z]*\)\/>\$/\1/;p;}" "$2"
}
expect 0 "a state for enrollment profiles" mdm-certs --state-dir "$E" init --hostname mdm.test
expect 64 "enrollment-profile needs --url" mdm-certs --state-dir "$E" enrollment-profile -o "$T/enr.mobileconfig"
check "and says so" grep -q -- "--url is required" "$T/err"
expect 78 "no push certificate: exit 78" mdm-certs --state-dir "$E" enrollment-profile --url https://mdm.test -o "$T/enr.mobileconfig"
check "with a message saying what to run" grep -q "mdm-certs push-import" "$T/err"
check "and no file written" test ! -e "$T/enr.mobileconfig"
expect 0 "import a push certificate" mdm-certs --state-dir "$E" push-import "$T/p1.pem" "$T/p1.key"
expect 0 "enrollment-profile -o" mdm-certs --state-dir "$E" enrollment-profile \
	--url https://mdm.test:8443/ --organization Acme -o "$T/enr.mobileconfig"
check "prints nothing on stdout" test ! -s "$T/out"
check "the file is 0644" test "$(file_mode "$T/enr.mobileconfig")" = 644
check "openssl cms -verify accepts it with the state's CA" openssl cms -verify -inform DER -binary \
	-in "$T/enr.mobileconfig" -CAfile "$E/ca/ca.pem" -purpose any -out "$T/enr.xml"
openssl cms -verify -inform DER -noverify -in "$T/enr.mobileconfig" -signer "$T/enr-signer.pem" \
	-out /dev/null 2>/dev/null
check "signed by the state's signing certificate" test \
	"$(openssl x509 -in "$T/enr-signer.pem" -noout -fingerprint -sha256 2>&1)" = \
	"$(openssl x509 -in "$E/signing/signing.pem" -noout -fingerprint -sha256)"
expect 0 "verify-profile accepts it" mdm-certs --state-dir "$E" verify-profile "$T/enr.mobileconfig"
check "content is an XML plist" grep -q '^<plist version="1.0">' "$T/enr.xml"
check "PayloadType Configuration" test "$(pval PayloadType "$T/enr.xml" | head -n1)" = Configuration
check "ServerURL" test "$(pval ServerURL "$T/enr.xml")" = https://mdm.test:8443/mdm/connect
check "CheckInURL" test "$(pval CheckInURL "$T/enr.xml")" = https://mdm.test:8443/mdm/checkin
check "SCEP URL" test "$(pval URL "$T/enr.xml")" = https://mdm.test:8443/scep
check "Topic" test "$(pval Topic "$T/enr.xml")" = "$T1"
check "AccessRights 8191" test "$(pval AccessRights "$T/enr.xml")" = 8191
check "SignMessage true" test "$(pval SignMessage "$T/enr.xml")" = true
check "CheckOutWhenRemoved true" test "$(pval CheckOutWhenRemoved "$T/enr.xml")" = true
check "Keysize 2048" test "$(pval Keysize "$T/enr.xml")" = 2048
check "Key Usage 5" test "$(pval 'Key Usage' "$T/enr.xml")" = 5
check "per-user-connections capability" grep -q '<string>com.apple.mdm.per-user-connections</string>' "$T/enr.xml"
scep_uuid=$(awk '/<string>com.apple.security.scep<\/string>/ { s = 1 }
	s && u { gsub(/[[:space:]]*<\/?string>/, ""); print; exit }
	s && /<key>PayloadUUID<\/key>/ { u = 1 }' "$T/enr.xml")
check "IdentityCertificateUUID is the SCEP payload's UUID" test -n "$scep_uuid" -a \
	"$(pval IdentityCertificateUUID "$T/enr.xml")" = "$scep_uuid"
openssl x509 -in "$E/ca/ca.pem" -outform DER -out "$T/ca.der"
check "the CA payload is ca.pem in DER" sh -c "sed -n '/<data>/,/<\/data>/p' '$T/enr.xml' | sed '1d;\$d' |
	tr -d ' \t\n' | openssl base64 -d -A | cmp -s - '$T/ca.der'"
challenge1=$(pval Challenge "$T/enr.xml")
check "a one-time challenge: 24 characters" test "${#challenge1}" = 24
expect 0 "enrollment-profile to stdout" sh -c "mdm-certs --state-dir '$E' enrollment-profile --url https://mdm.test:8443 > '$T/enr2.mobileconfig'"
openssl cms -verify -inform DER -binary -in "$T/enr2.mobileconfig" -CAfile "$E/ca/ca.pem" \
	-purpose any -out "$T/enr2.xml" 2>/dev/null
check "a second profile: a new challenge" test -n "$(pval Challenge "$T/enr2.xml")" -a \
	"$(pval Challenge "$T/enr2.xml")" != "$challenge1"
check "and new payload UUIDs" test "$(pval PayloadUUID "$T/enr.xml" | head -n1)" != \
	"$(pval PayloadUUID "$T/enr2.xml" | head -n1)"
check "but the same PayloadIdentifier" test "$(pval PayloadIdentifier "$T/enr.xml" | head -n1)" = \
	"$(pval PayloadIdentifier "$T/enr2.xml" | head -n1)"
expect 0 "--unsigned --challenge --scep-url --no-sign-message" mdm-certs --state-dir "$E" enrollment-profile \
	--url https://mdm.test --unsigned --challenge s3cret --scep-url http://scep.test/scep --no-sign-message
check "unsigned: the XML itself" grep -q '^<plist version="1.0">' "$T/out"
check "the static challenge verbatim" test "$(pval Challenge "$T/out")" = s3cret
check "the SCEP URL given" test "$(pval URL "$T/out")" = http://scep.test/scep
check "SignMessage false" test "$(pval SignMessage "$T/out")" = false
printf 'from-a-file\n' > "$T/chal"
chmod 600 "$T/chal"
expect 0 "--challenge-file" mdm-certs --state-dir "$E" enrollment-profile --url https://mdm.test --unsigned \
	--challenge-file "$T/chal"
check "the challenge from the file" test "$(pval Challenge "$T/out")" = from-a-file
expect 0 "--challenge-ttl" mdm-certs --state-dir "$E" enrollment-profile --url https://mdm.test --unsigned \
	--challenge-ttl 10m
expect 64 "--challenge and --challenge-file" mdm-certs --state-dir "$E" enrollment-profile --url https://mdm.test \
	--unsigned --challenge a --challenge-file "$T/chal"
expect 64 "--challenge-ttl with a static challenge" mdm-certs --state-dir "$E" enrollment-profile \
	--url https://mdm.test --unsigned --challenge a --challenge-ttl 1h
expect 64 "a bad --challenge-ttl" mdm-certs --state-dir "$E" enrollment-profile --url https://mdm.test \
	--unsigned --challenge-ttl soon
expect 64 "an http:// server URL" mdm-certs --state-dir "$E" enrollment-profile --url http://mdm.test --unsigned
check "says https" grep -q "https://" "$T/err"
expect 64 "no operands" mdm-certs --state-dir "$E" enrollment-profile --url https://mdm.test --unsigned extra
expect 0 "a second push topic" mdm-certs --state-dir "$E" push-import --force "$T/p2.pem" "$T/p2.key"
expect 78 "two push certificates: exit 78" mdm-certs --state-dir "$E" enrollment-profile --url https://mdm.test --unsigned
check "says to choose with --topic" grep -q -- "--topic" "$T/err"
expect 0 "--topic chooses" mdm-certs --state-dir "$E" enrollment-profile --url https://mdm.test --unsigned --topic "$T2"
check "the topic chosen" test "$(pval Topic "$T/out")" = "$T2"
expect 78 "a --topic without a certificate" mdm-certs --state-dir "$E" enrollment-profile --url https://mdm.test \
	--unsigned --topic com.apple.mgmt.External.none
expect 78 "an uninitialised state" mdm-certs --state-dir "$T/nowhere" enrollment-profile --url https://mdm.test --unsigned

# a state directory that is damaged
cp "$S/mdm.db" "$T/db.bak"
head -c 4096 /dev/urandom > "$S/mdm.db"
rm -f "$S/mdm.db-wal" "$S/mdm.db-shm"
sum=$(cksum < "$S/mdm.db")
expect 74 "a corrupt mdm.db gives a clean error" mdm-certs list
check "and is left as it was" test "$sum" = "$(cksum < "$S/mdm.db")"
expect 74 "init does not overwrite a corrupt mdm.db either" mdm-certs init
check "still as it was" test "$sum" = "$(cksum < "$S/mdm.db")"

# the contract
expect 0 "--help" mdm-certs --help
check "help lists the commands" grep -q "push-import" "$T/out"
expect 0 "command --help" mdm-certs push-csr --help
check "command help shows its options" grep -q -- "--vendor-chain" "$T/out"
expect 0 "--version" mdm-certs --version
expect 64 "an unknown command" mdm-certs frobnicate
expect 64 "no command" mdm-certs
expect 64 "an unknown option" mdm-certs list --frob
check "says what to try" grep -q "Try 'mdm-certs list --help'" "$T/err"
done_testing
