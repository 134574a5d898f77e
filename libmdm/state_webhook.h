/*
 * state_webhook: the webhook outbox in mdm.db (migration
 * 0004_webhook.sql) and the delivery loop that drains it.  mdm-serve adds
 * an event in the same request that caused it and a delivery thread (with
 * its own struct mdm_state) calls mdm_webhook_deliver_due; other tools
 * inspect and purge.  webhook.h builds and POSTs the events.
 *
 * Invariants:
 *  - An event is written before anything tries to send it, and stays
 *    until it is delivered (any 2xx) or given up ("dead": after
 *    max_attempts failed attempts, or a failure when older than
 *    max_age_ms), and after that until retention purges it.  Delivery is
 *    at least once: a process that dies between the POST and recording
 *    it sends the event again later; receivers drop duplicates by
 *    event_id.
 *  - Order: events are offered oldest first, and an event waits while
 *    an older one with the same ordering key (the device channel's
 *    enrollment id) is neither delivered nor dead.
 *  - A claim leases its events (claimed_until, claimed_by) in one
 *    BEGIN IMMEDIATE transaction; no other claim takes them before the
 *    lease runs out, so processes sharing a state directory never send
 *    one event at once.  No transaction is open while a POST runs.
 *  - Every write is one short transaction; purge deletes in batches of
 *    MDM_STATE_WEBHOOK_CHUNK rows.
 *
 * Times are unix milliseconds (mdm_webhook_now_ms), passed in as `now`
 * so callers (and tests) decide what time it is; a `now` before 2001
 * (as unix seconds would read) is MDM_E_USAGE.  Busy past the timeout
 * is MDM_E_TEMPFAIL, as in state.h.
 */
#ifndef MDM_STATE_WEBHOOK_H
#define MDM_STATE_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "state.h"
#include "webhook.h"

#define MDM_STATE_WEBHOOK_CHUNK		5000	/* rows per purge transaction */
#define MDM_STATE_WEBHOOK_KEEP_DELIVERED (7 * 86400 * INT64_C(1000))
#define MDM_STATE_WEBHOOK_KEEP_DEAD	(30 * 86400 * INT64_C(1000))

/*
 * Adds one event: topic and event_id as in the JSON body (which is stored
 * and later POSTed byte for byte), okey its ordering key (may be "").
 * *id (may be NULL) gets its row id.  MDM_E_USAGE for an empty or
 * malformed topic or event_id or a body over MDM_WEBHOOK_BODY_MAX.
 */
int mdm_state_webhook_add(struct mdm_state *st, const char *topic,
    const char *event_id, const char *okey, const void *body, size_t len,
    int64_t now, int64_t *id, struct mdm_err *e);

/*
 * Builds ev's JSON (mdm_webhook_event_json) and adds it, ordered by the
 * device channel of ev->ident.  ev->event_id NULL: a new UUID;
 * created_at_ns 0: now (ms) as nanoseconds.
 */
int mdm_state_webhook_add_event(struct mdm_state *st,
    const struct mdm_webhook_event *ev, int64_t now, int64_t *id,
    struct mdm_err *e);

/* One leased event. */
struct mdm_state_webhook_claim {
	int64_t id;
	int64_t attempts;	/* failed attempts before this one */
	int64_t created_at;
	char topic[MDM_WEBHOOK_TOPIC_MAX + 1];
	char *okey;		/* owned */
	struct mdm_buf body;	/* owned */
};

struct mdm_state_webhook_batch {
	struct mdm_state_webhook_claim *ev;	/* owned, oldest first */
	size_t n;
};

/* Frees what b owns and zeroes it.  b may be NULL or zeroed. */
void mdm_state_webhook_batch_release(struct mdm_state_webhook_batch *b);

/*
 * Leases up to max due events (next_attempt_at <= now, no live lease,
 * no older pending event of their ordering key that is not itself due
 * and free) to owner until now + lease_ms, oldest first, into out
 * (release it, even on failure).  An empty batch is not an error and
 * holds no memory.
 */
int mdm_state_webhook_claim(struct mdm_state *st, const char *owner,
    int64_t now, int64_t lease_ms, size_t max,
    struct mdm_state_webhook_batch *out, struct mdm_err *e);

/*
 * Records that event id was delivered (HTTP status) at now and drops its
 * lease, whoever holds it: the receiver has it either way.  An event
 * already delivered is left as is.
 */
int mdm_state_webhook_delivered(struct mdm_state *st, int64_t id,
    int status, int64_t now, struct mdm_err *e);

