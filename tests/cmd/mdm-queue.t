#!/bin/sh
# mdm-queue end to end: every subcommand and option, ids from operands and
# stdin, the output forms, the exit statuses, bad input of every kind, and
# running beside another process that holds the database's write lock.
#
# Devices enroll through mdm-serve, which is not here yet: the enrollments
# and one result are written with the sqlite3 shell, the way mdm-serve's
# storage (libmdm/state_queue.c) writes them; test_state_queue drives the
# device side through the library itself.
. "$MDM_SOURCE_DIR/tests/cmd/lib.sh"
P=$MDM_SOURCE_DIR/examples/profiles/passcode.mobileconfig

if ! command -v sqlite3 >/dev/null 2>&1; then
	echo "1..0 # skip the sqlite3 shell is not installed"
	exit 77
fi

expect 78 "no state directory: configuration error" mdm-queue --state-dir "$T/nowhere" list
check "says how to make one" grep -q "mdm-certs init" "$T/err"

mkdir -p "$S"
: > "$S/mdm.db"
chmod 600 "$S/mdm.db"
expect 1 "list on an empty state: nothing, exit 1" mdm-queue list
check "and prints nothing" test ! -s "$T/out"

sql "INSERT INTO enrollments (id, type, udid, serial_number, unlock_token,
	enabled, push_token, topic, created_at, updated_at) VALUES
	('D1', 'device', 'D1', 'SER1', X'0102', 1, 'aa', 't', 1, 1),
	('D2', 'device', 'D2', 'SER2', NULL, 1, 'bb', 't', 1, 1),
	('D3', 'device', 'D3', 'SER3', NULL, 0, NULL, 't', 1, 1)"
sql "INSERT INTO enrollments (id, type, device_id, udid, user_id, enabled,
	created_at, updated_at) VALUES ('D1:G1', 'user', 'D1', 'D1', 'G1', 1, 1, 1)"
pending() {	# pending ID: the number of pending commands of ID
	sql "SELECT count(*) FROM queue q JOIN enrollments e ON e.eid = q.enrollment
		WHERE e.id = '$1' AND q.status = 'pending'"
}

# enqueue: ids as operands, from stdin, by UDID or serial
expect 0 "enqueue DeviceInformation to two enrollments" mdm-queue enqueue DeviceInformation D1 D2
check "prints the command UUID" grep -Eq '^[0-9a-f-]{36}$' "$T/out"
U1=$(cat "$T/out")
check "one line" test "$(wc -l < "$T/out")" = 1
check "both have it pending" test "$(pending D1)$(pending D2)" = 11
check "the payload is stored once" test "$(sql 'SELECT count(*) FROM command_payloads')" = 1
printf 'D1\nser2\n\n  D1:G1  \n' > "$T/ids"
expect 0 "enqueue ProfileList to ids on stdin" sh -c "mdm-queue enqueue ProfileList < '$T/ids'"
check "by id, serial (any case) and user channel" test "$(pending D1)$(pending D2)$(pending D1:G1)" = 221
expect 0 "type names in any case" mdm-queue enqueue securityinfo D1
expect 0 "enqueue --json" mdm-queue enqueue CertificateList --json D1 D2 D1
check "JSON summary: 2 queued, 1 duplicate" grep -q '"request_type":"CertificateList","queued":2,"duplicate":1' "$T/out"
expect 0 "enqueue --ids prints the enrollment ids, for mdm-push" mdm-queue enqueue InstalledApplicationList --managed-only --ids D1 SER2
check "one id a line, as resolved" test "$(tr '\n' ' ' < "$T/out")" = "D1 D2 "
expect 0 "a disabled enrollment is queued with a warning" mdm-queue enqueue DeviceConfigured D3
check "the warning" grep -q "not enabled" "$T/err"
expect 0 "-0 reads NUL-separated ids" sh -c "printf 'D1\\0D2\\0' | mdm-queue -0 enqueue ShutDownDevice"

# unknown ids
before=$(sql "SELECT count(*) FROM queue")
expect 66 "an unknown id: nothing queued" mdm-queue enqueue RestartDevice D1 ghost
check "names the unknown id" grep -q "ghost: no such enrollment" "$T/err"
check "no row was added" test "$(sql "SELECT count(*) FROM queue")" = "$before"
expect 0 "--skip-unknown queues for the others" mdm-queue enqueue RestartDevice --notify-user --skip-unknown D1 ghost
check "and still names it" grep -q "ghost: no such enrollment" "$T/err"
expect 1 "--skip-unknown with only unknown ids: nothing to do" mdm-queue enqueue RestartDevice --skip-unknown ghost
expect 64 "no ids at all" sh -c "mdm-queue enqueue ProfileList < /dev/null"

