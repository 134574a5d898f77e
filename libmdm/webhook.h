/*
 * webhook: the MicroMDM-compatible webhook event and its delivery over
 * HTTP, with no SQL in it.  It builds the JSON an event is POSTed as
 * (protocol.md section 10; the field names, shapes and omissions of
 * NanoMDM's service/webhook, which extends MicroMDM's), signs it the way
 * NanoMDM does (X-Hmac-Signature: base64 of HMAC-SHA256 of the body), and
 * POSTs it with libcurl.  state_webhook.h keeps events in the outbox in
 * mdm.db and drives delivery with retries; this module never retries.
 *
 * Invariants: the JSON is always valid UTF-8 (query parameters that are
 * not are repaired, as Go's encoder does); exactly one of checkin_event
 * and acknowledge_event is present; optional fields are left out rather
 * than sent empty or null, so an event validates against NanoMDM's
 * event.json schema.  A POST follows no redirect, reads at most
 * MDM_WEBHOOK_REPLY_MAX bytes of the reply and drops them, and counts as
 * delivered on any 2xx (NanoMDM's own receivers answer 200; a 204 from a
 * generic receiver means it took the event just the same).
 *
 * libcurl: call curl_global_init once before the first client is made if
 * the program starts threads; otherwise curl_easy_init does it.
 */
#ifndef MDM_WEBHOOK_H
#define MDM_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "queue.h"

/* An event as stored and POSTed: a MDM_CAP_PLIST body in base64 fits. */
#define MDM_WEBHOOK_BODY_MAX	(32u << 20)
/* What a receiver may say back before we hang up on it. */
#define MDM_WEBHOOK_REPLY_MAX	(64u << 10)
#define MDM_WEBHOOK_EVENT_ID_MAX 64
#define MDM_WEBHOOK_TOPIC_MAX	64

#define MDM_WEBHOOK_DEFAULT_TIMEOUT_MS	30000
/*
 * A receiver may be down for a weekend: attempts back off from 1 s,
 * doubling, to one an hour, and 84 of them span about three days, the
 * same as the age limit, so neither gives up long before the other.
 */
#define MDM_WEBHOOK_DEFAULT_MAX_ATTEMPTS 84
#define MDM_WEBHOOK_DEFAULT_MAX_AGE_MS	(3 * 86400 * INT64_C(1000))
#define MDM_WEBHOOK_DEFAULT_BATCH	50
#define MDM_WEBHOOK_BACKOFF_BASE_MS	1000
#define MDM_WEBHOOK_BACKOFF_MAX_MS	(3600 * 1000)

struct mdm_webhook_event {
	/*
	 * "mdm.Authenticate", "mdm.TokenUpdate", "mdm.CheckOut",
	 * "mdm.UserAuthenticate", "mdm.SetBootstrapToken",
	 * "mdm.GetBootstrapToken", "mdm.DeclarativeManagement",
	 * "mdm.GetToken" (check-ins) or "mdm.Connect" (command reports).
	 */
	const char *topic;
	const struct mdm_queue_ident *ident;	/* required */
	/* The raw query string of the request, or NULL: url_params. */
	const char *query;
	const void *raw;	/* the exact plist body: raw_payload */
	size_t raw_len;
	const char *status;	/* mdm.Connect: "Idle", "Acknowledged", ... */
	const char *command_uuid; /* mdm.Connect; NULL or "" leaves it out */
	int64_t token_update_tally; /* mdm.TokenUpdate; sent when > 0 */
	int64_t created_at_ns;	/* unix nanoseconds; 0: now */
	/* At most MDM_WEBHOOK_EVENT_ID_MAX printable characters; NULL: a
	   new random UUID. */
	const char *event_id;
};

/*
 * Appends the event's JSON (one line, no newline) to out.  MDM_E_USAGE
 * for an unknown topic, a missing ident, raw or (for mdm.Connect)
 * status, or an event_id that is empty, too long or not printable.
 * url_params: the query split at '&', each "k=v" decoded as Go's
 * url.ParseQuery does ('+' is a space, %XX a byte; a pair with a broken
 * escape, a ';' or nothing in it is skipped) and the first value of a
 * key kept; left out when no pair is left.
 */
int mdm_webhook_event_json(const struct mdm_webhook_event *ev,
    struct mdm_buf *out, struct mdm_err *e);

/*
 * Appends base64(HMAC-SHA256(key, body)) to b64_out: the value of the
 * X-Hmac-Signature header.  key_len must be > 0 (MDM_E_USAGE).
 */
int mdm_webhook_hmac(const void *key, size_t key_len, const void *body,
    size_t len, struct mdm_buf *b64_out, struct mdm_err *e);

/*
 * How long to wait after the attempts-th failed attempt (1, 2, ...):
 * MDM_WEBHOOK_BACKOFF_BASE_MS doubling, capped at
 * MDM_WEBHOOK_BACKOFF_MAX_MS, then +-20% at random, so receivers that
 * come back are not hit by every sender at the same instant.
 */
int64_t mdm_webhook_backoff_ms(int64_t attempts);

/* The wall clock in unix milliseconds, the unit of the outbox. */
int64_t mdm_webhook_now_ms(void);

/*
 * Where and how to deliver.  Strings and the key are borrowed; zero
 * fields take the defaults above.
 */
struct mdm_webhook_config {
	const char *url;		/* http:// or https:// only */
	const unsigned char *hmac_key;	/* NULL or hmac_key_len 0: unsigned */
	size_t hmac_key_len;
	int timeout_ms;			/* a whole POST, connect included */
	int max_attempts;		/* then the event is given up */
	int64_t max_age_ms;		/* an event older than this is given
					   up at its next failure */
	int batch;			/* events leased per round */
	const char *owner;		/* who holds a lease, for inspection;
					   NULL: "pid N" */
};

/* One connection (kept alive across POSTs) to cfg->url. */
struct mdm_webhook_client;

/*
 * Makes a client; *out is owned (mdm_webhook_client_free).  cfg is
 * borrowed and must outlive the client.  MDM_E_USAGE without a url;
 * MDM_E_CONFIG for a url that is not http:// or https://.
 */
int mdm_webhook_client_new(const struct mdm_webhook_config *cfg,
    struct mdm_webhook_client **out, struct mdm_err *e);
void mdm_webhook_client_free(struct mdm_webhook_client *c);

/*
 * POSTs body once, signed when cfg has a key.  Returns 0 on a 2xx.
 * Otherwise -1 with *status the HTTP status, or 0 when no answer came:
 * MDM_E_UNAVAILABLE for no answer (refused, timed out, reset),
 * MDM_E_TEMPFAIL for 429 and 5xx, MDM_E_DATA for anything else (a
 * redirect included).  A reply body over MDM_WEBHOOK_REPLY_MAX is cut
 * off; its status still counts.
 */
int mdm_webhook_client_post(struct mdm_webhook_client *c, const void *body,
    size_t len, int *status, struct mdm_err *e);

#endif
