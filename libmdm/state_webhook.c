#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "buf.h"
#include "queue.h"
#include "state.h"
#include "state_int.h"
#include "state_webhook.h"
#include "webhook.h"
#include "mdm_int.h"

#define OWNER_MAX	128
#define OKEY_MAX	511
/* Up to this many due events, a claim reads them through their index. */
#define FEW_DUE		1000
/* What one claim holds in memory at most (it always takes one event). */
#define BATCH_BYTES_MAX	(64u << 20)

#define STR(x) #x
#define XSTR(x) STR(x)
#define CHUNK_S XSTR(MDM_STATE_WEBHOOK_CHUNK)

#define PENDING_SQL "delivered_at IS NULL AND dead_at IS NULL"

static int
dberr(struct mdm_state *st, int rc, struct mdm_err *e, const char *what)
{
	return mdm_state_db_err(st, rc, e, "%s/mdm.db: %s", mdm_state_dir(st),
	    what);
}

static const char *
col_text(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

static void
bind_opt_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

/* Steps a statement that returns no rows, in its own transaction. */
static int
run_one(struct mdm_state *st, sqlite3_stmt *s, const char *what,
    struct mdm_err *e)
{
	int rc;

	if (mdm_state_begin(st, e) == -1)
		return -1;
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		dberr(st, rc, e, what);
		mdm_state_rollback(st);
		return -1;
	}
	if (mdm_state_commit(st, e) == -1) {
		mdm_state_rollback(st);
		return -1;
	}
	return 0;
}

static int
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~')
			return 0;
	return 1;
}

/*
 * A unix time in seconds read as milliseconds is in January 1970: catch
 * a caller that passed time(NULL).
 */
static int
check_now(int64_t now, struct mdm_err *e)
{
	if (now < INT64_C(1000000000000))
		return mdm_err_set(e, MDM_E_USAGE, "webhook: now (%lld) is "
		    "not in unix milliseconds", (long long)now);
	return 0;
}

static int
check_owner(const char *owner, struct mdm_err *e)
{
	if (owner == NULL || *owner == '\0' || strlen(owner) > OWNER_MAX)
		return mdm_err_set(e, MDM_E_USAGE, "webhook: a lease owner is "
		    "1 to %d characters", OWNER_MAX);
	return 0;
}

