#!/bin/sh
# mdm-scep under load: eight scepclient loops enroll 500 certificates at
# once against one "mdm-scep serve".  Every enrollment must succeed and
# every certificate must have its own serial, in the files scepclient
# wrote and in "mdm-scep list" (micromdm's own scepserver hands out
# duplicate serials under this load).
#
# Each enrollment uses its own key: scepclient derives the transactionID
# from the public key, and a PKCSReq retried with the same transactionID
# and key is answered with the certificate already issued, so reusing keys
# would test that instead.  The keys are 1024-bit (the server is told to
# accept them) so that making 500 of them takes seconds, not a minute;
# the server's own work (three CA private-key operations per enrollment,
# with its 2048-bit CA key) does not change with the client's key size.
#
# MDM_SCEP_LOAD_N and MDM_SCEP_LOAD_LOOPS change the numbers.
. "$MDM_SOURCE_DIR/tests/cmd/lib.sh"
S=$MDM_STATE_DIR
N=${MDM_SCEP_LOAD_N:-500}
LOOPS=${MDM_SCEP_LOAD_LOOPS:-8}
SPID=
trap '[ -n "$SPID" ] && kill "$SPID" 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' HUP INT TERM

if ! command -v scepclient >/dev/null 2>&1; then
	echo "1..0 # skip scepclient is not installed (apt-get install scep)"
	exit 77
fi

now() {
	date +%s.%N
}

elapsed() {	# elapsed START: seconds since START, one decimal
	echo "$1 $(now)" | awk '{printf "%.1f", $2 - $1}'
}

t0=$(now)
expect 0 "mdm-certs init" mdm-certs init --hostname localhost

# The keys, two generators at a time (the machine may have two cores).
mkdir -p "$T/e"
gen() {	# gen FIRST STEP: keys FIRST, FIRST+STEP, ... up to N
	i=$1
	while [ "$i" -le "$N" ]; do
		mkdir -p "$T/e/$i"
		openssl genrsa -traditional -out "$T/e/$i/key.pem" 1024 \
			2>/dev/null || return 1
		i=$((i + $2))
	done
}
gen 1 2 &
g1=$!
gen 2 2 &
g2=$!
wait "$g1" && wait "$g2"
t_result $? "made $N client keys in $(elapsed "$t0") s"

rm -f "$T/port"
mdm-scep -v serve --listen 127.0.0.1:0 --port-file "$T/port" \
	--challenge load-secret --min-key-bits 1024 2>"$T/server.log" &
SPID=$!
n=0
while [ ! -s "$T/port" ] && kill -0 "$SPID" 2>/dev/null && [ "$n" -lt 200 ]; do
	sleep 0.05
	n=$((n + 1))
done
if [ ! -s "$T/port" ]; then
	t_result 1 "the server starts"
	sed 's/^/# /' "$T/server.log"
	done_testing
	exit 1
fi
t_result 0 "the server starts"
URL="http://127.0.0.1:$(cat "$T/port")/scep"

# loop K: enrolls K, K+LOOPS, ...; one "I STATUS" line per enrollment.
loop() {
	i=$1
	while [ "$i" -le "$N" ]; do
		scepclient -server-url "$URL" -private-key "$T/e/$i/key.pem" \
			-challenge load-secret -cn "load-$i" >"$T/e/$i/log" 2>&1
		echo "$i $?"
		i=$((i + LOOPS))
	done >"$T/loop.$1"
}

t1=$(now)
k=1
pids=
while [ "$k" -le "$LOOPS" ]; do
	loop "$k" &
	pids="$pids $!"
	k=$((k + 1))
done
for p in $pids; do
	wait "$p"
done
secs=$(elapsed "$t1")
echo "# $N enrollments by $LOOPS concurrent scepclient loops in $secs s"

cat "$T"/loop.* >"$T/results"
ok_count=$(awk '$2 == 0' "$T/results" | wc -l)
check "$N enrollments attempted" test "$(wc -l <"$T/results")" -eq "$N"
check "all $N succeeded ($ok_count did)" test "$ok_count" -eq "$N"
if [ "$ok_count" -ne "$N" ]; then
	awk '$2 != 0 {print $1}' "$T/results" | head -n 3 | while read -r i; do
		sed "s/^/# $i: /" "$T/e/$i/log" | tail -n 2
	done
fi

# Serials and fingerprints from the certificate files.
for d in "$T"/e/*; do
	[ -f "$d/client.pem" ] || continue
	openssl x509 -in "$d/client.pem" -noout -serial -fingerprint -sha256
done >"$T/x509"
sed -n 's/^serial=//p' "$T/x509" | sort >"$T/serials.files"
check "$N certificate files" test "$(wc -l <"$T/serials.files")" -eq "$N"
check "$N distinct serials in the files" test "$(sort -u "$T/serials.files" | wc -l)" -eq "$N"
check "$N distinct fingerprints in the files" \
	test "$(sed -n 's/^.*Fingerprint=//p' "$T/x509" | sort -u | wc -l)" -eq "$N"
check "every certificate verifies against the CA" sh -c \
	"openssl verify -CAfile '$S/ca/ca.pem' '$T'/e/*/client.pem >/dev/null"

expect 0 "mdm-scep list" mdm-scep list
cut -f1 "$T/out" | sort >"$T/serials.list"
check "list has $N certificates" test "$(wc -l <"$T/serials.list")" -eq "$N"
check "with $N distinct serials" test "$(sort -u "$T/serials.list" | wc -l)" -eq "$N"
check "the same serials as the files" cmp "$T/serials.files" "$T/serials.list"
check "and $N distinct fingerprints" test "$(cut -f5 "$T/out" | sort -u | wc -l)" -eq "$N"

check "the server logged $N issues" \
	test "$(grep -c 'PKIOperation issued serial=' "$T/server.log")" -eq "$N"
check "and no failure, server error or busy answer" \
	sh -c "! grep -Eq 'failure:|status=5|error' '$T/server.log'"
kill -TERM "$SPID"
wait "$SPID"
t_result $? "the server stops cleanly on SIGTERM"
SPID=
echo "# total $(elapsed "$t0") s"
done_testing
