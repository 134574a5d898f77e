#!/bin/sh
# mdm-push end to end against tests/tools/apns_mock (HTTP/2 over TLS,
# client certificate required), which answers by token prefix.  Covers
# every outcome, the push health stored in the state, retries, GOAWAY and
# dropped connections, an unreachable server, --pending and --stale, a
# push certificate rotated between runs, 10,000 pushes, ids on stdin,
# --json, usage errors, and nghttpd --verify-client when installed.
. "$MDM_SOURCE_DIR/tests/cmd/lib.sh"

for tool in openssl sqlite3; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "1..0 # skip $tool is not installed"
		exit 77
	fi
done
if [ ! -x "$MDM_BIN/apns_mock" ]; then
	echo "1..0 # skip apns_mock is not built"
	exit 77
fi

TOPIC=com.apple.mgmt.External.test-topic

# mock NAME [OPTIONS]: an apns_mock logging pushes to $T/NAME.pushes;
# sets URL.
mock() {
	name=$1
	shift
	rm -f "$T/$name.pushes" "$T/$name.stats"
	start "$name" apns_mock --cert "$T/srv.pem" --key "$T/srv.key" \
	    --any-client --log "$T/$name.pushes" --stats "$T/$name.stats" \
	    "$@" --port-file "$T/$name.port" || return 1
	URL="https://127.0.0.1:$PORT"
}

# enroll ID TOKEN [MAGIC]: an enabled device enrollment in $TOPIC.
enroll() {
	sql "INSERT INTO enrollments (id, type, udid, serial_number, enabled,
	    topic, push_token, push_magic, created_at, updated_at)
	    VALUES ('$1', 'device', '$1', 'SN-$1', 1, '$TOPIC', '$2',
	    '${3:-magic-$1}', 0, 0)"
}

# pushcert CN: a self-signed push certificate for $TOPIC in $T/push-CN.
pushcert() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
	    -keyout "$T/push-$1.key" -out "$T/push-$1.pem" \
	    -subj "/UID=$TOPIC/CN=APSP:$1/C=US" 2>/dev/null &&
	chmod 600 "$T/push-$1.key"
}

P() {	# P ARGS...: mdm-push against the mock
	mdm-push --apns-url "$URL" --apns-ca "$T/ca.pem" "$@"
}

# field N: the Nth tab-separated field of the line of id $1 in $T/out.
field() {
	awk -F '\t' -v id="$1" -v n="$2" '$1 == id { print $n }' "$T/out"
}

# ---- setup ----
expect 0 "mdm-certs init" mdm-certs init --organization "Push Test"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$T/ca.key" \
    -out "$T/ca.pem" -subj "/CN=Mock APNs CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" \
    -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
    -CAcreateserial -days 30 -extfile "$T/ext" -out "$T/srv.pem" 2>/dev/null
check "mock server certificate made" test -s "$T/srv.pem"
pushcert one
pushcert two
check "push certificates made" test -s "$T/push-two.pem"

enroll ok1 aa01
enroll ok2 aa02
enroll ok3 aa03
enroll dead410 4100aa
enroll bad400 400baa
enroll cert403 4030aa
enroll busy429 4290aa
enroll down503 5030aa
mock m1
check "mock APNs started" test -n "$URL"

# ---- usage ----
expect 64 "a wrong flag is a usage error" mdm-push --no-such-flag ok1
expect 64 "--priority 7 is a usage error" P --priority 7 ok1
expect 64 "--pending with ids is a usage error" P --pending ok1
expect 64 "--apns-url must be https" mdm-push --apns-url http://x ok1

# ---- no push certificate yet ----
expect 1 "no push certificate: exit 1" P ok1
check "no push certificate: outcome no-push-cert" \
    test "$(field ok1 2)" = no-push-cert

expect 0 "push-import" mdm-certs push-import "$T/push-one.pem" \
    "$T/push-one.key"