int
mdm_state_webhook_add(struct mdm_state *st, const char *topic,
    const char *event_id, const char *okey, const void *body, size_t len,
    int64_t now, int64_t *id, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	size_t tl;
	int ret = -1;

	if (check_now(now, e) == -1)
		return -1;
	if (okey == NULL)
		okey = "";
	tl = topic ? strlen(topic) : 0;
	if (tl < 5 || tl > MDM_WEBHOOK_TOPIC_MAX ||
	    strncmp(topic, "mdm.", 4) != 0 || !printable(topic))
		return mdm_err_set(e, MDM_E_USAGE, "webhook: bad topic");
	if (event_id == NULL || *event_id == '\0' ||
	    strlen(event_id) > MDM_WEBHOOK_EVENT_ID_MAX || !printable(event_id))
		return mdm_err_set(e, MDM_E_USAGE, "webhook: bad event_id");
	if (strlen(okey) > OKEY_MAX)
		return mdm_err_set(e, MDM_E_USAGE, "webhook: ordering key "
		    "too long");
	if (body == NULL || len > MDM_WEBHOOK_BODY_MAX)
		return mdm_err_set(e, len > MDM_WEBHOOK_BODY_MAX ?
		    MDM_E_TOOBIG : MDM_E_USAGE, "webhook: %s",
		    body == NULL ? "no body" : "event too large");
	if (mdm_state_prepare(st, "INSERT INTO webhook_outbox (topic, "
	    "event_id, okey, body, created_at, next_attempt_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?5)", &s, e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, topic, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, event_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, okey, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(s, 4, body, len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, now);
	if (run_one(st, s, "webhook outbox", e) == -1)
		goto out;
	if (id != NULL)
		*id = sqlite3_last_insert_rowid(mdm_state_db(st));
	ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

int
mdm_state_webhook_add_event(struct mdm_state *st,
    const struct mdm_webhook_event *ev, int64_t now, int64_t *id,
    struct mdm_err *e)
{
	struct mdm_webhook_event copy = *ev;
	struct mdm_buf body;
	const char *okey;
	char uuid[37];
	int ret = -1;

	mdm_buf_init(&body, MDM_WEBHOOK_BODY_MAX);
	if (check_now(now, e) == -1)
		goto out;
	if (copy.event_id == NULL) {
		if (mdm_queue_uuid_new(uuid, e) == -1)
			goto out;
		copy.event_id = uuid;
	}
	if (copy.created_at_ns == 0)
		copy.created_at_ns = now * 1000000;
	if (mdm_webhook_event_json(&copy, &body, e) == -1)
		goto out;
	okey = ev->ident->device_id[0] != '\0' ? ev->ident->device_id :
	    ev->ident->id;
	ret = mdm_state_webhook_add(st, copy.topic, copy.event_id, okey,
	    body.data, body.len, now, id, e);
out:
	mdm_buf_release(&body);
	return ret;
}

void
mdm_state_webhook_batch_release(struct mdm_state_webhook_batch *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++) {
		free(b->ev[i].okey);
		mdm_buf_release(&b->ev[i].body);
	}
	free(b->ev);
	memset(b, 0, sizeof(*b));
}

/* Copies the current row of the claim query into c. */
static int
take_row(sqlite3_stmt *s, struct mdm_state_webhook_claim *c,
    struct mdm_err *e)
{
	const void *body = sqlite3_column_blob(s, 5);
	size_t len = (size_t)sqlite3_column_bytes(s, 5);

	memset(c, 0, sizeof(*c));
	mdm_buf_init(&c->body, MDM_WEBHOOK_BODY_MAX);
	c->id = sqlite3_column_int64(s, 0);
	c->attempts = sqlite3_column_int64(s, 1);
	c->created_at = sqlite3_column_int64(s, 2);
	snprintf(c->topic, sizeof(c->topic), "%s", col_text(s, 3));
	if ((c->okey = strdup(col_text(s, 4))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "webhook: out of memory");
	/* An empty blob reads as NULL. */
	if (len > 0 && mdm_buf_append(&c->body, body, len, e) == -1)
		return -1;
	return 0;
}

int
mdm_state_webhook_claim(struct mdm_state *st, const char *owner,
    int64_t now, int64_t lease_ms, size_t max,
    struct mdm_state_webhook_batch *out, struct mdm_err *e)
{
	sqlite3_stmt *cnt = NULL, *sel = NULL, *upd = NULL;
	struct mdm_state_webhook_claim *c;
	char sql[768];
	int64_t due;
	size_t bytes = 0, i;
	int rc, ret = -1;

	memset(out, 0, sizeof(*out));
	if (check_owner(owner, e) == -1 || check_now(now, e) == -1)
		return -1;
	if (max == 0)
		return 0;
	if (lease_ms <= 0)
		return mdm_err_set(e, MDM_E_USAGE, "webhook: lease must be "
		    "positive");
	if ((out->ev = calloc(max, sizeof(*out->ev))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "webhook: out of memory");
	if (mdm_state_prepare(st, "SELECT count(*) FROM (SELECT 1 "
	    "FROM webhook_outbox INDEXED BY webhook_outbox_due "
	    "WHERE " PENDING_SQL " AND next_attempt_at <= ?1 "
	    "LIMIT " XSTR(FEW_DUE) ")", &cnt, e) == -1 ||
	    mdm_state_prepare(st, "UPDATE webhook_outbox SET "
	    "claimed_until = ?2, claimed_by = ?3 WHERE id = ?1", &upd,
	    e) == -1 || mdm_state_begin(st, e) == -1)
		goto fail;
	sqlite3_bind_int64(cnt, 1, now);
	if ((rc = sqlite3_step(cnt)) != SQLITE_ROW) {
		dberr(st, rc, e, "webhook outbox");
		goto fail;
	}
	if ((due = sqlite3_column_int64(cnt, 0)) == 0)
		goto done;
	/*
	 * A backlog that is mostly not due (a receiver down for hours) is
	 * best read through the due index, a backlog that is mostly due
	 * (the receiver came back) in id order, stopping at the batch.
	 * An older pending event of the same key blocks a row unless it is
	 * itself due and free: then it comes first in this very claim.
	 */
	snprintf(sql, sizeof(sql), "SELECT id, attempts, created_at, topic, "
	    "okey, body FROM webhook_outbox AS w %s "
	    "WHERE " PENDING_SQL " AND next_attempt_at <= ?1 "
	    "AND claimed_until <= ?1 AND NOT EXISTS (SELECT 1 "
	    "FROM webhook_outbox AS o "
	    "WHERE o.okey = w.okey AND o.id < w.id "
	    "AND o.delivered_at IS NULL AND o.dead_at IS NULL "
	    "AND (o.next_attempt_at > ?1 OR o.claimed_until > ?1)) "
	    "ORDER BY id LIMIT ?2", due < FEW_DUE ?
	    "INDEXED BY webhook_outbox_due" : "NOT INDEXED");
	if (mdm_state_prepare(st, sql, &sel, e) == -1)
		goto fail;
	sqlite3_bind_int64(sel, 1, now);
	sqlite3_bind_int64(sel, 2, (sqlite3_int64)max);
	sqlite3_bind_int64(upd, 2, now + lease_ms);
	sqlite3_bind_text(upd, 3, owner, -1, SQLITE_STATIC);
	while (out->n < max && bytes < BATCH_BYTES_MAX) {
		if ((rc = sqlite3_step(sel)) == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			dberr(st, rc, e, "webhook outbox");
			goto fail;
		}
		c = &out->ev[out->n++];
		if (take_row(sel, c, e) == -1)
			goto fail;
		bytes += c->body.len;
	}
	/*
	 * Lease only once the query is done: it would see its own leases
	 * and hold back the younger siblings it is about to return.
	 */
	sqlite3_reset(sel);
	for (i = 0; i < out->n; i++) {
		sqlite3_bind_int64(upd, 1, out->ev[i].id);
		rc = sqlite3_step(upd);
		sqlite3_reset(upd);
		if (rc != SQLITE_DONE) {
			dberr(st, rc, e, "webhook outbox");
			goto fail;
		}
	}
done:
	sqlite3_reset(cnt);
	if (mdm_state_commit(st, e) == -1)
		goto fail;
	if (out->n == 0)
		mdm_state_webhook_batch_release(out);	/* holds no memory */
	ret = 0;
	goto out;
fail:
	sqlite3_reset(cnt);
	sqlite3_reset(sel);
	mdm_state_rollback(st);
	mdm_state_webhook_batch_release(out);
out:
	sqlite3_finalize(cnt);
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return ret;
}

int
mdm_state_webhook_delivered(struct mdm_state *st, int64_t id, int status,
    int64_t now, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int ret;

	if (mdm_state_prepare(st, "UPDATE webhook_outbox SET "
	    "delivered_at = ?2, dead_at = NULL, attempts = attempts + 1, "
	    "last_status = ?3, last_error = NULL, claimed_until = 0, "
	    "claimed_by = NULL WHERE id = ?1 AND delivered_at IS NULL", &s,
	    e) == -1)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int(s, 3, status);
	ret = run_one(st, s, "webhook outbox", e);
	sqlite3_finalize(s);
	return ret;
}

int
mdm_state_webhook_failed(struct mdm_state *st, int64_t id, const char *owner,
    int status, const char *error, int64_t now, int max_attempts,
    int64_t max_age_ms, int *dead, struct mdm_err *e)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	int64_t attempts, created;
	int rc, gone = 0, ret = -1;

	if (dead == NULL)
		dead = &gone;
	*dead = 0;
	if (check_owner(owner, e) == -1 || check_now(now, e) == -1)
		return -1;
	if (status != 0 && (status < 100 || status > 599))
		return mdm_err_set(e, MDM_E_USAGE, "webhook: bad HTTP status "
		    "%d", status);
	if (max_attempts <= 0)
		max_attempts = MDM_WEBHOOK_DEFAULT_MAX_ATTEMPTS;
	if (max_age_ms <= 0)
		max_age_ms = MDM_WEBHOOK_DEFAULT_MAX_AGE_MS;
	if (mdm_state_prepare(st, "SELECT attempts, created_at "
	    "FROM webhook_outbox WHERE id = ?1 AND claimed_by = ?2 "
	    "AND " PENDING_SQL, &sel, e) == -1 ||
	    mdm_state_prepare(st, "UPDATE webhook_outbox SET "
	    "attempts = ?2, last_status = ?3, last_error = ?4, "
	    "next_attempt_at = ?5, dead_at = ?6, claimed_until = 0, "
	    "claimed_by = NULL WHERE id = ?1", &upd, e) == -1)
		goto out;
	if (mdm_state_begin(st, e) == -1)
		goto out;
	sqlite3_bind_int64(sel, 1, id);
	sqlite3_bind_text(sel, 2, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(sel);
	if (rc == SQLITE_ROW) {
		attempts = sqlite3_column_int64(sel, 0) + 1;
		created = sqlite3_column_int64(sel, 1);
		*dead = attempts >= max_attempts || now - created > max_age_ms;
		sqlite3_bind_int64(upd, 1, id);
		sqlite3_bind_int64(upd, 2, attempts);
		sqlite3_bind_int(upd, 3, status);
		bind_opt_text(upd, 4, error);
		sqlite3_bind_int64(upd, 5, now +
		    mdm_webhook_backoff_ms(attempts));
		if (*dead)
			sqlite3_bind_int64(upd, 6, now);
		else
			sqlite3_bind_null(upd, 6);
		rc = sqlite3_step(upd);
	}
	sqlite3_reset(sel);
	if (rc != SQLITE_DONE) {
		dberr(st, rc, e, "webhook outbox");
		*dead = 0;
		mdm_state_rollback(st);
		goto out;
	}
	if (mdm_state_commit(st, e) == -1) {
		*dead = 0;
		mdm_state_rollback(st);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return ret;
}

static int64_t
col_int_or(sqlite3_stmt *s, int i, int64_t dflt)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return dflt;
	return sqlite3_column_int64(s, i);
}

static int
count(struct mdm_state *st, const char *sql, int64_t *n, int64_t *min,
    struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (mdm_state_prepare(st, sql, &s, e) == -1)
		return -1;
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		dberr(st, rc, e, "webhook outbox");
		sqlite3_finalize(s);
		return -1;
	}
	*n = sqlite3_column_int64(s, 0);
	if (min != NULL)
		*min = col_int_or(s, 1, 0);
	sqlite3_finalize(s);
	return 0;
}

int
mdm_state_webhook_release(struct mdm_state *st, const int64_t *ids, size_t n,
    const char *owner, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc, ret = -1;

	if (check_owner(owner, e) == -1)
		return -1;
	if (n == 0)
		return 0;
	if (mdm_state_prepare(st, "UPDATE webhook_outbox SET "
	    "claimed_until = 0, claimed_by = NULL "
	    "WHERE id = ?1 AND claimed_by = ?2", &s, e) == -1)
		return -1;
	if (mdm_state_begin(st, e) == -1)
		goto out;
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(s, 1, ids[i]);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_DONE) {
			dberr(st, rc, e, "webhook outbox");
			mdm_state_rollback(st);
			goto out;
		}
	}
	if (mdm_state_commit(st, e) == -1) {
		mdm_state_rollback(st);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

int
mdm_state_webhook_next_due(struct mdm_state *st, int64_t *at,
    struct mdm_err *e)
{
	int64_t n;

	/*
	 * The oldest pending event of each key: a waiting sibling's
	 * next_attempt_at is stale.  Read from the okey index alone.
	 */
	return count(st, "SELECT count(*), min(max(w.next_attempt_at, "
	    "w.claimed_until)) FROM (SELECT min(id) AS id FROM webhook_outbox "
	    "WHERE " PENDING_SQL " GROUP BY okey) AS h "
	    "JOIN webhook_outbox AS w ON w.id = h.id", &n, at, e);
}

int
mdm_state_webhook_foreach(struct mdm_state *st, unsigned which,
    int (*fn)(const struct mdm_state_webhook_row *row, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e)
{
	struct mdm_state_webhook_row r;
	sqlite3_stmt *s = NULL;
	char sql[512], cond[160];
	int rc, ret = -1;

	if (which & ~(unsigned)(MDM_STATE_WEBHOOK_PENDING |
	    MDM_STATE_WEBHOOK_DELIVERED | MDM_STATE_WEBHOOK_DEAD))
		return mdm_err_set(e, MDM_E_USAGE, "webhook: unknown states");
	if (which == 0)
		which = MDM_STATE_WEBHOOK_PENDING | MDM_STATE_WEBHOOK_DELIVERED |
		    MDM_STATE_WEBHOOK_DEAD;
	snprintf(cond, sizeof(cond), "%s OR %s OR %s",
	    which & MDM_STATE_WEBHOOK_PENDING ? "(" PENDING_SQL ")" : "0",
	    which & MDM_STATE_WEBHOOK_DELIVERED ? "delivered_at IS NOT NULL" :
	    "0", which & MDM_STATE_WEBHOOK_DEAD ? "dead_at IS NOT NULL" : "0");
	snprintf(sql, sizeof(sql), "SELECT id, topic, event_id, okey, body, "
	    "created_at, attempts, next_attempt_at, claimed_until, claimed_by, "
	    "last_status, last_error, delivered_at, dead_at "
	    "FROM webhook_outbox WHERE %s ORDER BY id", cond);
	if (mdm_state_prepare(st, sql, &s, e) == -1)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		r.id = sqlite3_column_int64(s, 0);
		r.topic = col_text(s, 1);
		r.event_id = col_text(s, 2);
		r.okey = col_text(s, 3);
		r.body = sqlite3_column_blob(s, 4);
		r.body_len = (size_t)sqlite3_column_bytes(s, 4);
		r.created_at = sqlite3_column_int64(s, 5);
		r.attempts = sqlite3_column_int64(s, 6);
		r.next_attempt_at = sqlite3_column_int64(s, 7);
		r.claimed_until = sqlite3_column_int64(s, 8);
		r.claimed_by = col_text(s, 9);
		r.last_status = (int)col_int_or(s, 10, -1);
		r.last_error = col_text(s, 11);
		r.delivered_at = col_int_or(s, 12, 0);
		r.dead_at = col_int_or(s, 13, 0);
		if (fn(&r, arg, e) == -1)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		dberr(st, rc, e, "webhook outbox");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

int
mdm_state_webhook_counts(struct mdm_state *st,
    struct mdm_state_webhook_counts *out, struct mdm_err *e)
{
	memset(out, 0, sizeof(*out));
	/* The oldest is the lowest id: min(created_at) would read every row. */
	if (count(st, "SELECT p.n, (SELECT created_at FROM webhook_outbox "
	    "WHERE id = p.m) FROM (SELECT count(*) AS n, min(id) AS m "
	    "FROM webhook_outbox WHERE " PENDING_SQL ") AS p", &out->pending,
	    &out->oldest_pending, e) == -1 ||
	    count(st, "SELECT count(*) FROM webhook_outbox "
	    "WHERE delivered_at IS NOT NULL", &out->delivered, NULL, e) == -1 ||
	    count(st, "SELECT count(*) FROM webhook_outbox "
	    "WHERE dead_at IS NOT NULL", &out->dead, NULL, e) == -1)
		return -1;
	return 0;
}

/* Runs a DELETE of at most CHUNK rows until it deletes fewer. */
static int
purge_batched(struct mdm_state *st, const char *sql, int64_t cutoff,
    int64_t *n, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int changed, ret = -1;

	if (mdm_state_prepare(st, sql, &s, e) == -1)
		return -1;
	sqlite3_bind_int64(s, 1, cutoff);
	do {
		if (run_one(st, s, "webhook outbox", e) == -1)
			goto out;
		sqlite3_reset(s);
		changed = sqlite3_changes(mdm_state_db(st));
		*n += changed;
	} while (changed >= MDM_STATE_WEBHOOK_CHUNK);
	ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

int
mdm_state_webhook_purge(struct mdm_state *st, int64_t now,
    int64_t keep_delivered_ms, int64_t keep_dead_ms, int64_t *n,
    struct mdm_err *e)
{
	int64_t dummy = 0;

	if (n == NULL)
		n = &dummy;
	*n = 0;
	if (keep_delivered_ms < 0)
		keep_delivered_ms = MDM_STATE_WEBHOOK_KEEP_DELIVERED;
	if (keep_dead_ms < 0)
		keep_dead_ms = MDM_STATE_WEBHOOK_KEEP_DEAD;
	if (purge_batched(st, "DELETE FROM webhook_outbox WHERE id IN "
	    "(SELECT id FROM webhook_outbox WHERE delivered_at IS NOT NULL "
	    "AND delivered_at < ?1 LIMIT " CHUNK_S ")",
	    now - keep_delivered_ms, n, e) == -1 ||
	    purge_batched(st, "DELETE FROM webhook_outbox WHERE id IN "
	    "(SELECT id FROM webhook_outbox WHERE dead_at IS NOT NULL "
	    "AND dead_at < ?1 LIMIT " CHUNK_S ")", now - keep_dead_ms, n,
	    e) == -1)
		return -1;
	return 0;
}

/* The receiver is down or asks us to slow down: end the round. */
static int
receiver_down(int status)
{
	return status == 0 || status == 429 || (status >= 502 &&
	    status <= 504);
}

int
mdm_webhook_deliver_due(struct mdm_state *st,
    const struct mdm_webhook_config *cfg, int64_t now,
    struct mdm_webhook_stats *stats, struct mdm_err *e)
{
	struct mdm_webhook_stats dummy;
	struct mdm_state_webhook_batch b = { NULL, 0 };
	struct mdm_state_webhook_claim *c;
	struct mdm_webhook_client *cl = NULL;
	struct mdm_err pe;
	const char *owner = cfg->owner;
	char pidowner[32];
	char *failed_keys = NULL;	/* 1 where ev[i] was not delivered */
	int64_t *untried = NULL;
	size_t nuntried = 0;
	int64_t timeout, lease;
	size_t i, j, batch;
	int status, dead, skip, ret = -1;

	if (stats == NULL)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	if (owner == NULL) {
		snprintf(pidowner, sizeof(pidowner), "pid %ld", (long)getpid());
		owner = pidowner;
	}
	batch = cfg->batch > 0 ? (size_t)cfg->batch :
	    MDM_WEBHOOK_DEFAULT_BATCH;
	timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms :
	    MDM_WEBHOOK_DEFAULT_TIMEOUT_MS;
	lease = (int64_t)batch * timeout + 60000;
	if (check_now(now, e) == -1)
		return -1;
	if (mdm_webhook_client_new(cfg, &cl, e) == -1)
		return -1;
	if (mdm_state_webhook_claim(st, owner, now, lease, batch, &b, e) == -1)
		goto out;
	if (b.n > 0 && ((failed_keys = calloc(b.n, 1)) == NULL ||
	    (untried = calloc(b.n, sizeof(*untried))) == NULL)) {
		mdm_err_set(e, MDM_E_SOFTWARE, "webhook: out of memory");
		goto out;
	}
	for (i = 0; i < b.n; i++) {
		c = &b.ev[i];
		skip = stats->stopped;
		for (j = 0; j < i && !skip; j++)
			skip = failed_keys[j] && strcmp(b.ev[j].okey,
			    c->okey) == 0;
		if (skip) {
			/* An older sibling failed: it goes first, later. */
			failed_keys[i] = 1;
			untried[nuntried++] = c->id;
			continue;
		}
		mdm_err_clear(&pe);
		stats->attempted++;
		if (mdm_webhook_client_post(cl, c->body.data, c->body.len,
		    &status, &pe) == 0) {
			stats->delivered++;
			if (mdm_state_webhook_delivered(st, c->id, status, now,
			    e) == -1)
				goto out;
			continue;
		}
		failed_keys[i] = 1;
		stats->failed++;
		stats->last_status = status;
		snprintf(stats->last_error, sizeof(stats->last_error), "%s",
		    pe.msg);
		if (mdm_state_webhook_failed(st, c->id, owner, status, pe.msg,
		    now, cfg->max_attempts, cfg->max_age_ms, &dead, e) == -1)
			goto out;
		stats->dead += dead;
		if (receiver_down(status))
			stats->stopped = 1;
	}
	if (mdm_state_webhook_release(st, untried, nuntried, owner, e) == -1)
		goto out;
	ret = stats->attempted;
out:
	free(untried);
	free(failed_keys);
	mdm_state_webhook_batch_release(&b);
	mdm_webhook_client_free(cl);
	return ret;
}
