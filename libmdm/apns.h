/*
 * apns: the client side of APNs MDM pushes (protocol.md section 6).  One
 * struct mdm_apns is one topic: one TLS + HTTP/2 connection authenticated
 * with that topic's push certificate, on which every push is multiplexed.
 *
 * The caller's thread drives everything: mdm_apns_run() polls the
 * non-blocking socket itself and returns when there is nothing left to do,
 * so the module has no threads and no global state (several topics push in
 * parallel by running one struct mdm_apns per thread).
 *
 * Invariants:
 *  - pushes are pulled, not submitted: run() asks the caller's next()
 *    callback for a push only when a stream slot is free, so memory is
 *    bounded by max_streams slots (about 1 KiB each) however many pushes
 *    flow through;
 *  - every push next() handed over is reported exactly once through done(),
 *    before run() returns: answered, refused locally, or given up on;
 *  - the first request on a connection goes alone; later ones follow the
 *    server's SETTINGS_MAX_CONCURRENT_STREAMS, capped by max_streams;
 *  - a push the server did not process (refused by GOAWAY, or in flight on
 *    a connection that dropped) is resent on a fresh connection, at most
 *    max_attempts times in all, then reported as MDM_APNS_RETRY;
 *  - after a TOPIC_FATAL outcome no new push is taken for this topic.
 *
 * Writes never raise SIGPIPE (the socket is written with MSG_NOSIGNAL).
 */
#ifndef MDM_APNS_H
#define MDM_APNS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "err.h"

#define MDM_APNS_HOST		"api.push.apple.com"
#define MDM_APNS_HOST_SANDBOX	"api.sandbox.push.apple.com"
#define MDM_APNS_TOKEN_MAX	512	/* hex characters */
#define MDM_APNS_MAGIC_MAX	128
#define MDM_APNS_TOPIC_MAX	255
#define MDM_APNS_REPLY_MAX	4096	/* error body bytes kept */

struct mdm_apns;

enum mdm_apns_outcome {
	MDM_APNS_OK,		/* 200: accepted */
	MDM_APNS_TOKEN_DEAD,	/* 410, BadDeviceToken, DeviceTokenNotForTopic:
				   stop pushing until a new TokenUpdate */
	MDM_APNS_TOPIC_FATAL,	/* certificate or topic problem: stop the
				   topic */
	MDM_APNS_RETRY,		/* 429, 5xx, transport errors: try later */
	MDM_APNS_REFUSED,	/* any other 4xx, or a push we would not send */
};

struct mdm_apns_config {
	const char *host;	/* NULL: MDM_APNS_HOST; an IP literal is fine */
	const char *port;	/* NULL: "443" */
	const char *topic;	/* required: the certificate's UID */
	X509 *cert;		/* required, borrowed: the push certificate */
	EVP_PKEY *key;		/* required, borrowed: its key */
	STACK_OF(X509) *chain;	/* optional, borrowed: intermediates */
	const char *ca_file;	/* NULL: the system trust store */
	unsigned max_streams;	/* 0: 1000, at most 100000; streams in
				   flight never exceed this nor the
				   server's limit */
	int max_attempts;	/* 0: 3; sends of one push, and connection
				   attempts in a row */
	int backoff_ms;		/* 0: 500; first reconnect delay, doubled
				   each time, with jitter */
	int timeout_ms;		/* 0: 15000; connect, handshake, and silence
				   while streams are in flight */
};

struct mdm_apns_push {
	char token[MDM_APNS_TOKEN_MAX + 1];	/* lowercase hex */
	char magic[MDM_APNS_MAGIC_MAX + 1];	/* PushMagic, printable */
	char id[37];		/* optional apns-id (UUID), "" to let APNs
				   choose */
	int priority;		/* 10 or 5; 0 means 10 */
	int64_t expiration;	/* apns-expiration, unix seconds; 0 = once */
	uint64_t cookie;	/* the caller's, handed back in done() */
};

struct mdm_apns_result {
	enum mdm_apns_outcome outcome;
	int status;		/* HTTP status; 0 when none was received */
	char apns_id[40];	/* the server's apns-id header, or "" */
	char reason[64];	/* APNs reason ("Unregistered"), or "" */
	int64_t timestamp;	/* 410: ms since the epoch, else 0 */
	int attempts;		/* times the push was sent */
	char error[160];	/* transport or validation error, or "" */
};

/*
 * Fills *p with the next push and returns 1, or returns 0 when there are
 * no more for this run.  Called only when a slot is free.
 */
typedef int (*mdm_apns_next_fn)(void *arg, struct mdm_apns_push *p);
/*
 * One outcome; p and r are borrowed for the duration of the call.  Called
 * from inside run(): it must not call run() or free the struct mdm_apns.
 */
typedef void (*mdm_apns_done_fn)(void *arg, const struct mdm_apns_push *p,
    const struct mdm_apns_result *r);

/*
 * Checks the config and builds the TLS context (ALPN h2, TLS 1.2+, client
 * certificate, server verification with host name and SNI).  Does not
 * connect.  *out owned: mdm_apns_free.  cert/key/chain may be freed by the
 * caller afterwards.
 */
int mdm_apns_new(const struct mdm_apns_config *cfg, struct mdm_apns **out,
    struct mdm_err *e);
/* Closes the connection, if any.  a may be NULL. */
void mdm_apns_free(struct mdm_apns *a);

/*
 * Pushes until next() returns 0 and every push taken is reported, then
 * returns 0 and keeps the connection open for the next run.  Returns -1
 * with e set, after reporting every push taken, when the topic is fatal
 * (MDM_E_CONFIG, then every later run fails at once) or the server could
 * not be reached max_attempts times in a row (MDM_E_UNAVAILABLE: the
 * pushes next() has not handed over yet were not tried).
 */
int mdm_apns_run(struct mdm_apns *a, mdm_apns_next_fn next,
    mdm_apns_done_fn done, void *arg, struct mdm_err *e);

/* Checks a push as run() does before sending it; e says what is wrong. */
int mdm_apns_push_check(const struct mdm_apns_push *p, struct mdm_err *e);

/*
 * Reads an APNs error body ({"reason":"...","timestamp":N}) into reason
 * (cut to reasonlen - 1, printable ASCII only) and *timestamp (0 when
 * absent).  Returns -1 on a body that is not such an object.
 */
int mdm_apns_parse_reply(const void *body, size_t len, char *reason,
    size_t reasonlen, int64_t *timestamp);

/* The outcome class of a status and reason (reason may be NULL). */
enum mdm_apns_outcome mdm_apns_classify(int status, const char *reason);

/* "ok", "token-dead", "topic-fatal", "retry", "refused". */
const char *mdm_apns_outcome_name(enum mdm_apns_outcome o);

#endif
