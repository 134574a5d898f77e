/*
 * admin: mdm-serve's admin HTTP API, NanoMDM-compatible, and its
 * /metrics, without the transport: a request struct in, a response
 * struct out, as libmdm/service does for devices, so the tests and a fuzz
 * target drive it with no socket.
 *
 * Routes (all but /version and /metrics need the API key):
 *   PUT|POST /v1/enqueue/ID[,ID...][?nopush=1]
 *                       the body is a raw command plist (a dict with
 *                       Command and CommandUUID): queued for each id,
 *                       then pushed unless nopush is given
 *   any      /v1/push/ID[,ID...]   pushes (NanoMDM takes any method)
 *   PUT      /v1/pushcert          PEM certificate + PEM key, concatenated:
 *                                  stored as STATE/push/TOPIC.pem + .key
 *   GET      /v1/pushcert[?topic=T] the stored topics and their expiry
 *   GET      /v1/enrollments[?limit=N]
 *   GET      /v1/queue/ID[?limit=N]     pending commands
 *   GET      /v1/results/ID[?limit=N]   results, oldest first
 *   GET      /version              {"version":"..."}, no key needed
 *   GET      /metrics              Prometheus text (see metrics.h), when
 *                                  metrics are on; behind the key when
 *                                  there is one
 * Enqueue and push answer NanoMDM's APIResult: {"status":{ID:
 * {"push_result":..., "push_error":..., "command_error":...}},
 * "no_push":..., "push_error":..., "command_error":..., "command_uuid":
 * ..., "request_type":...}, with 200 when every id went through, 207
 * when some did and 500 when none did (NanoMDM's rule), and 400 for a
 * body or path that is not a request at all.  Ids are enrollment ids,
 * UDIDs or serial numbers (state_queue.h); the status map is keyed by
 * the enrollment id each resolved to (the id given, for the unknown).
 *
 * Auth: HTTP Basic, any user name (NanoMDM's tools send "nanomdm"), the
 * API key as password, compared in constant time (SHA-256 of both, then
 * CRYPTO_memcmp, so not even the length leaks).  A missing or wrong one
 * gets 401 with WWW-Authenticate: Basic realm="mdm".  Without a key the
 * /v1 API does not exist (404), as in NanoMDM.
 *
 * Pushes: a request worker must not wait on APNs (mdm_push_run blocks
 * for seconds in retry rounds), so pushes go to one push thread (struct
 * mdm_admin_pusher) through a bounded queue of jobs.  The worker waits
 * for its job at most push_wait_ms: an id whose outcome arrived by then
 * is answered with it ("push_result":"ok", or "push_error"), the others
 * with "push_result":"queued" (the push still happens; its outcome is
 * stored as each enrollment's push health).  A full queue answers
 * "push_error" for each id: the command stays queued, the device gets it
 * at its next check-in.  Each job is one mdm_push run, with one HTTP/2
 * connection per topic: fine for an API called by scripts, not meant for
 * thousands of calls a second.
 *
 * Invariants: every response is complete (status, type, body); a request
 * refused (401, 400) changes nothing stored; enqueue answers only after
 * its commit; every list is capped (limit, MDM_ADMIN_LIMIT_MAX) and every
 * path id too (MDM_ADMIN_IDS_MAX).
 */
#ifndef MDM_ADMIN_H
#define MDM_ADMIN_H

#include <stddef.h>

#include <openssl/x509.h>

#include "buf.h"
#include "err.h"
#include "metrics.h"
#include "push.h"
#include "state.h"

#define MDM_ADMIN_KEY_MAX	4096	/* the API key */
#define MDM_ADMIN_IDS_MAX	1000	/* ids in one path */
#define MDM_ADMIN_LIMIT_DEFAULT	100	/* rows of a read endpoint */
#define MDM_ADMIN_LIMIT_MAX	1000
#define MDM_ADMIN_PUSH_WAIT_MS	3000	/* default wait for push outcomes */
#define MDM_ADMIN_PUSH_JOBS	64	/* default bound of the push queue */
#define MDM_ADMIN_BODY_MAX	(8u << 20)	/* the JSON answered */

struct mdm_admin_pusher;

/*
 * Starts the push thread, which opens its own handle on state_dir.  cfg
 * gives host, port, ca_file, priority and max_streams (its report,
 * progress and arg are ignored; strings borrowed, they must outlive the
 * pusher); expiration is set to a day from each push.  metrics (may be
 * NULL; borrowed) counts each outcome.  max_jobs 0 means
 * MDM_ADMIN_PUSH_JOBS.  *out owned: mdm_admin_pusher_free.
 */
int mdm_admin_pusher_new(const char *state_dir,
    const struct mdm_push_config *cfg, struct mdm_metrics *metrics,
    size_t max_jobs, struct mdm_admin_pusher **out, struct mdm_err *e);
/*
 * Stops the thread after the job it is running; jobs still queued are
 * dropped (their waiters, if any are left, see them as not pushed).
 * Free it only once no mdm_admin uses it.  p may be NULL.
 */
void mdm_admin_pusher_free(struct mdm_admin_pusher *p);

struct mdm_admin_config {
	/* The API key, or NULL: no /v1 API.  Borrowed. */
	const unsigned char *key;
	size_t key_len;
	/* NULL: pushes answer "push_error" (no push configured). */
	struct mdm_admin_pusher *pusher;
	int push_wait_ms;		/* 0: MDM_ADMIN_PUSH_WAIT_MS */
	/* NULL: no /metrics (404).  ca and tls feed its expiry gauges. */
	struct mdm_metrics *metrics;
	X509 *ca, *tls;			/* may be NULL; borrowed */
};

struct mdm_admin;

/*
 * The API for one thread: st and cfg (and all it points to) are borrowed
 * and must outlive it.  *out owned: mdm_admin_free.
 */
int mdm_admin_new(struct mdm_state *st, const struct mdm_admin_config *cfg,
    struct mdm_admin **out, struct mdm_err *e);
void mdm_admin_free(struct mdm_admin *a);

/* Whether path is the admin's: /v1/..., /version or /metrics. */
int mdm_admin_route(const char *path);

/* One request; everything borrowed. */
struct mdm_admin_request {
	const char *method;
	const char *path;		/* without the query, not %-decoded */
	const char *query;		/* after '?', or NULL */
	const char *authorization;	/* the header, or NULL */
	const unsigned char *body;
	size_t len;
};

struct mdm_admin_response {
	int status;
	const char *content_type;	/* static; NULL with an empty body */
	struct mdm_buf body;
	const char *www_authenticate;	/* static header value, or NULL */
	const char *outcome;		/* static, for the log: "enqueue",
					   "push", "unauthorized", ... */
	char reason[MDM_ERR_MSG_MAX];	/* why it failed, or "" */
};
void mdm_admin_response_init(struct mdm_admin_response *r);
void mdm_admin_response_release(struct mdm_admin_response *r);

/* Answers q into r (initialised by the caller).  Never fails. */
void mdm_admin_handle(struct mdm_admin *a, const struct mdm_admin_request *q,
    struct mdm_admin_response *r);

#endif
