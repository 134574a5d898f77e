/*
 * push: waking enrollments through APNs, shared by mdm-push, `mdm-queue
 * enqueue --push` and mdm-serve's enqueue API.  A struct mdm_push owns one
 * run: the enrollments taken as targets (resolved from ids or picked by a
 * filter), grouped by topic; each topic's identity, read afresh from
 * STATE/push/TOPIC.pem and .key; one thread and one libmdm/apns
 * connection per topic; bounded retry rounds with backoff and jitter;
 * and the push health stored on each enrollment.
 *
 * Invariants:
 *  - every id added is reported exactly once through the caller's report
 *    callback, always on the caller's thread: at once when it goes no
 *    further (unknown, skipped), else once its window is pushed, topic
 *    by topic, in the order the topics were first seen;
 *  - targets are held a window (MDM_PUSH_WINDOW) at a time: an add that
 *    fills the window pushes it before it returns (a filter is read a
 *    window at a time), and mdm_push_run() pushes the rest, so memory
 *    does not grow with the number of ids.  Each topic's connection is
 *    kept from one window to the next;
 *  - the state handle is used only on the caller's thread (topic threads
 *    see only what was copied out of it), so it needs no locking;
 *  - a target costs only its id, token and magic (about 150 bytes), and
 *    in flight memory is bounded per topic by max_streams;
 *  - an id APNs answered, or that is still to retry, gets its push result
 *    stored with mdm_state_enroll_push_result, at most
 *    MDM_PUSH_RECORD_CHUNK per transaction; a 410 or an invalid token
 *    marks the token dead, so later runs skip it until a TokenUpdate;
 *  - a topic APNs rejects (certificate or topic) stops at once; a server
 *    that cannot be reached is given up after apns' own reconnects.
 *
 * Like the rest of libmdm it never prints and never exits; it logs retry
 * rounds and a failed topic through log.c.
 */
#ifndef MDM_PUSH_H
#define MDM_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "state.h"
#include "state_queue.h"

#define MDM_PUSH_RETRY_ROUNDS	3	/* rounds after the first, for RETRY */
#define MDM_PUSH_RETRY_BASE_MS	1000	/* doubled each round, plus jitter */
#define MDM_PUSH_RECORD_CHUNK	1000	/* push results per transaction */
#define MDM_PUSH_WINDOW		8192	/* targets held at a time */
#define MDM_PUSH_HOST_MAX	256
#define MDM_PUSH_PORT_MAX	16

/* What one id came to; mdm_push_outcome_name gives the printed names. */
enum mdm_push_outcome {
	MDM_PUSH_OK,
	MDM_PUSH_TOKEN_DEAD,	/* stored: not pushed until a TokenUpdate */
	MDM_PUSH_REFUSED,	/* APNs said no for this push */
	MDM_PUSH_RETRY,		/* still failing after the retry rounds */
	MDM_PUSH_TOPIC_FAILED,	/* the topic's certificate or name refused */
	MDM_PUSH_UNKNOWN,	/* no such enrollment */
	MDM_PUSH_SKIPPED,	/* disabled, dead token, no token yet */
	MDM_PUSH_NO_PUSH_CERT,	/* no usable STATE/push/TOPIC.pem + .key */
	MDM_PUSH_NOUTCOMES
};

/*
 * One id's outcome: id, reason (APNs' reason, an error, or why it was
 * skipped; may be "") are borrowed for the call.  status is the HTTP
 * status, 0 when none.  Returns 0, or -1 with e set to stop the run.
 */
typedef int mdm_push_report_fn(void *arg, const char *id,
    enum mdm_push_outcome o, int status, const char *reason,
    struct mdm_err *e);

/* Pushes done so far of total; called on the caller's thread. */
typedef void mdm_push_progress_fn(void *arg, unsigned long long done,
    unsigned long long total);

struct mdm_push_config {
	const char *host;	/* NULL: MDM_APNS_HOST; an IP literal is fine */
	const char *port;	/* NULL: "443" */
	const char *ca_file;	/* NULL: the system trust store */
	int priority;		/* 10 or 5; 0 means 10 */
	int64_t expiration;	/* apns-expiration, unix seconds; 0 = once */
	unsigned max_streams;	/* per topic; 0: apns' default */
	mdm_push_report_fn *report;	/* required */
	mdm_push_progress_fn *progress;	/* optional, every 100 ms or so */
	void *arg;		/* for report and progress */
};

/* Per outcome counts and the facts the exit status rule needs. */
struct mdm_push_stats {
	size_t n[MDM_PUSH_NOUTCOMES];
	size_t topics_tried;	/* topics with an identity, pushed */
	size_t topics_unreachable;	/* of those, never reached APNs */
};

struct mdm_push;

/*
 * A run over st (borrowed: it must outlive *out).  cfg is copied, its
 * strings are borrowed.  *out owned: mdm_push_free.
 */
int mdm_push_new(struct mdm_state *st, const struct mdm_push_config *cfg,
    struct mdm_push **out, struct mdm_err *e);
/* p may be NULL. */
void mdm_push_free(struct mdm_push *p);

/*
 * Takes the enrollment key names (id, UDID or serial number) as a target,
 * or reports it at once as unknown or skipped; when that fills the
 * window, pushes the window (which blocks as mdm_push_run does).  Fails
 * on a state, memory or report error.
 */
int mdm_push_add(struct mdm_push *p, const char *key, struct mdm_err *e);
/*
 * The same for every enrollment passing f (NULL: all; its after_id and
 * limit are not looked at), a window at a time.
 */
int mdm_push_add_filter(struct mdm_push *p,
    const struct mdm_state_enroll_filter *f, struct mdm_err *e);

/*
 * Pushes the targets still held, then records and reports each, and
 * closes the connections.  Blocks until done (a full retry sequence takes
 * about 7 s plus jitter, per window).  Call it once, after the adds.
 * Returns -1 on a state or system error or when report failed; the
 * targets already reported stay reported.
 */
int mdm_push_run(struct mdm_push *p, struct mdm_err *e);

/* Counts of what was reported so far; borrowed, lives as long as p. */
const struct mdm_push_stats *mdm_push_stats(const struct mdm_push *p);

/*
 * The exit status the tools use (cli.h's MDM_EX_*): 69 when every topic
 * tried could not reach APNs, else 75 when some push is still to retry,
 * else 1 when some id was refused, dead, unknown or has no push
 * certificate (skipped ones do not count), else 0.
 */
int mdm_push_exit_status(const struct mdm_push_stats *s);

/* "ok", "token-dead", "refused", "retry", "topic-failed", "unknown",
   "skipped", "no-push-cert"; static. */
const char *mdm_push_outcome_name(enum mdm_push_outcome o);

/*
 * Splits an --apns-url, https://host[:port][/] (host a name, an IPv4 or a
 * [IPv6] literal; port 443 when absent), into host and port.  -1 with e
 * set (MDM_E_USAGE) when it is not such a URL or does not fit.
 */
int mdm_push_parse_url(const char *url, char *host, size_t hostlen,
    char *port, size_t portlen, struct mdm_err *e);

/*
 * The APNs server the flags --apns-url url (NULL: not given) and
 * --sandbox name, into host and port: url's, else the sandbox's or
 * production's on 443.  -1 with e set (MDM_E_USAGE, the message naming
 * the flag) when url is bad or given with sandbox.
 */
int mdm_push_server(const char *url, int sandbox, char *host, size_t hostlen,
    char *port, size_t portlen, struct mdm_err *e);

#endif
