#!/bin/sh
# mdm-devsim end to end: mdm-scep and mdm-serve on one state, a signed
# enrollment profile (built here, as /mdm/enroll may not serve one) read
# from a file, and 20 simulated devices that enrol over SCEP, check in
# with Mdm-Signature, and answer DeviceInformation, NotNow'd commands,
# InstallProfile and ProfileList; a wrong challenge fails with the SCEP
# failInfo; one device over mutual TLS; the bench summary line.
. "$MDM_SOURCE_DIR/tests/cmd/lib.sh"
D=$T/devices

for tool in openssl sqlite3; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "1..0 # skip $tool is not installed"
		exit 77
	fi
done

TOPIC=com.apple.mgmt.External.devsim-test
# profile FILE SCEPURL MDMURL CHALLENGE [SIGN]: a signed enrollment profile.
profile() {
	cat >"$1.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadType</key><string>Configuration</string>
	<key>PayloadVersion</key><integer>1</integer>
	<key>PayloadIdentifier</key><string>com.example.mdm.enroll</string>
	<key>PayloadUUID</key><string>5B1C4C2A-1B2C-4C5D-8E9F-0A1B2C3D4E5F</string>
	<key>PayloadDisplayName</key><string>MDM enrollment</string>
	<key>PayloadContent</key>
	<array>
		<dict>
			<key>PayloadType</key><string>com.apple.security.scep</string>
			<key>PayloadVersion</key><integer>1</integer>
			<key>PayloadIdentifier</key><string>com.example.mdm.scep</string>
			<key>PayloadUUID</key><string>9F7E1D4C-2222-4333-8444-555566667777</string>
			<key>PayloadContent</key>
			<dict>
				<key>URL</key><string>$2</string>
				<key>Challenge</key><string>$4</string>
				<key>Keysize</key><integer>2048</integer>
				<key>Key Type</key><string>RSA</string>
				<key>Key Usage</key><integer>5</integer>
				<key>Subject</key>
				<array>
					<array><array><string>O</string><string>Devsim Test</string></array></array>
					<array><array><string>CN</string><string>devsim</string></array></array>
				</array>
			</dict>
		</dict>
		<dict>
			<key>PayloadType</key><string>com.apple.mdm</string>
			<key>PayloadVersion</key><integer>1</integer>
			<key>PayloadIdentifier</key><string>com.example.mdm.mdm</string>
			<key>PayloadUUID</key><string>0E8C2F5B-8888-4999-8AAA-BBBBCCCCDDDD</string>
			<key>IdentityCertificateUUID</key><string>9F7E1D4C-2222-4333-8444-555566667777</string>
			<key>Topic</key><string>$TOPIC</string>
			<key>ServerURL</key><string>$3/mdm/connect</string>
			<key>CheckInURL</key><string>$3/mdm/checkin</string>
			<key>SignMessage</key><${5:-true}/>
			<key>AccessRights</key><integer>8191</integer>
		</dict>
	</array>
</dict>
</plist>
EOF
	mdm-certs sign-profile -o "$1" "$1.xml"
}

expect 0 "mdm-certs init" mdm-certs init --organization "Devsim Test"
start scep mdm-scep serve --listen 127.0.0.1:0 --port-file "$T/scep.port" \
	--challenge s3cret || echo "# mdm-scep did not start"
SCEP_URL="http://127.0.0.1:$PORT/scep"
start serve mdm-serve --no-tls --listen 127.0.0.1:0 --threads 2 \
	--port-file "$T/serve.port" || echo "# mdm-serve did not start"
MDM_URL="http://127.0.0.1:$PORT"
profile "$T/enroll.mobileconfig" "$SCEP_URL" "$MDM_URL" s3cret

# ---- usage ----
expect 64 "enroll needs --url" mdm-devsim enroll --dir "$D"
expect 64 "--mtls and --sign exclude each other" \
	mdm-devsim enroll --url x --mtls --sign --dir "$D"
expect 64 "a rate over 1" mdm-devsim run --notnow-rate 2 --dir "$D"
expect 66 "a profile file that is not there" \
	mdm-devsim enroll --url "$T/nowhere" --dir "$D"
expect 1 "no devices yet: a clean no" mdm-devsim list --dir "$D"

# ---- enrollment ----
expect 0 "20 devices enroll" mdm-devsim enroll --url "$T/enroll.mobileconfig" \
	-n 20 -c 4 --dir "$D" --profile-ca "$S/ca/ca.pem"
cp "$T/out" "$T/enrolled"
check "one line per device" test "$(grep -c '	enrolled$' "$T/enrolled")" = 20
check "20 enabled enrollments with our topic" \
	test "$(sql "SELECT count(*) FROM enrollments WHERE enabled = 1 AND topic = '$TOPIC'")" = 20