# ---- 200 ----
expect 0 "a push APNs accepts: exit 0" P --priority 5 --expiration 1h ok1
check "outcome ok, status 200" test "$(field ok1 2) $(field ok1 3)" = "ok 200"
now=$(date +%s)
line=$(awk -F '\t' '$1 == "aa01"' "$T/m1.pushes")
check "mock logged the token and topic" test "$(echo "$line" | cut -f2)" = "$TOPIC"
check "apns-push-type mdm" test "$(echo "$line" | cut -f3)" = mdm
check "apns-priority 5" test "$(echo "$line" | cut -f4)" = 5
exp=$(echo "$line" | cut -f5)
check "apns-expiration about an hour ahead" \
    test "$exp" -ge $((now + 3500)) -a "$exp" -le $((now + 3700))
check "body {\"mdm\":PushMagic}" test "$(echo "$line" | cut -f7)" = '{"mdm":"magic-ok1"}'
check "push health stored" test "$(sql "SELECT last_push_status, token_dead
    FROM enrollments WHERE id = 'ok1'")" = "200|0"
expect 0 "--expiration 0" P --expiration 0 ok2
check "apns-expiration 0" test "$(awk -F '\t' '$1 == "aa02" { print $5 }' \
    "$T/m1.pushes")" = 0

# ---- ids from stdin, UDIDs and serials, --json ----
printf 'ok1\nSN-ok2\n\nok3\n' >"$T/ids"
expect 0 "ids from stdin" sh -c "P() { mdm-push --apns-url '$URL' \
    --apns-ca '$T/ca.pem' \"\$@\"; }; P < '$T/ids'"
check "three records from stdin" test "$(grep -c '	ok	200' "$T/out")" = 3
check "a serial resolves to its enrollment" test "$(field ok2 2)" = ok
expect 0 "--json" P --json ok1
check "--json record" grep -q '"id": *"ok1".*"outcome": *"ok".*"status": *200' "$T/out"
printf 'ok1\0ok3\0' >"$T/ids0"
expect 0 "-0 reads NUL-terminated ids" sh -c "mdm-push -0 --apns-url '$URL' \
    --apns-ca '$T/ca.pem' < '$T/ids0'"
check "-0 pushed both" test "$(tr '\0' '\n' <"$T/out" | grep -c ok)" -ge 2

# ---- refused for good ----
expect 1 "410: exit 1" P dead410
check "410: token-dead Unregistered" \
    test "$(field dead410 2) $(field dead410 3) $(field dead410 4)" = "token-dead 410 Unregistered"
check "410: token_dead stored" test "$(sql "SELECT token_dead, last_push_status,
    last_push_reason FROM enrollments WHERE id = 'dead410'")" = "1|410|Unregistered"
expect 0 "a dead token is not pushed again" P dead410
check "dead token: skipped" test "$(field dead410 2)" = skipped
check "dead token: no second request" \
    test "$(grep -c '^4100aa' "$T/m1.pushes")" = 1
expect 1 "400 BadDeviceToken: exit 1" P bad400
check "400 BadDeviceToken: token-dead" \
    test "$(field bad400 2) $(field bad400 3) $(field bad400 4)" = "token-dead 400 BadDeviceToken"
expect 1 "403 BadCertificate: exit 1" P cert403
check "403: topic-failed" test "$(field cert403 2) $(field cert403 3)" = "topic-failed 403"
check "403: one clear message" grep -q "BadCertificate" "$T/err"
sql "UPDATE enrollments SET enabled = 0 WHERE id = 'cert403'"
expect 0 "a disabled enrollment is skipped" P cert403
check "disabled: skipped" test "$(field cert403 2)" = skipped
expect 1 "an unknown id: exit 1" P ok1 nosuch
check "unknown id reported" test "$(field nosuch 2)" = unknown
check "the known one still pushed" test "$(field ok1 2)" = ok