/*
 * Records a failed attempt of an event owner leased: attempts + 1,
 * last_status (0: no answer) and last_error (may be NULL), next attempt
 * after mdm_webhook_backoff_ms; and gives it up (*dead = 1, may be NULL)
 * when that makes max_attempts (<= 0: the default) or it is older than
 * max_age_ms (<= 0: the default).  A lease owner no longer holds, or an
 * event already delivered or dead, is left as is (*dead = 0).
 */
int mdm_state_webhook_failed(struct mdm_state *st, int64_t id,
    const char *owner, int status, const char *error, int64_t now,
    int max_attempts, int64_t max_age_ms, int *dead, struct mdm_err *e);

/*
 * Drops owner's leases on the n events ids (one transaction) without
 * counting an attempt: they are due again at once.
 */
int mdm_state_webhook_release(struct mdm_state *st, const int64_t *ids,
    size_t n, const char *owner, struct mdm_err *e);

/*
 * When the next pending event that no older sibling holds back is due,
 * or its lease runs out if later (*at = 0: nothing pending), so a
 * delivery loop knows how long it may sleep when no new event wakes it.
 */
int mdm_state_webhook_next_due(struct mdm_state *st, int64_t *at,
    struct mdm_err *e);

enum {
	MDM_STATE_WEBHOOK_PENDING = 1 << 0,	/* neither delivered nor dead */
	MDM_STATE_WEBHOOK_DELIVERED = 1 << 1,
	MDM_STATE_WEBHOOK_DEAD = 1 << 2,
};

/* A row for inspection; pointers borrowed for the callback only. */
struct mdm_state_webhook_row {
	int64_t id;
	const char *topic, *event_id, *okey;
	const unsigned char *body;
	size_t body_len;
	int64_t created_at, attempts, next_attempt_at;
	int64_t claimed_until;		/* 0: not leased */
	const char *claimed_by;		/* NULL: never leased */
	int last_status;		/* -1: no attempt yet; 0: no answer */
	const char *last_error;		/* NULL: none */
	int64_t delivered_at, dead_at;	/* 0: not (yet) */
};

/*
 * Calls fn for each event whose state is in which (MDM_STATE_WEBHOOK_*
 * bits; 0: all), oldest first.  fn returns 0 to go on, or -1 with e
 * filled to stop; foreach then returns -1 with fn's error.  fn must not
 * use st.
 */
int mdm_state_webhook_foreach(struct mdm_state *st, unsigned which,
    int (*fn)(const struct mdm_state_webhook_row *row, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e);

struct mdm_state_webhook_counts {
	int64_t pending, delivered, dead;
	int64_t oldest_pending;	/* created_at of the first written; 0: none */
};
int mdm_state_webhook_counts(struct mdm_state *st,
    struct mdm_state_webhook_counts *out, struct mdm_err *e);

/*
 * Deletes events delivered more than keep_delivered_ms before now and
 * dead more than keep_dead_ms before now (< 0: the defaults above);
 * *n (may be NULL) says how many.  Pending events are never purged.
 */
int mdm_state_webhook_purge(struct mdm_state *st, int64_t now,
    int64_t keep_delivered_ms, int64_t keep_dead_ms, int64_t *n,
    struct mdm_err *e);

/* What one round of delivery did. */
struct mdm_webhook_stats {
	int attempted, delivered, failed, dead;
	int stopped;			/* the round ended at a failure to
					   reach the receiver */
	int last_status;		/* of the last failed attempt */
	char last_error[MDM_ERR_MSG_MAX]; /* "" when nothing failed */
};

/*
 * One round of the delivery loop: claims up to cfg->batch due events,
 * POSTs each (no transaction open meanwhile) and records the outcome.
 * The round stops at the first failure that says the receiver is down
 * or overloaded (no answer, 429, 502, 503, 504), handing the rest back
 * untried, so a dead receiver gets one request per round.  Within the
 * round, an event whose older sibling (same ordering key) failed is
 * handed back untried too.  Other statuses count against that event
 * alone.  Returns the number of POSTs made (0: nothing was due; sleep),
 * or -1 when the database fails; stats (may be NULL) says what
 * happened.  now is the time the round counts as; a lease lasts the
 * batch's worst case (batch * timeout) plus a minute.  After a round
 * with stats->stopped the caller should wait (mdm_state_webhook_next_due
 * or a few seconds, whichever is sooner) before the next round: the
 * next event would be tried at once otherwise.
 */
int mdm_webhook_deliver_due(struct mdm_state *st,
    const struct mdm_webhook_config *cfg, int64_t now,
    struct mdm_webhook_stats *stats, struct mdm_err *e);

#endif