# every command type
expect 0 "InstallProfile --profile" mdm-queue enqueue InstallProfile --profile "$P" D1 D2
IP=$(cat "$T/out")
payload_has() {	# payload_has UUID TEXT: the stored command holds TEXT
	sql "SELECT body FROM command_payloads p JOIN commands c
		ON c.payload = p.pid WHERE c.uuid = '$1'" | grep -q -F -e "$2"
}
check "the profile is sent byte for byte" payload_has "$IP" "$(base64 -w0 < "$P" | cut -c1-56)"
expect 0 "RemoveProfile --identifier supersedes the queued install for D1" \
	mdm-queue enqueue RemoveProfile --identifier com.example.mdm.passcode D1
check "the install is superseded" test "$(sql "SELECT q.status FROM queue q
	JOIN commands c ON c.cid = q.command JOIN enrollments e ON e.eid = q.enrollment
	WHERE c.uuid = '$IP' AND e.id = 'D1'")" = superseded
check "and still pending for D2" test "$(sql "SELECT q.status FROM queue q
	JOIN commands c ON c.cid = q.command JOIN enrollments e ON e.eid = q.enrollment
	WHERE c.uuid = '$IP' AND e.id = 'D2'")" = pending
check "said so" grep -q "superseded" "$T/err"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=signer -keyout "$T/k.pem" \
	-out "$T/c.pem" 2>/dev/null
openssl cms -sign -nodetach -binary -outform DER -in "$P" -signer "$T/c.pem" -inkey "$T/k.pem" \
	-out "$T/signed.mobileconfig" 2>/dev/null
expect 0 "InstallProfile of a signed profile" mdm-queue enqueue InstallProfile --profile "$T/signed.mobileconfig" D2
cp "$T/signed.mobileconfig" "$T/tampered"
printf 'X' | dd of="$T/tampered" bs=1 seek=300 conv=notrunc 2>/dev/null
expect 65 "a tampered signed profile" mdm-queue enqueue InstallProfile --profile "$T/tampered" D2
printf 'not a profile' > "$T/junk"
expect 65 "a file that is no profile" mdm-queue enqueue InstallProfile --profile "$T/junk" D2
head -c 100 "$P" > "$T/trunc"
expect 65 "a truncated profile" mdm-queue enqueue InstallProfile --profile "$T/trunc" D2
truncate -s 1G "$T/huge"
expect 65 "a 1 GB profile is refused before it is read" mdm-queue enqueue InstallProfile --profile "$T/huge" D2
check "says it is too big" grep -qi "larger\|limit\|too" "$T/err"
expect 66 "a missing profile file" mdm-queue enqueue InstallProfile --profile "$T/nothere" D2
expect 64 "InstallProfile without --profile" mdm-queue enqueue InstallProfile D2
expect 64 "RemoveProfile without --identifier" mdm-queue enqueue RemoveProfile D2
expect 64 "an option the type does not take" mdm-queue enqueue ProfileList --pin 123456 D2
expect 64 "an unknown type" mdm-queue enqueue Frobnicate D2
check "says so" grep -q "not a command type" "$T/err"
expect 64 "no type" mdm-queue enqueue
expect 0 "DeviceInformation --query" mdm-queue enqueue DeviceInformation --query OSVersion --query UDID D2
expect 0 "DeviceLock --pin --message --phone-number" mdm-queue enqueue DeviceLock --pin 123456 --message "Lost" --phone-number 555 D2
expect 64 "a five-digit PIN" mdm-queue enqueue DeviceLock --pin 12345 D2
expect 0 "EraseDevice --pin" mdm-queue enqueue EraseDevice --pin 000000 D2
expect 0 "InstallApplication --itunes-store-id --management-flags" mdm-queue enqueue InstallApplication --itunes-store-id 361309726 --management-flags 1 D2
expect 0 "InstallApplication --manifest-url" mdm-queue enqueue InstallApplication --manifest-url https://example.com/app.plist D2
expect 0 "InstallApplication --identifier" mdm-queue enqueue InstallApplication --identifier com.example.app D2
expect 64 "InstallApplication with two sources" mdm-queue enqueue InstallApplication --identifier a --itunes-store-id 1 D2
expect 64 "--itunes-store-id not a number" mdm-queue enqueue InstallApplication --itunes-store-id many D2
expect 0 "InstallEnterpriseApplication" mdm-queue enqueue InstallEnterpriseApplication --manifest-url https://example.com/m.plist D2
expect 64 "an http manifest URL" mdm-queue enqueue InstallEnterpriseApplication --manifest-url http://example.com/m.plist D2
expect 0 "ScheduleOSUpdate" mdm-queue enqueue ScheduleOSUpdate --product-key 012-345 --product-version 17.4 --install-action InstallASAP D2
expect 64 "an unknown install action" mdm-queue enqueue ScheduleOSUpdate --install-action Whenever D2
expect 0 "Settings --device-name --host-name" mdm-queue enqueue Settings --device-name "Kiosk 1" --host-name kiosk-1 D2
expect 64 "Settings with nothing to set" mdm-queue enqueue Settings D2
printf '{"SyncTokens":{"DeclarationsToken":"x","Timestamp":"2024-01-01T00:00:00Z"}}' > "$T/dm.json"
expect 0 "DeclarativeManagement --data" mdm-queue enqueue DeclarativeManagement --data "$T/dm.json" D2
printf '{nope' > "$T/bad.json"
expect 64 "DeclarativeManagement data that is no JSON" mdm-queue enqueue DeclarativeManagement --data "$T/bad.json" D2
expect 0 "ClearPasscode with the stored UnlockToken" mdm-queue enqueue ClearPasscode D1
check "carries D1's token" test "$(sql "SELECT count(*) FROM command_payloads p JOIN commands c
	ON c.payload = p.pid WHERE c.request_type = 'ClearPasscode' AND
	CAST(p.body AS TEXT) LIKE '%AQI=%'")" = 1
