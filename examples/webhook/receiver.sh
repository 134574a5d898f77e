#!/bin/sh
# A tiny receiver for mdm-serve's webhook events, for trying webhooks out
# and for the shape of a real one: it checks each event's HMAC signature
# and appends the event, one JSON object a line, to a file.
#
# usage: receiver.sh [port]        (default 9100; needs socat)
#
# Then run mdm-serve with
#   --webhook-url http://127.0.0.1:9100/ --webhook-hmac-key-file KEYFILE
# and follow the events, for instance
#   tail -f events.jsonl | jq -r '[.topic, (.checkin_event // .acknowledge_event).udid] | @tsv'
#
# Environment: WEBHOOK_KEY_FILE, the key file mdm-serve signs with (its
# first line is the key, as it is); without it signatures are not
# checked.  EVENTS, the file to append to (default ./events.jsonl).
#
# What mdm-serve sends (see mdm-serve(8), Webhooks): a POST of one JSON
# event, Content-Type application/json, signed when it has a key with
#   X-Hmac-Signature: base64(HMAC-SHA256(key, body))
# which anyone can compute for a saved body with
#   openssl dgst -sha256 -hmac "$(head -n 1 KEYFILE)" -binary body.json | base64
# Any 2xx answer delivers the event; anything else makes mdm-serve try it
# again later, with backoff, so a receiver answers 2xx only once the event
# is safely stored.  Delivery is at least once: a real receiver drops
# events whose event_id it has seen, and compares signatures in constant
# time, which a shell cannot.
#
# socat runs this script once per connection with the connection on
# stdin and stdout ("--handle"); mdm-serve keeps its connection open
# between events, so each answer says "Connection: close" and the next
# event comes on a new connection.
set -eu

if [ "${1:-}" != --handle ]; then
	port=${1:-9100}
	command -v socat >/dev/null 2>&1 || {
		echo "receiver.sh: socat is needed" >&2
		exit 69
	}
	if [ -n "${WEBHOOK_KEY_FILE:-}" ] && [ ! -r "$WEBHOOK_KEY_FILE" ]; then
		echo "receiver.sh: cannot read $WEBHOOK_KEY_FILE" >&2
		exit 66
	fi
	EVENTS=${EVENTS:-$PWD/events.jsonl}
	export EVENTS
	echo "receiver.sh: listening on 127.0.0.1:$port," \
	    "appending to $EVENTS" >&2
	exec socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
	    "EXEC:$0 --handle"
fi

reply()
{
	printf 'HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' \
	    "$1"
	exit 0
}

cr=$(printf '\r')
# The request line, then the headers up to the empty line.
IFS=' ' read -r method _ _ || exit 0
len=
sig=
while IFS= read -r line; do
	line=${line%"$cr"}
	[ -z "$line" ] && break
	name=$(printf '%s\n' "${line%%:*}" | tr '[:upper:]' '[:lower:]')
	value=${line#*:}
	value=${value# }
	case $name in
	content-length) len=$value ;;
	x-hmac-signature) sig=$value ;;
	esac
done
[ "$method" = POST ] || reply '405 Method Not Allowed'
case $len in
'' | *[!0-9]*) reply '411 Length Required' ;;
esac
# Events are at most a few MiB (raw_payload is the device's message).
[ "$len" -le 33554432 ] || reply '413 Content Too Large'

tmp=$(mktemp "${TMPDIR:-/tmp}/webhook.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# read(1) took the headers a byte at a time, so the body is still there.
head -c "$len" >"$tmp"
[ "$(wc -c <"$tmp")" -eq "$len" ] || reply '400 Bad Request'

if [ -n "${WEBHOOK_KEY_FILE:-}" ]; then
	key=$(head -n 1 "$WEBHOOK_KEY_FILE")
	want=$(openssl dgst -sha256 -hmac "$key" -binary "$tmp" | base64)
	if [ "$sig" != "$want" ]; then
		echo "receiver.sh: bad or missing X-Hmac-Signature" >&2
		reply '403 Forbidden'
	fi
fi

# One event a line: the body is one line of JSON already.  Appends of a
# few KiB from the concurrent handlers do not interleave on a local file
# system; a big one might, which is one more reason this is only a demo.
{ cat "$tmp"; echo; } >>"$EVENTS"
reply '200 OK'