check "each one's push token stored" \
	test "$(sql "SELECT count(*) FROM enrollments WHERE length(push_token) = 64 AND push_magic != ''")" = 20
check "20 certificates issued by the SCEP CA" \
	test "$(sql "SELECT count(*) FROM certificates WHERE subject LIKE '%CN=devsim%'")" -ge 20
U1=$(cut -f1 "$T/enrolled" | head -n 1)
check "the device directory is kept" test -s "$D/$U1/device.plist"
check "its key is 0600" test "$(file_mode "$D/$U1/key.pem")" = 600
check "its certificate chains to the CA" \
	openssl verify -CAfile "$S/ca/ca.pem" "$D/$U1/cert.pem"
check "its serial is the one sent" test \
	"$(sql "SELECT serial_number FROM enrollments WHERE id = '$U1'")" = \
	"$(grep "^$U1" "$T/enrolled" | cut -f2)"
expect 0 "mdm-devsim list" mdm-devsim list --dir "$D"
check "lists the 20" test "$(wc -l <"$T/out")" = 20
expect 0 "--json" mdm-devsim list --json --dir "$D"
check "JSON Lines" grep -q "\"udid\":\"$U1\"" "$T/out"

# ---- DeviceInformation to all ----
cut -f1 "$T/enrolled" >"$T/ids"
expect 0 "enqueue DeviceInformation to all" \
	sh -c "mdm-queue enqueue DeviceInformation - < '$T/ids'"
C1=$(head -n 1 "$T/out")
expect 0 "run --once" mdm-devsim run --once -c 4 --dir "$D"
check "20 results printed" \
	test "$(grep -c '	DeviceInformation	Acknowledged$' "$T/out")" = 20
check "all 20 acknowledged on the server" \
	test "$(sql "SELECT count(*) FROM results WHERE status = 'acknowledged'")" = 20
expect 0 "mdm-queue results" mdm-queue results --raw "$U1"
check "the answer holds the serial" grep -q "$(grep "^$U1" "$T/enrolled" | cut -f2)" "$T/out"
check "and the model" grep -q Mac14,2 "$T/out"
expect 0 "run --once with nothing queued" mdm-devsim run --once --dir "$D"
check "prints nothing" test ! -s "$T/out"

# ---- NotNow ----
expect 0 "enqueue SecurityInfo to one" mdm-queue enqueue SecurityInfo "$U1"
C2=$(cat "$T/out")
expect 0 "run with --notnow-rate 1" mdm-devsim run --once --notnow-rate 1 --dir "$D" "$U1"
check "answered NotNow" grep -q "$C2	SecurityInfo	NotNow" "$T/out"
check "still queued" test "$(sql "SELECT q.status FROM queue q JOIN commands c ON c.cid = q.command WHERE c.uuid = '$C2'")" = pending
expect 0 "run again with rate 0" mdm-devsim run --once --dir "$D" "$U1"
check "now acknowledged" grep -q "$C2	SecurityInfo	Acknowledged" "$T/out"
check "and done on the server" test "$(sql "SELECT count(*) FROM queue q JOIN commands c ON c.cid = q.command WHERE c.uuid = '$C2' AND q.status = 'pending'")" = 0

# ---- InstallProfile, ProfileList, RemoveProfile, unknown commands ----
cat >"$T/wifi.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadType</key><string>Configuration</string>
	<key>PayloadVersion</key><integer>1</integer>
	<key>PayloadIdentifier</key><string>com.example.wifi</string>
	<key>PayloadUUID</key><string>11111111-2222-4333-8444-555555555555</string>
	<key>PayloadDisplayName</key><string>Office Wi-Fi</string>
	<key>PayloadContent</key>
	<array>
		<dict>
			<key>PayloadType</key><string>com.apple.wifi.managed</string>
			<key>PayloadVersion</key><integer>1</integer>
			<key>PayloadIdentifier</key><string>com.example.wifi.payload</string>
			<key>PayloadUUID</key><string>66666666-7777-4888-8999-AAAAAAAAAAAA</string>
			<key>SSID_STR</key><string>office</string>
		</dict>
	</array>