expect 66 "ClearPasscode without a stored token" mdm-queue enqueue ClearPasscode D2
check "says why" grep -q "no UnlockToken" "$T/err"
expect 64 "ClearPasscode --uuid" mdm-queue enqueue ClearPasscode --uuid x D1
expect 0 "--uuid sets the CommandUUID" mdm-queue enqueue SecurityInfo --uuid my-cmd-1 D2
check "and prints it" test "$(cat "$T/out")" = my-cmd-1
expect 0 "the same UUID and content to another enrollment" mdm-queue enqueue SecurityInfo --uuid my-cmd-1 D1
expect 78 "the same UUID with other content" mdm-queue enqueue ProfileList --uuid my-cmd-1 D1
expect 64 "a UUID with a space" mdm-queue enqueue SecurityInfo --uuid "a b" D1
expect 64 "a file and the ids both on stdin" sh -c "mdm-queue enqueue InstallProfile --profile - < '$P'"

# --plist: any raw command
cat > "$T/raw.plist" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>Command</key><dict><key>RequestType</key><string>ActivationLockBypassCode</string></dict>
</dict></plist>
EOF
expect 0 "--plist: a raw command without CommandUUID" mdm-queue enqueue --plist "$T/raw.plist" D2
check "gets a new UUID" grep -Eq '^[0-9a-f-]{36}$' "$T/out"
if F=$(fixture micromdm/command/testdata/DeviceInformation.plist); then
	expect 0 "--plist: MicroMDM's DeviceInformation command" mdm-queue enqueue --plist "$F" D2
	check "keeps its CommandUUID" test "$(cat "$T/out")" = 7564fecc-f1b5-4d2d-af17-986fdd68a252
else
	skip 2 "no fixtures"
fi
expect 64 "--plist with a TYPE option" mdm-queue enqueue --plist "$T/raw.plist" --pin 123456 D2
printf '<plist version="1.0"><dict><key>Command</key><dict/></dict></plist>' > "$T/notype.plist"
expect 65 "--plist without Command.RequestType" mdm-queue enqueue --plist "$T/notype.plist" D2
printf '<plist version="1.0"><dict><key>Command</key>' > "$T/broken.plist"
expect 65 "--plist of a malformed plist" mdm-queue enqueue --plist "$T/broken.plist" D2
expect 65 "--plist of a 1 GB file" mdm-queue enqueue --plist "$T/huge" D2
expect 66 "--plist of a missing file" mdm-queue enqueue --plist "$T/nothere" D2