# ---- transient ----
t0=$(date +%s)
expect 75 "429 and 503: exit 75 after retries" P busy429 down503 ok3
t1=$(date +%s)
check "429: retry" test "$(field busy429 2) $(field busy429 3)" = "retry 429"
check "503: retry" test "$(field down503 2) $(field down503 3)" = "retry 503"
check "the good one in the same run: ok" test "$(field ok3 2)" = ok
check "retried 4 times in all" test "$(grep -c '^4290aa' "$T/m1.pushes")" = 4
check "with backoff (7 s at least)" test $((t1 - t0)) -ge 7
check "retry recorded" test "$(sql "SELECT last_push_status FROM enrollments
    WHERE id = 'busy429'")" = 429
sql "UPDATE enrollments SET enabled = 0 WHERE id IN ('busy429', 'down503')"

# ---- unreachable ----
expect 69 "nothing listening: exit 69" mdm-push --apns-url https://127.0.0.1:1 \
    --apns-ca "$T/ca.pem" ok1 ok2
check "unreachable: outcome retry" test "$(field ok1 2)" = retry

# ---- --pending and --stale ----
expect 0 "enqueue for ok2" mdm-queue enqueue DeviceInformation ok2
expect 0 "--pending" P --pending
check "--pending pushed only ok2" test "$(cut -f1 "$T/out" | tr '\n' ' ')" = "ok2 "
sql "UPDATE enrollments SET last_seen_at = strftime('%s', 'now')
    WHERE id IN ('ok1', 'ok3')"
sql "UPDATE enrollments SET last_seen_at = strftime('%s', 'now') - 7200
    WHERE id = 'ok2'"
expect 0 "--stale 1h" P --stale 1h
check "--stale pushed only ok2 (bad400 is dead, others disabled)" \
    test "$(cut -f1 "$T/out" | tr '\n' ' ')" = "ok2 "
expect 0 "--stale 3h" P --stale 3h
check "--stale 3h: nothing" test ! -s "$T/out"
stop "$SPID"
check "the first certificate was used" grep -q "APSP:one" "$T/m1.stats"

# ---- rotation ----
expect 0 "push-import a renewed certificate" mdm-certs push-import \
    "$T/push-two.pem" "$T/push-two.key"
mock m2
expect 0 "push after rotation" P ok1
stop "$SPID"
check "the renewed certificate is used without a restart" \
    grep -q "APSP:two" "$T/m2.stats"

# ---- several topics ----
OTHER=com.apple.mgmt.External.other-topic
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$T/other.key" \
    -out "$T/other.pem" -subj "/UID=$OTHER/CN=APSP:other/C=US" 2>/dev/null
chmod 600 "$T/other.key"
expect 0 "push-import a second topic (--force)" mdm-certs push-import \
    --force "$T/other.pem" "$T/other.key"
sql "INSERT INTO enrollments (id, type, enabled, topic, push_token,
    push_magic, created_at, updated_at) VALUES
    ('other1', 'device', 1, '$OTHER', 'dd01', 'm', 0, 0),
    ('nocert1', 'device', 1, 'com.apple.mgmt.External.nocert', 'dd02', 'm',
    0, 0)"
mock m6
expect 1 "three topics, one without a certificate: exit 1" P ok1 other1 nocert1
stop "$SPID"
check "first topic ok" test "$(field ok1 2)" = ok
check "second topic ok" test "$(field other1 2)" = ok
check "topic without a certificate: no-push-cert" test "$(field nocert1 2)" = no-push-cert
check "one connection per topic" grep -q "connections 2" "$T/m6.stats"
check "the second topic's token sent with its topic" \
    test "$(awk -F '\t' '$1 == "dd01" { print $2 }' "$T/m6.pushes")" = "$OTHER"

# ---- GOAWAY and dropped connections ----
sql "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
    WHERE x < 200) INSERT INTO enrollments (id, type, udid, enabled, topic,
    push_token, push_magic, created_at, updated_at)
    SELECT printf('G%03d', x), 'device', printf('G%03d', x), 1, '$TOPIC',
    printf('bb%06d', x), 'm', 0, 0 FROM c"
seq -f 'G%03g' 1 200 >"$T/gids"
mock m3 --goaway-after 50
expect 0 "GOAWAY after 50 of 200" sh -c "mdm-push --apns-url '$URL' \
    --apns-ca '$T/ca.pem' < '$T/gids'"
