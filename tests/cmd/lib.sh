# lib.sh: TAP helpers for the tool tests (tests/cmd/*.t), sourced by each.
# Every test gets a fresh scratch directory $T and state directory
# $MDM_STATE_DIR, and the tools of this build first on PATH.
set -u

: "${MDM_BIN:?MDM_BIN is not set: run the tests through ctest}"
PATH="$MDM_BIN:$PATH"
T=$(mktemp -d "${TMPDIR:-/tmp}/mdm-cmd-XXXXXX")
MDM_STATE_DIR="$T/state"
S=$MDM_STATE_DIR
export PATH MDM_STATE_DIR
# Servers started with start() are stopped however the test ends.
PIDS=
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
trap 'exit 1' HUP INT TERM

t_count=0
t_failed=0

t_result() {	# t_result STATUS DESCRIPTION
	t_count=$((t_count + 1))
	if [ "$1" = 0 ]; then
		echo "ok $t_count - $2"
	else
		t_failed=$((t_failed + 1))
		echo "not ok $t_count - $2"
	fi
}

# expect CODE DESCRIPTION CMD...: CMD exits with CODE.  Its stdout and
# stderr are left in $T/out and $T/err for later checks.
expect() {
	want=$1 desc=$2
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" = "$want" ]; then
		t_result 0 "$desc"
	else
		t_result 1 "$desc"
		echo "# expected exit $want, got $got: $*"
		sed 's/^/# stderr: /' "$T/err" | head -n 5
	fi
}

# check DESCRIPTION CMD...: CMD succeeds (a test, grep, cmp...).
check() {
	desc=$1
	shift
	if "$@" >/dev/null 2>&1; then
		t_result 0 "$desc"
	else
		t_result 1 "$desc"
		echo "# failed: $*"
	fi
}

# fixture REL: prints the path of a shared fixture, or fails if the
# fixtures are not there.
fixture() {
	[ -n "${MDM_FIXTURES:-}" ] && [ -e "$MDM_FIXTURES/$1" ] || return 1
	printf '%s\n' "$MDM_FIXTURES/$1"
}

skip() {	# skip N REASON
	i=0
	while [ "$i" -lt "$1" ]; do
		t_count=$((t_count + 1))
		echo "ok $t_count # skip $2"
		i=$((i + 1))
	done
}

# start NAME PROG ARGS...: PROG (which takes --port-file $T/NAME.port
# among ARGS) in the background, its stderr in $T/NAME.log; waits for
# the port file.  Sets SPID and PORT.
start() {
	name=$1
	shift
	rm -f "$T/$name.port"
	"$@" 2>>"$T/$name.log" &
	SPID=$!
	PIDS="$PIDS $SPID"
	n=0
	while [ ! -s "$T/$name.port" ]; do
		kill -0 "$SPID" 2>/dev/null || return 1
		n=$((n + 1))
		[ "$n" -gt 200 ] && return 1
		sleep 0.05
	done
	PORT=$(cat "$T/$name.port")
}

# stop PID: SIGTERM, and wait for it; the exit status is PID's.
stop() {
	kill -TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# sql SQL...: the sqlite3 shell on the state's database.
sql() {
	sqlite3 -cmd '.timeout 5000' "$S/mdm.db" "$@"
}

file_mode() {
	stat -c %a "$1"
}

done_testing() {
	echo "1..$t_count"
	[ "$t_failed" = 0 ] || echo "# $t_failed of $t_count failed"
	[ "$t_failed" = 0 ]
}