# list
expect 0 "list" mdm-queue list
check "tab-separated, nine fields" test "$(head -n1 "$T/out" | awk -F'\t' '{print NF}')" = 9
check "pending rows only" sh -c "! cut -f4 '$T/out' | grep -v '^pending$'"
expect 0 "list D1" mdm-queue list D1
check "only D1's rows" sh -c "! cut -f1 '$T/out' | grep -v '^D1$'"
expect 0 "list by serial" mdm-queue list SER1
expect 0 "list --command" mdm-queue list --command "$U1"
check "that command's two rows" test "$(wc -l < "$T/out")" = 2
expect 0 "list --all" mdm-queue list --all D1
check "shows the superseded row" grep -q superseded "$T/out"
expect 0 "list --status superseded" mdm-queue list --status superseded
check "only it" test "$(cut -f4 "$T/out" | sort -u)" = superseded
expect 64 "list --all --status" mdm-queue list --all --status error
expect 64 "list --status bogus" mdm-queue list --status bogus
expect 66 "list of an unknown id" mdm-queue list D1 ghost
check "still lists D1" grep -q '^D1' "$T/out"
expect 66 "list --command of an unknown command" mdm-queue list --command nope
expect 0 "list - reads ids from stdin" sh -c "echo D2 | mdm-queue list -"
check "D2's rows" sh -c "! cut -f1 '$T/out' | grep -v '^D2$'"
expect 0 "list --json" mdm-queue --json list D1
check "JSON Lines with null for unsent" grep -q '"sent_at":null' "$T/out"
expect 0 "list -0" mdm-queue list -0 D1
check "records end with NUL" sh -c "tr '\\0' '\\n' < '$T/out' | grep -q '^D1'"
expect 64 "--json with -0" mdm-queue list --json -0

# results (a device's answers, written as mdm-serve writes them)
expect 1 "no results yet" mdm-queue results
sql "INSERT INTO results (enrollment, command, status, error_chain, raw, received_at)
	SELECT e.eid, c.cid, 'error',
	'[{\"ErrorCode\":12021,\"ErrorDomain\":\"MCMDMErrorDomain\",\"LocalizedDescription\":\"Unknown command\"}]',
	CAST('<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>Status</key><string>Error</string></dict></plist>' AS BLOB),
	1700000000 FROM enrollments e, commands c WHERE e.id = 'D1' AND c.uuid = '$U1'"
sql "UPDATE queue SET status = 'error', updated_at = 1700000000 WHERE command =
	(SELECT cid FROM commands WHERE uuid = '$U1') AND enrollment = (SELECT eid FROM enrollments WHERE id = 'D1')"
sql "INSERT INTO results (enrollment, command, status, raw, received_at)
	SELECT eid, NULL, 'unparseable', X'00FF01', 1700000001 FROM enrollments WHERE id = 'D2'"
expect 0 "results" mdm-queue results
check "the error, summarised" grep -q "MCMDMErrorDomain 12021: Unknown command" "$T/out"
check "received_at in UTC" grep -q "2023-11-14T22:13:20Z" "$T/out"
check "the unparseable one too" grep -q "unparseable" "$T/out"
expect 0 "results --command" mdm-queue results --command "$U1"
check "one result" test "$(wc -l < "$T/out")" = 1
expect 0 "results --raw" mdm-queue results --raw D1
check "with the result plist" grep -q "<string>Error</string>" "$T/out"
expect 0 "results --raw of bytes that are no plist" mdm-queue results --raw D2
check "as base64" grep -q "base64:AP8B" "$T/out"
expect 0 "results --json" mdm-queue results --json D1
check "ErrorChain as a JSON array" grep -q '"error_chain":\[{"ErrorCode":12021' "$T/out"
expect 0 "results --json --raw" mdm-queue results --json --raw D1
check "raw as a string" grep -q '"raw":"<?xml' "$T/out"
expect 66 "results of an unknown id" mdm-queue results ghost
expect 66 "results of an unknown command" mdm-queue results --command ghost

# cancel and clear
expect 0 "cancel" mdm-queue cancel "$U1"
check "one row cancelled (D1 has answered it)" test "$(cut -f2 "$T/out")" = 1
expect 1 "cancel again: nothing to cancel" mdm-queue cancel "$U1"
expect 1 "cancel a command whose rows are all superseded" mdm-queue cancel "$IP"
expect 66 "cancel an unknown command" mdm-queue cancel nope
expect 0 "cancel from stdin" sh -c "echo my-cmd-1 | mdm-queue cancel"
expect 0 "clear D2" mdm-queue clear D2
check "D2 has nothing pending" test "$(pending D2)" = 0
check "prints id and count" grep -Eq '^D2	[0-9]+$' "$T/out"
expect 1 "clear D2 again: nothing to do" mdm-queue clear D2
expect 66 "clear an unknown id" mdm-queue clear ghost

