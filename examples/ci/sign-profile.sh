#!/bin/sh
# A CI job: sign configuration profiles with mdm-certs and check every
# signed file before anything is published.
#
# usage: sign-profile.sh profile.mobileconfig ...
#
# Each PROFILE is signed to $OUT_DIR/PROFILE's file name (default OUT_DIR:
# signed), then verified three ways: mdm-certs verify-profile (signature and
# chain to the CA), the signed content compared byte for byte with the input
# (mdm-certs must not change it), and "openssl cms -verify" as an
# independent second opinion.  One line per profile on stdout:
# path<TAB>signer subject<TAB>signer sha256.
#
# The signing identity comes from CI secrets stored as files:
#   MDM_SIGNING_CERT  PEM certificate of the profile-signing identity
#   MDM_SIGNING_KEY   its PEM private key
#   MDM_CA_CERT       PEM certificate of the CA that issued it
# or, when MDM_SIGNING_CERT is unset, from the state directory
# ($MDM_STATE_DIR, default /var/lib/mdm): signing/ and ca/ as made by
# "mdm-certs init".
#
# Exit status: 0 when every profile was signed and verified; else that of
# the step that failed (mdm-certs: 65 not a property list or a bad
# signature, 66 a missing file, 75 try again, 77 a key file others can
# read, 78 the state directory is not initialised), or 1.
set -eu

prog=sign-profile.sh
out_dir=${OUT_DIR:-signed}

die()
{
	rc=$1
	shift
	echo "$prog: $*" >&2
	exit "$rc"
}

if [ "$#" -eq 0 ]; then
	echo "usage: $prog profile.mobileconfig ..." >&2
	exit 64
fi
command -v mdm-certs >/dev/null || die 69 "mdm-certs not found in PATH"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

if [ -n "${MDM_SIGNING_CERT:-}" ]; then
	: "${MDM_SIGNING_KEY:?set MDM_SIGNING_KEY with MDM_SIGNING_CERT}"
	: "${MDM_CA_CERT:?set MDM_CA_CERT with MDM_SIGNING_CERT}"
	# CI systems often write secret files readable by group or others,
	# which mdm-certs refuses (exit 77): use a private copy instead.
	(umask 077 && cat "$MDM_SIGNING_KEY" >"$tmp/signing.key") ||
	    die 66 "cannot read $MDM_SIGNING_KEY"
	ca=$MDM_CA_CERT
else
	ca=${MDM_STATE_DIR:-/var/lib/mdm}/ca/ca.pem
fi

sign()
{
	if [ -n "${MDM_SIGNING_CERT:-}" ]; then
		mdm-certs sign-profile --signer "$MDM_SIGNING_CERT" \
		    --key "$tmp/signing.key" -o "$2" "$1"
	else
		mdm-certs sign-profile -o "$2" "$1"
	fi
}

mkdir -p "$out_dir"
for profile in "$@"; do
	out=$out_dir/$(basename "$profile")
	content=$tmp/content

	rc=0
	sign "$profile" "$out" || rc=$?
	[ "$rc" -eq 0 ] || die "$rc" "$profile: signing failed"

	rc=0
	mdm-certs verify-profile --ca "$ca" -o "$content" "$out" \
	    >"$tmp/signer" || rc=$?
	[ "$rc" -eq 0 ] || die "$rc" "$out: verification failed"

	cmp -s "$profile" "$content" ||
	    die 1 "$out: signed content differs from $profile"

	if command -v openssl >/dev/null; then
		openssl cms -verify -inform DER -in "$out" -CAfile "$ca" \
		    -purpose any -out /dev/null 2>"$tmp/openssl.err" || {
			cat "$tmp/openssl.err" >&2
			die 1 "$out: openssl cms -verify failed"
		}
	fi

	# The signer record is "signer<TAB>subject<TAB>sha256".
	printf '%s\t%s\n' "$out" "$(cut -f 2- "$tmp/signer")"
done
