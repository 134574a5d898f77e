#!/bin/sh
# docs.t: the man pages and shell completions keep up with the tools.
#
# For every mdm-* tool in $MDM_BIN, the options it really has (its hidden
# --list-options, and CMD --list-options for each command --list-commands
# prints) and its command names must appear in man/TOOL.1 (or .8) and in
# the bash, zsh and fish completions; every flag the man page lists as an
# .It item must be a real option; every man page must pass
# "mandoc -Tlint -W warning"; and every tool must print --help on stdout
# with status 0 and refuse an unknown option with status 64 and nothing on
# stdout.
#
# TAP on stdout.  Exit 1 when a check failed, 77 (skipped) when $MDM_BIN
# holds no tool yet.  ctest sets MDM_BIN and MDM_SOURCE_DIR; by hand:
#   MDM_BIN=build/dev/bin sh tests/cmd/docs.t

src=${MDM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${MDM_BIN:-$src/build/dev/bin}

n=0
failed=0

pass()
{
	n=$((n + 1))
	echo "ok $n - $1"
}

fail()
{
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
}

skip()
{
	n=$((n + 1))
	echo "ok $n # skip $1"
}

# Prints the file $1 as "# " diagnostic lines.
diag()
{
	sed 's/^/#   /' "$1"
}

tools=
for f in "$bin"/mdm-*; do
	[ -f "$f" ] && [ -x "$f" ] && tools="$tools ${f##*/}"
done
if [ -z "$tools" ]; then
	echo "1..0 # skip no mdm-* tools in $bin"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/docs.t.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
# The checks must never touch a real state directory.
MDM_STATE_DIR=$tmp/state
export MDM_STATE_DIR

# Escapes the regular expression metacharacters of $1 for grep -E.
re_quote()
{
	printf '%s\n' "$1" | sed 's/[].[^$*+?(){}|\\/]/\\&/g'
}

# The characters that may not touch an option or command name.
B='[^A-Za-z0-9_-]'

# found FILE ERE: 0 when a line of FILE matches.
found()
{
	grep -E -q -e "$2" "$1"
}

# Pattern of option $1 (--long or -s) in the kind of file $2.
opt_pattern()
{
	case $1 in
	--*)
		q=$(re_quote "${1#--}")
		case $2 in
		man) echo "Fl --?$q($B|\$)" ;;
		fish) echo "(-l|--long-option)[ =]['\"]?$q($B|\$)" ;;
		*) echo "(^|$B)--$q($B|\$)" ;;
		esac
		;;
	*)
		q=$(re_quote "${1#-}")
		case $2 in
		man) echo "Fl $q($B|\$)" ;;
		fish) echo "(-s|--short-option)[ =]['\"]?$q($B|\$)" ;;
		*) echo "(^|$B)-$q($B|\$)" ;;
		esac
		;;
	esac
}

# Pattern of command $1 in the kind of file $2.
cmd_pattern()
{
	q=$(re_quote "$1")
	case $2 in
	man) echo "Cm $q($B|\$)" ;;
	*) echo "(^|$B)$q($B|\$)" ;;
	esac
}