# running beside a writer: reads go on, writes wait for the lock
(
	echo "BEGIN IMMEDIATE; UPDATE enrollments SET updated_at = 2 WHERE id = 'D3';"
	sleep 2
	echo "COMMIT;"
) | sqlite3 "$S/mdm.db" &
writer=$!
sleep 0.5
start=$(date +%s)
expect 0 "list while another process writes" mdm-queue list D1
expect 0 "enqueue waits for the writer, then succeeds" mdm-queue enqueue SecurityInfo D1
check "(it waited)" test $(( $(date +%s) - start )) -ge 1
wait "$writer"

# purge
sql "UPDATE results SET received_at = CAST(strftime('%s', 'now') AS INTEGER)"
sql "UPDATE queue SET updated_at = CAST(strftime('%s', 'now') AS INTEGER)"
expect 1 "purge: nothing is 30 days old" mdm-queue purge
check "prints zero counts" test "$(cat "$T/out")" = "$(printf '0\t0\t0\t0\t0\t0')"
# Webhook events mdm-serve left: one delivered 8 days ago, one delivered
# today, one given up 31 days ago, one still waiting from 60 days ago.

# enqueue --push: the same library as mdm-push, against tests/tools/apns_mock
expect 64 "--apns-url goes with --push only" mdm-queue enqueue DeviceLock --apns-url https://127.0.0.1:1 D1
check "says so" grep -q "go with --push" "$T/err"
expect 64 "--push: --apns-url must be https" mdm-queue enqueue DeviceLock --push --apns-url http://x D1
if command -v openssl >/dev/null 2>&1 && [ -x "$MDM_BIN/apns_mock" ]; then
	TOPIC=com.apple.mgmt.External.queue-topic
	sql "INSERT INTO enrollments (id, type, udid, enabled, topic, push_token,
		push_magic, created_at, updated_at) VALUES
		('P1', 'device', 'P1', 1, '$TOPIC', 'aa01', 'm1', 1, 1),
		('P2', 'device', 'P2', 1, '$TOPIC', 'aa02', 'm2', 1, 1),
		('PDEAD', 'device', 'PDEAD', 1, '$TOPIC', '4100aa', 'm3', 1, 1)"
	expect 1 "--push without a push certificate: exit 1" mdm-queue enqueue DeviceInformation --push P1
	check "the command is queued all the same" test "$(pending P1)" = 1
	check "its UUID printed as without --push" grep -Eq '^[0-9a-f-]{36}$' "$T/out"
	check "a no-push-cert warning" grep -q "P1: push no-push-cert" "$T/err"
	check "a summary line" grep -q "pushed 1: 1 no-push-cert" "$T/err"

	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$T/ca.key" \
	    -out "$T/ca.pem" -subj "/CN=Mock APNs CA" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" \
	    -out "$T/srv.csr" -subj "/CN=127.0.0.1" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\n' >"$T/ext"
	openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
	    -CAcreateserial -days 30 -extfile "$T/ext" -out "$T/srv.pem" 2>/dev/null
	mkdir -p "$S/push"
	chmod 700 "$S/push"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
	    -keyout "$S/push/$TOPIC.key" -out "$S/push/$TOPIC.pem" \
	    -subj "/UID=$TOPIC/CN=APSP:queue/C=US" 2>/dev/null
	chmod 600 "$S/push/$TOPIC.key"
	apns_mock --cert "$T/srv.pem" --key "$T/srv.key" --any-client \
	    --log "$T/mock.log" --stats "$T/mock.stats" \
	    --port-file "$T/mock.port" 2>"$T/mock.err" &
	MPID=$!
	trap 'kill "$MPID" 2>/dev/null; rm -rf "$T"' EXIT
	n=0
	while [ ! -s "$T/mock.port" ] && [ "$n" -lt 200 ]; do
		n=$((n + 1))
		sleep 0.05
	done
	URL="https://127.0.0.1:$(cat "$T/mock.port" 2>/dev/null)"
	check "mock APNs started" test -s "$T/mock.port"

	expect 0 "enqueue --push to two enrollments" mdm-queue enqueue \
	    DeviceInformation --push --apns-url "$URL" --apns-ca "$T/ca.pem" P1 P2
	check "the UUID on stdout, nothing else" grep -Eqx '[0-9a-f-]{36}' "$T/out"
	check "the mock got both pushes" test "$(cut -f1 "$T/mock.log" | sort | tr '\n' ' ')" = "aa01 aa02 "
	check "with the topic and the PushMagic" grep -q "	$TOPIC	.*{\"mdm\":\"m2\"}" "$T/mock.log"
	check "one summary line: 2 ok" test "$(cat "$T/err")" = "mdm-queue: pushed 2: 2 ok"
	check "push health stored" test "$(sql "SELECT group_concat(last_push_status)
		FROM enrollments WHERE id IN ('P1', 'P2')")" = "200,200"
	expect 1 "enqueue --push with a dead token: exit 1" mdm-queue enqueue \
	    SecurityInfo --push --ids --apns-url "$URL" --apns-ca "$T/ca.pem" P2 PDEAD
	check "queued for both (--ids)" test "$(tr '\n' ' ' < "$T/out")" = "P2 PDEAD "
	check "the dead one warned about" grep -q "PDEAD: push token-dead: 410 Unregistered" "$T/err"
	check "summary: 1 ok, 1 token-dead" grep -q "pushed 2: 1 ok, 1 token-dead" "$T/err"
	check "the dead token stored" test "$(sql "SELECT token_dead FROM enrollments
		WHERE id = 'PDEAD'")" = 1
	expect 0 "enqueue --push: an id given twice is pushed once" \
	    mdm-queue enqueue ProfileList --push --apns-url "$URL" \
	    --apns-ca "$T/ca.pem" P1 P1 PDEAD --skip-unknown
	check "PDEAD skipped, no second request for it" \
	    test "$(grep -c '^4100aa' "$T/mock.log")" = 1
	check "P1 pushed once more, not twice" test "$(grep -c '^aa01' "$T/mock.log")" = 2
	check "summary: 1 ok, 1 skipped" grep -q "pushed 2: 1 ok, 1 skipped" "$T/err"
	kill "$MPID" 2>/dev/null
	wait "$MPID" 2>/dev/null