</dict>
</plist>
EOF
expect 0 "sign the Wi-Fi profile" mdm-certs sign-profile -o "$T/wifi.mobileconfig" "$T/wifi.xml"
expect 0 "enqueue InstallProfile" mdm-queue enqueue InstallProfile --profile "$T/wifi.mobileconfig" "$U1"
expect 0 "enqueue ProfileList" mdm-queue enqueue ProfileList "$U1"
C3=$(cat "$T/out")
expect 0 "enqueue an unknown command" mdm-queue enqueue --plist /dev/stdin "$U1" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>NoSuchThing</string></dict></dict></plist>
EOF
C4=$(cat "$T/out")
expect 0 "run once" mdm-devsim run --once --dir "$D" "$U1"
check "InstallProfile acknowledged" grep -q "InstallProfile	Acknowledged" "$T/out"
check "ProfileList acknowledged" grep -q "$C3	ProfileList	Acknowledged" "$T/out"
check "an unknown RequestType gets Error" grep -q "$C4	NoSuchThing	Error" "$T/out"
expect 0 "the ProfileList result" mdm-queue results --raw --command "$C3"
check "lists the Wi-Fi profile" grep -q com.example.wifi "$T/out"
check "and the enrollment profile" grep -q com.example.mdm.enroll "$T/out"
expect 0 "the Error result" mdm-queue results --json --command "$C4"
check "with an ErrorChain 12021" grep -q 12021 "$T/out"
expect 0 "enqueue RemoveProfile and ProfileList" sh -c \
	"mdm-queue enqueue RemoveProfile --identifier com.example.wifi '$U1' >/dev/null && mdm-queue enqueue ProfileList '$U1'"
C5=$(cat "$T/out")
expect 0 "run once more" mdm-devsim run --once --dir "$D" "$U1"
check "RemoveProfile acknowledged" grep -q "RemoveProfile	Acknowledged" "$T/out"
expect 0 "the second ProfileList" mdm-queue results --raw --command "$C5"
check "no Wi-Fi profile any more" sh -c "! grep -q com.example.wifi '$T/out'"

# ---- a wrong challenge ----
profile "$T/bad.mobileconfig" "$SCEP_URL" "$MDM_URL" wrong-secret
expect 1 "a wrong challenge: exit 1" mdm-devsim enroll --url "$T/bad.mobileconfig" --dir "$D"
check "the message names the failInfo" grep -q "badRequest" "$T/err"
check "a failed line on stdout" grep -q "	failed$" "$T/out"
expect 1 "--challenge overrides the profile's" mdm-devsim enroll \
	--url "$T/enroll.mobileconfig" --challenge nope --dir "$D"
check "badRequest again" grep -q "scep.*badRequest" "$T/err"

# ---- profile verification ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/other.key" \
	-out "$T/other.pem" -subj "/CN=other" -days 2 2>/dev/null
expect 1 "a profile signed by another CA is refused with --profile-ca" \
	mdm-devsim enroll --url "$T/enroll.mobileconfig" --profile-ca "$T/other.pem" --dir "$D"

# ---- SignMessage false: TLS only, unless --sign ----
profile "$T/nosign.mobileconfig" "$SCEP_URL" "$MDM_URL" s3cret false
expect 1 "SignMessage false over http: the server refuses the unsigned check-in" \
	mdm-devsim enroll --url "$T/nosign.mobileconfig" --dir "$T/nosign"
check "with a 400 named" grep -q "Authenticate: HTTP 400" "$T/err"
expect 0 "--sign signs anyway" mdm-devsim enroll --url "$T/nosign.mobileconfig" \
	--sign --dir "$T/nosign"

# ---- bench ----
expect 0 "bench" mdm-devsim bench --url "$T/enroll.mobileconfig" -n 4 -c 2 --dir "$T/bench"
check "the last line is key=value" sh -c \
	"tail -n 1 '$T/out' | grep -Eq '^enroll_per_s=[0-9.]+ roundtrip_per_s=[0-9.]+ devices=4 enrolled=4 commands=0 sessions=4 errors=0$'"

stop "$SPID"

# ---- mutual TLS ----
start tls mdm-serve --listen 127.0.0.1:0 --threads 2 --port-file "$T/tls.port" ||
	echo "# mdm-serve with TLS did not start"
TLS_URL="https://127.0.0.1:$PORT"
profile "$T/tls.mobileconfig" "$SCEP_URL" "$TLS_URL" s3cret false
expect 0 "enroll over mutual TLS" mdm-devsim enroll --url "$T/tls.mobileconfig" \
	--mtls --server-ca "$S/ca/ca.pem" --dir "$T/tls"
UT=$(cut -f1 "$T/out")
expect 0 "enqueue to it" mdm-queue enqueue DeviceInformation "$UT"
expect 0 "run over mutual TLS" mdm-devsim run --once --server-ca "$S/ca/ca.pem" --dir "$T/tls"
check "acknowledged" grep -q "DeviceInformation	Acknowledged" "$T/out"
stop "$SPID"

done_testing