for tool in $tools; do
	exe=$bin/$tool

	# --help and an unknown option, for the tool and each command.
	commands=$("$exe" --list-commands 2>/dev/null) || commands=
	for cmd in "" $commands; do
		what=$(echo "$tool $cmd" | sed 's/ *$//')
		# shellcheck disable=SC2086 # $cmd is one word or none
		"$exe" $cmd --help >"$tmp/out" 2>"$tmp/err"
		rc=$?
		if [ "$rc" -eq 0 ] && [ -s "$tmp/out" ]; then
			pass "$what --help: status 0, usage on stdout"
		else
			fail "$what --help: status 0, usage on stdout"
			echo "# status $rc, $(wc -c <"$tmp/out") bytes on stdout"
		fi
		# shellcheck disable=SC2086
		"$exe" $cmd --no-such-option >"$tmp/out" 2>"$tmp/err" </dev/null
		rc=$?
		if [ "$rc" -eq 64 ] && [ ! -s "$tmp/out" ]; then
			pass "$what --no-such-option: status 64, stdout empty"
		else
			fail "$what --no-such-option: status 64, stdout empty"
			echo "# status $rc; stdout:"
			diag "$tmp/out"
		fi
	done

	# Every option of the tool and of its commands, once each.
	if ! "$exe" --list-options >"$tmp/opts.raw" 2>"$tmp/err"; then
		fail "$tool --list-options works"
		diag "$tmp/err"
		continue
	fi
	for cmd in $commands; do
		if ! "$exe" "$cmd" --list-options >>"$tmp/opts.raw" \
		    2>"$tmp/err"; then
			fail "$tool $cmd --list-options works"
			diag "$tmp/err"
		fi
	done
	sed -n 's/^[[:space:]]*\(-[^[:space:]]*\)[[:space:]]*$/\1/p' \
	    "$tmp/opts.raw" | sort -u >"$tmp/opts"
	if [ -s "$tmp/opts" ]; then
		pass "$tool lists its options ($(wc -l <"$tmp/opts" |
		    tr -d ' ') of them)"
	else
		fail "$tool lists its options"
	fi

	man=
	for f in "$src/man/$tool.1" "$src/man/$tool.8"; do
		[ -f "$f" ] && man=$f && break
	done
	if [ -n "$man" ]; then
		pass "$tool has a man page (${man#"$src"/})"
		# Backslashes out, so \- and \& do not hide a name.
		sed 's/\\//g' "$man" >"$tmp/man"
	else
		fail "$tool has a man page (man/$tool.1 or man/$tool.8)"
	fi

	for kind in man bash zsh fish; do
		case $kind in
		man) file=$tmp/man rel=${man#"$src"/} ;;
		bash) rel=completions/bash/$tool ;;
		zsh) rel=completions/zsh/_$tool ;;
		fish) rel=completions/fish/$tool.fish ;;
		esac
		if [ "$kind" = man ]; then
			[ -n "$man" ] || continue
		elif [ -f "$src/$rel" ]; then
			pass "$tool has a $kind completion ($rel)"
			file=$src/$rel
		else
			fail "$tool has a $kind completion ($rel)"
			continue
		fi
		while read -r opt; do
			if found "$file" "$(opt_pattern "$opt" "$kind")"; then
				pass "$tool: $opt in $rel"
			else
				fail "$tool: $opt in $rel"
			fi
		done <"$tmp/opts"
		for cmd in $commands; do
			if found "$file" "$(cmd_pattern "$cmd" "$kind")"; then
				pass "$tool: command $cmd in $rel"
			else
				fail "$tool: command $cmd in $rel"
			fi
		done
	done

	# The other way round: each flag the man page lists as an item
	# (".It Fl o , Fl -output") is an option the tool has.
	[ -n "$man" ] || continue
	awk '/^\.It Fl / {
		for (i = 1; i < NF; i++) {
			if ($i != "Fl")
				continue
			t = $(i + 1)
			sub(/[^A-Za-z0-9_-]+$/, "", t)
			if (t ~ /^-[A-Za-z0-9]/)
				print "-" t
			else	# -abc lists the short options a, b and c
				for (j = 1; j <= length(t); j++)
					print "-" substr(t, j, 1)
		}
	}' "$tmp/man" | sort -u >"$tmp/man.flags"
	while read -r opt; do
		if grep -F -x -q -e "$opt" "$tmp/opts"; then
			pass "$tool: ${man#"$src"/} item $opt is an option"
		else
			fail "$tool: ${man#"$src"/} item $opt is an option"
		fi
	done <"$tmp/man.flags"
done

# Every man page passes mandoc's checks at warning level.
for page in "$src"/man/*.[1-8]; do
	[ -f "$page" ] || continue
	rel=${page#"$src"/}
	if ! command -v mandoc >/dev/null 2>&1; then
		skip "mandoc -Tlint $rel: mandoc not installed"
		continue
	fi
	mandoc -Tlint -W warning "$page" >"$tmp/lint" 2>&1
	if grep -E -q '(WARNING|ERROR|UNSUPP|BADARG|SYSERR):' "$tmp/lint"; then
		fail "mandoc -Tlint -W warning $rel"
		diag "$tmp/lint"
	else
		pass "mandoc -Tlint -W warning $rel"
	fi
done

echo "1..$n"
[ "$failed" -eq 0 ] || exit 1
exit 0