stop "$SPID"
check "GOAWAY: 200 ok" test "$(grep -c '	ok	200' "$T/out")" = 200
check "GOAWAY: none lost or duplicated" \
    test "$(cut -f1 "$T/m3.pushes" | sort | uniq | wc -l) $(wc -l <"$T/m3.pushes")" = "200 200"
check "GOAWAY: a second connection" grep -q "connections 2" "$T/m3.stats"
mock m4 --close-after 50
expect 0 "connection dropped after 50 of 200" sh -c "mdm-push \
    --apns-url '$URL' --apns-ca '$T/ca.pem' < '$T/gids'"
stop "$SPID"
check "dropped: 200 ok" test "$(grep -c '	ok	200' "$T/out")" = 200
check "dropped: none lost" test "$(cut -f1 "$T/m4.pushes" | sort -u | wc -l)" = 200
# A request the server processed but whose answer was lost is resent:
# at most the streams in flight when the connection dropped.
check "dropped: duplicates only from the lost connection" \
    test "$(wc -l <"$T/m4.pushes")" -le 400

# ---- 10,000 ----
sql "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
    WHERE x < 10000) INSERT INTO enrollments (id, type, udid, enabled,
    topic, push_token, push_magic, created_at, updated_at)
    SELECT printf('B%05d', x), 'device', printf('B%05d', x), 1, '$TOPIC',
    printf('cc%062x', x), 'm', 0, 0 FROM c"
seq -f 'B%05g' 1 10000 >"$T/bids"
mock m5
expect 0 "10,000 pushes" sh -c "mdm-push --apns-url '$URL' \
    --apns-ca '$T/ca.pem' < '$T/bids'"
stop "$SPID"
check "10,000 ok" test "$(grep -c '	ok	200' "$T/out")" = 10000
check "10,000: none lost or duplicated" \
    test "$(cut -f1 "$T/m5.pushes" | sort -u | wc -l) $(wc -l <"$T/m5.pushes")" = "10000 10000"
check "10,000: all recorded" test "$(sql "SELECT count(*) FROM enrollments
    WHERE id GLOB 'B*' AND last_push_status = 200")" = 10000

# A filter is read a window (8192) at a time: every enrollment once.
mock m7
mdm-push --apns-url "$URL" --apns-ca "$T/ca.pem" --stale 1s >"$T/out6" \
    2>/dev/null
stop "$SPID"
check "--stale over 10,000: each reported once" \
    test "$(grep -c '^B[0-9]*	ok	200' "$T/out6") $(cut -f1 "$T/out6" | sort | uniq -d | wc -l)" = "10000 0"
check "--stale over 10,000: none lost or duplicated at APNs" \
    test "$(grep -c '^cc' "$T/m7.pushes") $(grep '^cc' "$T/m7.pushes" | cut -f1 | sort -u | wc -l)" = "10000 10000"

# ---- nghttpd ----
if command -v nghttpd >/dev/null 2>&1; then
	mkdir -p "$T/www"
	NPORT=$((20000 + $$ % 20000))
	nghttpd --verify-client -d "$T/www" "$NPORT" "$T/srv.key" \
	    "$T/srv.pem" >"$T/nghttpd.out" 2>&1 &
	NPID=$!
	PIDS="$PIDS $NPID"
	sleep 0.5
	kill -0 "$NPID" 2>/dev/null || NPORT=
	if [ -n "$NPORT" ]; then
		expect 1 "nghttpd --verify-client answers (404 is refused)" \
		    mdm-push --apns-url "https://127.0.0.1:$NPORT" \
		    --apns-ca "$T/ca.pem" ok1
		check "nghttpd: an HTTP/2 answer, 404" \
		    test "$(field ok1 2) $(field ok1 3)" = "refused 404"
	else
		skip 2 "nghttpd did not start (port $((20000 + $$ % 20000)) busy?)"
	fi
	stop "$NPID"
else
	skip 2 "nghttpd is not installed"
fi

done_testing