else
	skip 21 "openssl or apns_mock is missing"
fi
ms=$(( $(date +%s) * 1000 ))
day=86400000
for row in "1, $((ms - 8 * day)), NULL" "2, $ms, NULL" "3, NULL, $((ms - 31 * day))" "4, NULL, NULL"; do
	sql "INSERT INTO webhook_outbox (id, topic, event_id, okey, body, created_at,
		next_attempt_at, delivered_at, dead_at) SELECT column1, 'mdm.Connect',
		'ev' || column1, 'D1', CAST('{}' AS BLOB), $((ms - 60 * day)), 0, column2, column3
		FROM (VALUES ($row))"
done
sql "UPDATE queue SET updated_at = updated_at - 40 * 86400 WHERE status <> 'pending'"
sql "UPDATE results SET received_at = received_at - 40 * 86400"
expect 0 "purge --json after 40 days" mdm-queue purge --json
check "finished rows and results went" grep -Eq '"queue_rows":[1-9][0-9]*,"results":2' "$T/out"
check "so did old delivered and given-up webhook events" grep -q '"webhook_events":2' "$T/out"
check "the recent and the waiting events are kept" test "$(sql "SELECT group_concat(id) FROM webhook_outbox")" = 2,4
check "no finished row is left" test "$(sql "SELECT count(*) FROM queue WHERE status <> 'pending'")" = 0
check "pending rows are kept" test "$(pending D1)" -gt 0
expect 1 "purge --status pending --older-than 1d: nothing that old" mdm-queue purge --status pending --older-than 1d
sql "UPDATE queue SET created_at = created_at - 100 * 86400, updated_at = updated_at - 100 * 86400"
expect 0 "purge --status pending --older-than 90d" mdm-queue purge --status pending --older-than 90d
check "no pending row is left" test "$(sql "SELECT count(*) FROM queue")" = 0
check "no command or payload is left" test "$(sql "SELECT count(*) FROM commands")$(sql "SELECT count(*) FROM command_payloads")" = 00
expect 0 "purge --vacuum" mdm-queue purge --vacuum
check "the database is now in incremental auto-vacuum mode" test "$(sql 'PRAGMA auto_vacuum')" = 2
expect 64 "purge --older-than soon" mdm-queue purge --older-than soon
expect 64 "purge --status bogus" mdm-queue purge --status bogus
expect 64 "purge takes no operands" mdm-queue purge D1
expect 64 "an unknown command" mdm-queue frob
expect 0 "help" mdm-queue --help
check "lists the commands" grep -q "enqueue" "$T/out"
done_testing
