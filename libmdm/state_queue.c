#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "buf.h"
#include "queue.h"
#include "state.h"
#include "state_int.h"
#include "state_queue.h"
#include "mdm_int.h"

#define SHA256_LEN 32

/* Queue row statuses, in the order of their MDM_STATE_Q_* bits. */
static const char *const qstatus_names[] = {
	"pending", "acknowledged", "error", "format_error", "unparseable",
	"cancelled", "superseded",
};

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

/* An enrollment a push can wake (the filter's "enabled"). */
#define PUSHABLE \
	"e.enabled = 1 AND e.token_dead = 0 AND e.push_token IS NOT NULL"

static int
dberr(struct mdm_state *st, int rc, struct mdm_err *e, const char *what)
{
	return mdm_state_db_err(st, rc, e, "%s/mdm.db: %s", mdm_state_dir(st),
	    what);
}

static int
prep(struct mdm_state *st, const char *sql, sqlite3_stmt **out,
    struct mdm_err *e)
{
	return mdm_state_prepare(st, sql, out, e);
}

/* A statement run on every device request: kept prepared (state_int.h). */
static int
cprep(struct mdm_state *st, const char *sql, sqlite3_stmt **out,
    struct mdm_err *e)
{
	return mdm_state_stmt(st, sql, out, e);
}

static void
done(struct mdm_state *st, sqlite3_stmt *s)
{
	mdm_state_stmt_done(st, s);
}

/* Steps a statement that returns no rows, then resets it for reuse. */
static int
run(struct mdm_state *st, sqlite3_stmt *stmt, const char *what,
    struct mdm_err *e)
{
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return dberr(st, rc, e, what);
	return 0;
}

static void
bind_opt_text(sqlite3_stmt *stmt, int i, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, i);
}

static const char *
col_text(sqlite3_stmt *stmt, int i)
{
	return (const char *)sqlite3_column_text(stmt, i);
}

static int
is_hash(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' &&
		    s[i] <= 'f')))
			return 0;
	return i == 64;
}

static int
check_hash(const char *h, struct mdm_err *e)
{
	if (h == NULL || !is_hash(h))
		return mdm_err_set(e, MDM_E_USAGE, "a certificate hash is 64 "
		    "lowercase hex digits (SHA-256)");
	return 0;
}

static int
check_id(const char *id, struct mdm_err *e)
{
	if (id == NULL || *id == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "empty enrollment id");
	if (strlen(id) > MDM_QUEUE_ID_MAX)
		return mdm_err_set(e, MDM_E_NOINPUT, "%.64s...: no such "
		    "enrollment", id);
	return 0;
}

/* ---- resolving enrollment keys ---- */

struct resolver {
	sqlite3_stmt *by_id, *by_udid, *by_serial;
};

static void
resolver_release(struct mdm_state *st, struct resolver *r)
{
	done(st, r->by_id);
	done(st, r->by_udid);
	done(st, r->by_serial);
	memset(r, 0, sizeof(*r));
}

static int
resolver_init(struct mdm_state *st, struct resolver *r, struct mdm_err *e)
{
	memset(r, 0, sizeof(*r));
	if (cprep(st, "SELECT eid, id, enabled FROM enrollments "
	    "WHERE id = ?1", &r->by_id, e) == -1 ||
	    cprep(st, "SELECT eid, id, enabled FROM enrollments "
	    "WHERE udid = ?1 COLLATE NOCASE AND type = 'device' "
	    "ORDER BY enabled DESC, updated_at DESC LIMIT 1",
	    &r->by_udid, e) == -1 ||
	    cprep(st, "SELECT eid, id, enabled FROM enrollments "
	    "WHERE serial_number = ?1 COLLATE NOCASE AND type = 'device' "
	    "ORDER BY enabled DESC, updated_at DESC LIMIT 2",
	    &r->by_serial, e) == -1) {
		resolver_release(st, r);
		return -1;
	}
	return 0;
}

struct resolved {
	int64_t eid;
	int enabled;
	char id[MDM_QUEUE_ID_MAX + 1];
};

/*
 * Returns 1 and fills out when key names one enrollment, 0 when it names
 * none (*ambiguous set when a serial names several), -1 on error.
 */
static int
resolve(struct mdm_state *st, struct resolver *r, const char *key,
    struct resolved *out, int *ambiguous, struct mdm_err *e)
{
	sqlite3_stmt *stmts[3] = { r->by_id, r->by_udid, r->by_serial };
	sqlite3_stmt *s;
	int rc, i, found = 0, enabled2;

	*ambiguous = 0;
	if (key == NULL || *key == '\0' || strlen(key) > MDM_QUEUE_ID_MAX)
		return 0;
	for (i = 0; i < 3 && !found; i++) {
		s = stmts[i];
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			out->eid = sqlite3_column_int64(s, 0);
			snprintf(out->id, sizeof(out->id), "%s",
			    col_text(s, 1));
			out->enabled = sqlite3_column_int(s, 2);
			found = 1;
			if (s == r->by_serial &&
			    (rc = sqlite3_step(s)) == SQLITE_ROW) {
				/* Two devices share the serial: take the one
				   enabled one, else refuse to guess. */
				enabled2 = sqlite3_column_int(s, 2);
				if (!out->enabled || enabled2) {
					found = 0;
					*ambiguous = 1;
				}
			}
		}
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return dberr(st, rc, e, "enrollments");
		if (*ambiguous)
			return 0;
	}
	return found;
}

/* resolve() for one key, with the errors the header promises. */
static int
resolve_one(struct mdm_state *st, const char *key, struct resolved *out,
    struct mdm_err *e)
{
	struct resolver r;
	int amb = 0, rc;

	if (check_id(key, e) == -1)
		return -1;
	if (resolver_init(st, &r, e) == -1)
		return -1;
	rc = resolve(st, &r, key, out, &amb, e);
	resolver_release(st, &r);
	if (rc == -1)
		return -1;
	if (amb)
		return mdm_err_set(e, MDM_E_DATA, "%s: serial number of "
		    "several enrollments; name one by its enrollment id", key);
	if (rc == 0)
		return mdm_err_set(e, MDM_E_NOINPUT, "%s: no such enrollment",
		    key);
	return 0;
}

/* The eid of exactly this enrollment id: 1 found, 0 not, -1 error. */
static int
eid_of(struct mdm_state *st, const char *id, int64_t *eid, int64_t *last_seen,
    struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = -1;

	if (cprep(st, "SELECT eid, coalesce(last_seen_at, 0) FROM enrollments "
	    "WHERE id = ?", &s, e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*eid = sqlite3_column_int64(s, 0);
		if (last_seen != NULL)
			*last_seen = sqlite3_column_int64(s, 1);
		ret = 1;
	} else if (rc == SQLITE_DONE)
		ret = 0;
	else
		dberr(st, rc, e, "enrollments");
	done(st, s);
	return ret;
}

/* ---- enrollments ---- */

/* Pending rows of id and of every channel riding on it become cancelled. */
static const char cancel_channels_sql[] =
    "UPDATE queue SET status = 'cancelled', offered = 0, updated_at = ?2 "
    "WHERE status = 'pending' AND enrollment IN "
    "(SELECT eid FROM enrollments WHERE id = ?1 OR device_id = ?1)";

static int
exec_id_time(struct mdm_state *st, const char *sql, const char *id,
    int64_t t, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (cprep(st, sql, &s, e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, t);
	rc = run(st, s, "enrollments", e);
	done(st, s);
	return rc;
}

/* The enrollment other than id that holds hash: 1 (name in other), 0, -1. */
static int
hash_holder(struct mdm_state *st, const char *hash, const char *id,
    char *other, size_t otherlen, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = -1;

	if (cprep(st, "SELECT id FROM enrollments WHERE cert_hash = ?1 "
	    "AND id <> ?2", &s, e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (other != NULL)
			snprintf(other, otherlen, "%s", col_text(s, 0));
		ret = 1;
	} else if (rc == SQLITE_DONE)
		ret = 0;
	else
		dberr(st, rc, e, "enrollments");
	done(st, s);
	return ret;
}

int
mdm_state_enroll_authenticate(struct mdm_state *st,
    const struct mdm_queue_checkin *m, const char *cert_hash,
    struct mdm_err *e)
{
	static const char sql[] =
	    "INSERT INTO enrollments (id, type, udid, serial_number, "
	    "os_version, build_version, product_name, device_name, model, "
	    "topic, cert_hash, enabled, token_update_tally, created_at, "
	    "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
	    "0, 0, ?12, ?12) "
	    "ON CONFLICT (id) DO UPDATE SET type = excluded.type, "
	    "udid = excluded.udid, "
	    "serial_number = coalesce(excluded.serial_number, serial_number), "
	    "os_version = coalesce(excluded.os_version, os_version), "
	    "build_version = coalesce(excluded.build_version, build_version), "
	    "product_name = coalesce(excluded.product_name, product_name), "
	    "device_name = coalesce(excluded.device_name, device_name), "
	    "model = coalesce(excluded.model, model), "
	    "topic = excluded.topic, "
	    "cert_hash = coalesce(excluded.cert_hash, cert_hash), "
	    "enabled = 0, token_update_tally = 0, "
	    "updated_at = excluded.updated_at";
	sqlite3_stmt *s = NULL;
	char other[MDM_QUEUE_ID_MAX + 1];
	const char *id = m->ident.id;
	int64_t t = now_s();
	int held, rc = -1;

	if (m->type != MDM_QUEUE_AUTHENTICATE ||
	    !mdm_queue_enroll_type_is_device(m->ident.type) || *id == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "not an Authenticate on a "
		    "device channel");
	if (cert_hash != NULL && check_hash(cert_hash, e) == -1)
		return -1;
	if (mdm_state_begin(st, e) == -1)
		return -1;
	if (cert_hash != NULL) {
		held = hash_holder(st, cert_hash, id, other, sizeof(other), e);
		if (held == 1)
			mdm_err_set(e, MDM_E_EXISTS, "%s: its certificate is "
			    "bound to enrollment %s", id, other);
		if (held != 0)
			goto out;
	}
	if (cprep(st, sql, &s, e) == -1)
		goto out;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, mdm_queue_enroll_type_name(m->ident.type), -1,
	    SQLITE_STATIC);
	bind_opt_text(s, 3, m->ident.udid);
	bind_opt_text(s, 4, m->serial_number);
	bind_opt_text(s, 5, m->os_version);
	bind_opt_text(s, 6, m->build_version);
	bind_opt_text(s, 7, m->product_name);
	bind_opt_text(s, 8, m->device_name);
	bind_opt_text(s, 9, m->model != NULL ? m->model : m->model_name);
	bind_opt_text(s, 10, m->topic);
	bind_opt_text(s, 11, cert_hash);
	sqlite3_bind_int64(s, 12, t);
	if (run(st, s, "enrollments", e) == -1)
		goto out;
	/* A fresh enrollment: its user channels wait for new TokenUpdates. */
	if (exec_id_time(st, "UPDATE enrollments SET enabled = 0, "
	    "token_update_tally = 0, updated_at = ?2 WHERE device_id = ?1", id,
	    t, e) == -1 ||
	    exec_id_time(st, cancel_channels_sql, id, t, e) == -1)
		goto out;
	rc = mdm_state_commit(st, e);
out:
	done(st, s);
	if (rc == -1)
		mdm_state_rollback(st);
	return rc;
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int
mdm_state_enroll_token_update(struct mdm_state *st,
    const struct mdm_queue_checkin *m, int64_t *tally, struct mdm_err *e)
{
	static const char sql[] =
	    "INSERT INTO enrollments (id, type, device_id, udid, user_id, "
	    "user_short_name, user_long_name, topic, push_token, push_magic, "
	    "unlock_token, awaiting_configuration, enabled, "
	    "token_update_tally, token_dead, created_at, updated_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
	    "coalesce(?12, 0), 1, 1, 0, ?13, ?13) "
	    "ON CONFLICT (id) DO UPDATE SET "
	    "udid = coalesce(excluded.udid, udid), "
	    "user_id = coalesce(excluded.user_id, user_id), "
	    "user_short_name = coalesce(excluded.user_short_name, "
	    "user_short_name), "
	    "user_long_name = coalesce(excluded.user_long_name, "
	    "user_long_name), "
	    "topic = excluded.topic, push_token = excluded.push_token, "
	    "push_magic = excluded.push_magic, "
	    "unlock_token = coalesce(excluded.unlock_token, unlock_token), "
	    "awaiting_configuration = coalesce(?12, awaiting_configuration), "
	    "enabled = 1, token_update_tally = token_update_tally + 1, "
	    "token_dead = 0, updated_at = excluded.updated_at "
	    "RETURNING token_update_tally";
	sqlite3_stmt *s = NULL;
	char *tok = NULL;
	int64_t dev, t = now_s();
	int device, rc, ret = -1;

	if (m->type != MDM_QUEUE_TOKEN_UPDATE || m->ident.id[0] == '\0' ||
	    m->token == NULL || m->token_len == 0 || m->topic == NULL ||
	    m->push_magic == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "not a complete "
		    "TokenUpdate");
	device = mdm_queue_enroll_type_is_device(m->ident.type);
	if ((tok = malloc(2 * m->token_len + 1)) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	hex(m->token, m->token_len, tok);
	if (mdm_state_begin(st, e) == -1)
		goto out;
	if (!device) {
		rc = eid_of(st, m->ident.device_id, &dev, NULL, e);
		if (rc == 0)
			mdm_err_set(e, MDM_E_NOINPUT, "%s: its device %s is not "
			    "enrolled", m->ident.id, m->ident.device_id);
		if (rc != 1)
			goto out;
	}
	if (cprep(st, sql, &s, e) == -1)
		goto out;
	sqlite3_bind_text(s, 1, m->ident.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, mdm_queue_enroll_type_name(m->ident.type), -1,
	    SQLITE_STATIC);
	bind_opt_text(s, 3, device ? NULL : m->ident.device_id);
	bind_opt_text(s, 4, m->ident.udid);
	bind_opt_text(s, 5, m->ident.user_id);
	bind_opt_text(s, 6, m->ident.user_short_name);
	bind_opt_text(s, 7, m->ident.user_long_name);
	sqlite3_bind_text(s, 8, m->topic, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 9, tok, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 10, m->push_magic, -1, SQLITE_STATIC);
	if (m->unlock_token != NULL && m->unlock_token_len > 0)
		sqlite3_bind_blob(s, 11, m->unlock_token,
		    (int)m->unlock_token_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 11);
	if (m->awaiting_configuration >= 0)
		sqlite3_bind_int(s, 12, m->awaiting_configuration != 0);
	else
		sqlite3_bind_null(s, 12);
	sqlite3_bind_int64(s, 13, t);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		dberr(st, rc, e, "enrollments");
		goto out;
	}
	if (tally != NULL)
		*tally = sqlite3_column_int64(s, 0);
	done(st, s);
	s = NULL;
	ret = mdm_state_commit(st, e);
out:
	done(st, s);
	if (ret == -1)
		mdm_state_rollback(st);
	free(tok);
	return ret;
}

int
mdm_state_enroll_checkout(struct mdm_state *st,
    const struct mdm_queue_checkin *m, struct mdm_err *e)
{
	const char *id = m->ident.id;
	int64_t eid, t = now_s();
	int rc;

	if (*id == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "CheckOut names no "
		    "enrollment");
	if (mdm_state_begin(st, e) == -1)
		return -1;
	rc = eid_of(st, id, &eid, NULL, e);
	if (rc == 0)
		mdm_err_set(e, MDM_E_NOINPUT, "%s: no such enrollment", id);
	if (rc != 1 ||
	    exec_id_time(st, "UPDATE enrollments SET enabled = 0, "
	    "updated_at = ?2 WHERE id = ?1 OR device_id = ?1", id, t,
	    e) == -1 ||
	    exec_id_time(st, cancel_channels_sql, id, t, e) == -1 ||
	    mdm_state_commit(st, e) == -1) {
		mdm_state_rollback(st);
		return -1;
	}
	return 0;
}

int
mdm_state_enroll_set_bootstrap(struct mdm_state *st, const char *id,
    const void *token, size_t len, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (check_id(id, e) == -1)
		return -1;
	if (len > MDM_CAP_CERT)
		return mdm_err_set(e, MDM_E_TOOBIG, "bootstrap token larger "
		    "than %u bytes", MDM_CAP_CERT);
	if (prep(st, "UPDATE enrollments SET bootstrap_token = ?2, "
	    "updated_at = ?3 WHERE id = ?1 AND device_id IS NULL", &s,
	    e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if (token != NULL && len > 0)
		sqlite3_bind_blob(s, 2, token, (int)len, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	sqlite3_bind_int64(s, 3, now_s());
	if (run(st, s, "enrollments", e) == -1)
		goto out;
	if (sqlite3_changes(mdm_state_db(st)) == 0) {
		mdm_err_set(e, MDM_E_NOINPUT, "%s: no such device enrollment",
		    id);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

int
mdm_state_enroll_get_bootstrap(struct mdm_state *st, const char *id,
    struct mdm_buf *out, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = -1;

	if (check_id(id, e) == -1)
		return -1;
	if (prep(st, "SELECT bootstrap_token FROM enrollments WHERE id = ?",
	    &s, e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		mdm_err_set(e, MDM_E_NOINPUT, "%s: no such enrollment", id);
	else if (rc != SQLITE_ROW)
		dberr(st, rc, e, "enrollments");
	else if (sqlite3_column_type(s, 0) == SQLITE_NULL)
		ret = 1;
	else if (mdm_buf_append(out, sqlite3_column_blob(s, 0),
	    (size_t)sqlite3_column_bytes(s, 0), e) == 0)
		ret = 0;
	sqlite3_finalize(s);
	return ret;
}

/*
 * The device channel of id (itself for a device channel) and the hash
 * bound to it: 1 found, 0 no such enrollment, -1 error.
 */
static int
device_binding(struct mdm_state *st, const char *id, char *dev, size_t devlen,
    char *bound, size_t boundlen, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = -1;

	if (cprep(st, "SELECT d.id, coalesce(d.cert_hash, '') "
	    "FROM enrollments c JOIN enrollments d "
	    "ON d.id = coalesce(c.device_id, c.id) WHERE c.id = ?", &s,
	    e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		snprintf(dev, devlen, "%s", col_text(s, 0));
		snprintf(bound, boundlen, "%s", col_text(s, 1));
		ret = 1;
	} else if (rc == SQLITE_DONE)
		ret = 0;
	else
		dberr(st, rc, e, "enrollments");
	done(st, s);
	return ret;
}

int
mdm_state_enroll_cert_check(struct mdm_state *st, const char *id,
    const char *cert_hash, enum mdm_state_cert *out, struct mdm_err *e)
{
	char dev[MDM_QUEUE_ID_MAX + 1], bound[65];
	int rc;

	if (check_id(id, e) == -1 || check_hash(cert_hash, e) == -1)
		return -1;
	rc = device_binding(st, id, dev, sizeof(dev), bound, sizeof(bound), e);
	if (rc == -1)
		return -1;
	if (rc == 0) {
		*out = MDM_STATE_CERT_UNKNOWN;
		return 0;
	}
	if (strcmp(bound, cert_hash) == 0) {
		*out = MDM_STATE_CERT_MATCH;
		return 0;
	}
	if ((rc = hash_holder(st, cert_hash, dev, NULL, 0, e)) == -1)
		return -1;
	if (rc == 1)
		*out = MDM_STATE_CERT_OTHER;
	else
		*out = *bound == '\0' ? MDM_STATE_CERT_UNBOUND :
		    MDM_STATE_CERT_MISMATCH;
	return 0;
}

/* 1 when our CA issued cert_hash by a RenewalReq signed by bound. */
static int
renewal_of(struct mdm_state *st, const char *cert_hash, const char *bound,
    struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = -1;

	if (cprep(st, "SELECT 1 FROM certificates WHERE sha256 = ?1 "
	    "AND renewed_from = ?2 AND revoked_at IS NULL", &s, e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, cert_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, bound, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		ret = rc == SQLITE_ROW;
	else
		dberr(st, rc, e, "certificates");
	done(st, s);
	return ret;
}

static int
cert_bind(struct mdm_state *st, const char *id, const char *cert_hash,
    int renewal, struct mdm_err *e)
{
	char dev[MDM_QUEUE_ID_MAX + 1], bound[65], other[MDM_QUEUE_ID_MAX + 1];
	sqlite3_stmt *s = NULL;
	int rc, ret = -1;

	if (check_id(id, e) == -1 || check_hash(cert_hash, e) == -1)
		return -1;
	if (mdm_state_begin(st, e) == -1)
		return -1;
	rc = device_binding(st, id, dev, sizeof(dev), bound, sizeof(bound), e);
	if (rc == 0)
		mdm_err_set(e, MDM_E_NOINPUT, "%s: no such enrollment", id);
	if (rc != 1)
		goto out;
	if (renewal) {
		rc = *bound == '\0' ? 0 : renewal_of(st, cert_hash, bound, e);
		if (rc == 0)
			mdm_err_set(e, MDM_E_PERM, "%s: the certificate is not "
			    "a renewal of the one bound", id);
		if (rc != 1)
			goto out;
	}
	rc = hash_holder(st, cert_hash, dev, other, sizeof(other), e);
	if (rc == 1)
		mdm_err_set(e, MDM_E_EXISTS, "%s: the certificate is bound to "
		    "enrollment %s", id, other);
	if (rc != 0)
		goto out;
	if (cprep(st, "UPDATE enrollments SET cert_hash = ?2, updated_at = ?3 "
	    "WHERE id = ?1", &s, e) == -1)
		goto out;
	sqlite3_bind_text(s, 1, dev, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, cert_hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now_s());
	if (run(st, s, "enrollments", e) == -1)
		goto out;
	ret = mdm_state_commit(st, e);
out:
	done(st, s);
	if (ret == -1)
		mdm_state_rollback(st);
	return ret;
}

int
mdm_state_enroll_cert_bind(struct mdm_state *st, const char *id,
    const char *cert_hash, struct mdm_err *e)
{
	return cert_bind(st, id, cert_hash, 0, e);
}

int
mdm_state_enroll_cert_renew(struct mdm_state *st, const char *id,
    const char *cert_hash, struct mdm_err *e)
{
	return cert_bind(st, id, cert_hash, 1, e);
}

int
mdm_state_enroll_cert_revoked(struct mdm_state *st, const char *cert_hash,
    struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = -1;

	if (check_hash(cert_hash, e) == -1)
		return -1;
	if (cprep(st, "SELECT 1 FROM certificates WHERE sha256 = ?1 "
	    "AND revoked_at IS NOT NULL", &s, e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, cert_hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		ret = rc == SQLITE_ROW;
	else
		dberr(st, rc, e, "certificates");
	done(st, s);
	return ret;
}

int
mdm_state_enroll_by_cert(struct mdm_state *st, const char *cert_hash,
    char *out, size_t outlen, struct mdm_err *e)
{
	int rc;

	if (check_hash(cert_hash, e) == -1)
		return -1;
	/* No enrollment has the empty id, so this finds any holder. */
	rc = hash_holder(st, cert_hash, "", out, outlen, e);
	if (rc == 0)
		return mdm_err_set(e, MDM_E_NOINPUT, "no enrollment has this "
		    "certificate");
	return rc == 1 ? 0 : -1;
}

int
mdm_state_enroll_push_result(struct mdm_state *st, const char *id,
    int64_t at, int http_status, const char *reason, int token_dead,
    struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (check_id(id, e) == -1)
		return -1;
	if (prep(st, "UPDATE enrollments SET last_push_at = ?2, "
	    "last_push_status = ?3, last_push_reason = ?4, token_dead = ?5 "
	    "WHERE id = ?1", &s, e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, at);
	sqlite3_bind_int(s, 3, http_status);
	bind_opt_text(s, 4, reason);
	sqlite3_bind_int(s, 5, token_dead != 0);
	if (run(st, s, "enrollments", e) == -1)
		goto out;
	if (sqlite3_changes(mdm_state_db(st)) == 0) {
		mdm_err_set(e, MDM_E_NOINPUT, "%s: no such enrollment", id);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

#define ENROLL_COLS \
    "SELECT e.id, e.type, e.device_id, e.udid, e.user_id, " \
    "e.user_short_name, e.user_long_name, e.serial_number, e.os_version, " \
    "e.product_name, e.device_name, e.model, e.topic, e.push_token, " \
    "e.push_magic, e.cert_hash, e.last_push_reason, e.unlock_token, " \
    "e.enabled, e.awaiting_configuration, e.token_dead, " \
    "e.bootstrap_token IS NOT NULL, e.token_update_tally, " \
    "coalesce(e.last_seen_at, 0), coalesce(e.last_push_at, 0), " \
    "coalesce(e.last_push_status, 0), e.created_at, e.updated_at, " \
    "(SELECT count(*) FROM queue q INDEXED BY queue_pending " \
    "WHERE q.enrollment = e.eid AND q.status = 'pending') " \
    "FROM enrollments e "
static const char enroll_cols[] = ENROLL_COLS;
#define ENROLL_NSTR 17

/* The string fields of en in column order. */
static const char **
enroll_str(struct mdm_state_enrollment *en, int i)
{
	const char **f[ENROLL_NSTR] = {
		&en->id, &en->type, &en->device_id, &en->udid, &en->user_id,
		&en->user_short_name, &en->user_long_name, &en->serial_number,
		&en->os_version, &en->product_name, &en->device_name,
		&en->model, &en->topic, &en->push_token, &en->push_magic,
		&en->cert_hash, &en->last_push_reason,
	};

	return f[i];
}

static void
enroll_row(sqlite3_stmt *s, struct mdm_state_enrollment *en)
{
	int i;

	memset(en, 0, sizeof(*en));
	for (i = 0; i < ENROLL_NSTR; i++)
		*enroll_str(en, i) = col_text(s, i);
	en->unlock_token = sqlite3_column_blob(s, 17);
	en->unlock_token_len = (size_t)sqlite3_column_bytes(s, 17);
	if (en->unlock_token_len == 0)
		en->unlock_token = NULL;
	en->enabled = sqlite3_column_int(s, 18);
	en->awaiting_configuration = sqlite3_column_int(s, 19);
	en->token_dead = sqlite3_column_int(s, 20);
	en->has_bootstrap_token = sqlite3_column_int(s, 21);
	en->token_update_tally = sqlite3_column_int64(s, 22);
	en->last_seen_at = sqlite3_column_int64(s, 23);
	en->last_push_at = sqlite3_column_int64(s, 24);
	en->last_push_status = sqlite3_column_int64(s, 25);
	en->created_at = sqlite3_column_int64(s, 26);
	en->updated_at = sqlite3_column_int64(s, 27);
	en->pending = sqlite3_column_int64(s, 28);
}

/* Moves the borrowed strings and blob of en into one owned block. */
static int
enroll_own(struct mdm_state_enrollment *en, struct mdm_err *e)
{
	size_t total = en->unlock_token_len + 1, n;
	unsigned char *p, *mem;
	const char **f;
	int i;

	for (i = 0; i < ENROLL_NSTR; i++)
		if (*(f = enroll_str(en, i)) != NULL)
			total += strlen(*f) + 1;
	if ((mem = malloc(total)) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	p = mem;
	if (en->unlock_token != NULL) {
		memcpy(p, en->unlock_token, en->unlock_token_len);
		en->unlock_token = p;
		p += en->unlock_token_len;
	}
	for (i = 0; i < ENROLL_NSTR; i++) {
		if (*(f = enroll_str(en, i)) == NULL)
			continue;
		n = strlen(*f) + 1;
		memcpy(p, *f, n);
		*f = (const char *)p;
		p += n;
	}
	en->mem = mem;
	return 0;
}

int
mdm_state_enroll_get(struct mdm_state *st, const char *key,
    struct mdm_state_enrollment *out, struct mdm_err *e)
{
	static const char sql[] = ENROLL_COLS "WHERE e.eid = ?";
	struct resolved r;
	sqlite3_stmt *s = NULL;
	int rc, ret = -1;

	memset(out, 0, sizeof(*out));
	if (resolve_one(st, key, &r, e) == -1)
		return -1;
	if (cprep(st, sql, &s, e) == -1)
		return -1;
	sqlite3_bind_int64(s, 1, r.eid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		enroll_row(s, out);
		if (enroll_own(out, e) == 0)
			ret = 0;
		else
			memset(out, 0, sizeof(*out));
	} else if (rc == SQLITE_DONE)
		mdm_err_set(e, MDM_E_NOINPUT, "%s: no such enrollment", key);
	else
		dberr(st, rc, e, "enrollments");
	done(st, s);
	return ret;
}

void
mdm_state_enrollment_release(struct mdm_state_enrollment *en)
{
	if (en == NULL)
		return;
	free(en->mem);
	memset(en, 0, sizeof(*en));
}

int
mdm_state_enroll_foreach(struct mdm_state *st,
    const struct mdm_state_enroll_filter *f,
    int (*fn)(const struct mdm_state_enrollment *en, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e)
{
	struct mdm_state_enrollment en;
	sqlite3_stmt *s = NULL;
	char sql[sizeof(enroll_cols) + 512];
	int rc, ret = -1;

	snprintf(sql, sizeof(sql), "%sWHERE 1%s%s%s%s ORDER BY e.id%s",
	    enroll_cols,
	    f != NULL && f->pending ? " AND EXISTS (SELECT 1 FROM queue q "
	    "INDEXED BY queue_pending WHERE q.enrollment = e.eid "
	    "AND q.status = 'pending')" : "",
	    f != NULL && f->enabled ? " AND " PUSHABLE : "",
	    f != NULL && f->seen_before != 0 ? " AND (e.last_seen_at IS NULL "
	    "OR e.last_seen_at < ?1)" : "",
	    f != NULL && f->after_id != NULL ? " AND e.id > ?2" : "",
	    f != NULL && f->limit > 0 ? " LIMIT ?3" : "");
	if (prep(st, sql, &s, e) == -1)
		return -1;
	if (f != NULL && f->seen_before != 0)
		sqlite3_bind_int64(s, 1, f->seen_before);
	if (f != NULL && f->after_id != NULL)
		sqlite3_bind_text(s, 2, f->after_id, -1, SQLITE_STATIC);
	if (f != NULL && f->limit > 0)
		sqlite3_bind_int64(s, 3, f->limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		enroll_row(s, &en);
		if (fn(&en, arg, e) == -1)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		dberr(st, rc, e, "enrollments");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

/* ---- enqueue ---- */

struct enq {
	struct mdm_state *st;
	const struct mdm_queue_cmd *cmd;
	unsigned char sha[SHA256_LEN];
	sqlite3_stmt *find_cmd, *find_payload, *add_payload, *add_cmd;
	sqlite3_stmt *olds, *insert, *supersede;
	int64_t *old;		/* superseded candidates of this chunk */
	size_t nold, oldalloc;
};

static void
enq_release(struct enq *q)
{
	sqlite3_finalize(q->find_cmd);
	sqlite3_finalize(q->find_payload);
	sqlite3_finalize(q->add_payload);
	sqlite3_finalize(q->add_cmd);
	sqlite3_finalize(q->olds);
	sqlite3_finalize(q->insert);
	sqlite3_finalize(q->supersede);
	free(q->old);
}

static int
enq_prepare(struct enq *q, struct mdm_err *e)
{
	struct mdm_state *st = q->st;

	return prep(st, "SELECT c.cid, c.request_type, p.sha256 "
	    "FROM commands c JOIN command_payloads p ON p.pid = c.payload "
	    "WHERE c.uuid = ?", &q->find_cmd, e) == -1 ||
	    prep(st, "SELECT pid FROM command_payloads WHERE sha256 = ?",
	    &q->find_payload, e) == -1 ||
	    prep(st, "INSERT INTO command_payloads (sha256, body) "
	    "VALUES (?, ?)", &q->add_payload, e) == -1 ||
	    prep(st, "INSERT INTO commands (uuid, request_type, payload, "
	    "payload_identifier, created_at) VALUES (?, ?, ?, ?, ?)",
	    &q->add_cmd, e) == -1 ||
	    prep(st, "SELECT c.cid FROM commands c "
	    "WHERE c.payload_identifier = ?1 AND c.cid <> ?2 "
	    "AND c.request_type IN ('InstallProfile', 'RemoveProfile') "
	    "AND EXISTS (SELECT 1 FROM queue q WHERE q.command = c.cid "
	    "AND q.status = 'pending')", &q->olds, e) == -1 ||
	    prep(st, "INSERT OR IGNORE INTO queue (enrollment, command, "
	    "created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
	    &q->insert, e) == -1 ||
	    prep(st, "UPDATE queue SET status = 'superseded', offered = 0, "
	    "updated_at = ?3 WHERE enrollment = ?1 AND command = ?2 "
	    "AND status = 'pending'", &q->supersede, e) == -1 ? -1 : 0;
}

/*
 * The command row of q->cmd, made (with its payload) if missing; an
 * existing UUID must carry the same request type and payload.
 */
static int
enq_command(struct enq *q, int64_t t, int64_t *cid, struct mdm_err *e)
{
	struct mdm_state *st = q->st;
	const struct mdm_queue_cmd *c = q->cmd;
	sqlite3_stmt *s = q->find_cmd;
	int64_t pid = 0;
	int rc, same = 0;

	sqlite3_bind_text(s, 1, c->uuid, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*cid = sqlite3_column_int64(s, 0);
		same = strcmp(col_text(s, 1), c->request_type) == 0 &&
		    sqlite3_column_bytes(s, 2) == SHA256_LEN &&
		    memcmp(sqlite3_column_blob(s, 2), q->sha,
		    SHA256_LEN) == 0;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return dberr(st, rc, e, "commands");
	if (rc == SQLITE_ROW) {
		if (!same)
			return mdm_err_set(e, MDM_E_EXISTS, "command %s exists "
			    "already with other contents: give the new one "
			    "another CommandUUID", c->uuid);
		return 0;
	}

	s = q->find_payload;
	sqlite3_bind_blob(s, 1, q->sha, SHA256_LEN, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		pid = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return dberr(st, rc, e, "command_payloads");
	if (rc == SQLITE_DONE) {
		s = q->add_payload;
		sqlite3_bind_blob(s, 1, q->sha, SHA256_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(s, 2, c->body.data, (int)c->body.len,
		    SQLITE_STATIC);
		if (run(st, s, "command_payloads", e) == -1)
			return -1;
		pid = sqlite3_last_insert_rowid(mdm_state_db(st));
	}
	s = q->add_cmd;
	sqlite3_bind_text(s, 1, c->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, c->request_type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, pid);
	bind_opt_text(s, 4, c->payload_identifier);
	sqlite3_bind_int64(s, 5, t);
	if (run(st, s, "commands", e) == -1)
		return -1;
	*cid = sqlite3_last_insert_rowid(mdm_state_db(st));
	return 0;
}

/* Pending commands this one supersedes, into q->old. */
static int
enq_olds(struct enq *q, int64_t cid, struct mdm_err *e)
{
	sqlite3_stmt *s = q->olds;
	int64_t *p;
	int rc;

	q->nold = 0;
	if (q->cmd->payload_identifier == NULL)
		return 0;
	sqlite3_bind_text(s, 1, q->cmd->payload_identifier, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, cid);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (q->nold == q->oldalloc) {
			p = reallocarray(q->old, q->oldalloc ? 2 * q->oldalloc :
			    8, sizeof(*p));
			if (p == NULL) {
				sqlite3_reset(s);
				return mdm_err_set(e, MDM_E_SOFTWARE,
				    "out of memory");
			}
			q->old = p;
			q->oldalloc = q->oldalloc ? 2 * q->oldalloc : 8;
		}
		q->old[q->nold++] = sqlite3_column_int64(s, 0);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return dberr(q->st, rc, e, "commands");
	return 0;
}

static int
enq_row(struct enq *q, int64_t eid, int64_t cid, int64_t t,
    unsigned char *outcome, struct mdm_state_enqueue_stats *stats,
    struct mdm_err *e)
{
	sqlite3 *db = mdm_state_db(q->st);
	size_t i;

	sqlite3_bind_int64(q->insert, 1, eid);
	sqlite3_bind_int64(q->insert, 2, cid);
	sqlite3_bind_int64(q->insert, 3, t);
	if (run(q->st, q->insert, "queue", e) == -1)
		return -1;
	if (sqlite3_changes(db) == 0) {
		*outcome = MDM_STATE_ENQ_DUPLICATE;
		stats->duplicate++;
		return 0;
	}
	*outcome = MDM_STATE_ENQ_QUEUED;
	stats->queued++;
	for (i = 0; i < q->nold; i++) {
		sqlite3_bind_int64(q->supersede, 1, eid);
		sqlite3_bind_int64(q->supersede, 2, q->old[i]);
		sqlite3_bind_int64(q->supersede, 3, t);
		if (run(q->st, q->supersede, "queue", e) == -1)
			return -1;
		stats->superseded += (size_t)sqlite3_changes(db);
	}
	return 0;
}

int
mdm_state_queue_enqueue(struct mdm_state *st,
    const struct mdm_queue_cmd *cmd, const char *const *keys, size_t n,
    unsigned flags, mdm_state_enqueue_fn *fn, void *arg,
    struct mdm_state_enqueue_stats *stats, struct mdm_err *e)
{
	struct mdm_state_enqueue_stats dummy;
	struct enq q;
	struct resolver r = { 0 };
	struct resolved one;
	int64_t *eids = NULL, cid = 0, t;
	char **ids = NULL;
	unsigned char *outcome = NULL;
	unsigned int mdlen = 0;
	size_t i, start, end, done = 0;
	int rc, amb, ret = -1, in_txn = 0;

	if (stats == NULL)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	memset(&q, 0, sizeof(q));
	q.st = st;
	q.cmd = cmd;
	if (cmd == NULL || cmd->body.len == 0 || cmd->body.len > INT_MAX ||
	    mdm_queue_uuid_check(cmd->uuid, NULL) == -1)
		return mdm_err_set(e, MDM_E_USAGE, "not a prepared command");
	if (n == 0)
		return mdm_err_set(e, MDM_E_USAGE, "no enrollments given");
	if (EVP_Digest(cmd->body.data, cmd->body.len, q.sha, &mdlen,
	    EVP_sha256(), NULL) != 1)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sha256");
	if ((eids = calloc(n, sizeof(*eids))) == NULL ||
	    (ids = calloc(n, sizeof(*ids))) == NULL ||
	    (outcome = calloc(n, 1)) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}

	/* Resolve every key before writing anything, in one snapshot. */
	if (resolver_init(st, &r, e) == -1 ||
	    mdm_state_exec(st, "BEGIN DEFERRED", e) == -1)
		goto out;
	in_txn = 1;
	for (i = 0; i < n; i++) {
		rc = resolve(st, &r, keys[i], &one, &amb, e);
		if (rc == -1)
			goto out;
		if (rc == 0) {
			outcome[i] = amb ? MDM_STATE_ENQ_AMBIGUOUS :
			    MDM_STATE_ENQ_UNKNOWN;
			stats->unknown++;
			continue;
		}
		eids[i] = one.eid;
		if (!one.enabled)
			stats->disabled++;
		if ((ids[i] = strdup(one.id)) == NULL) {
			mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
			goto out;
		}
	}
	if (mdm_state_exec(st, "COMMIT", e) == -1)
		goto out;
	in_txn = 0;
	resolver_release(st, &r);
	if (stats->unknown > 0) {
		for (i = 0; fn != NULL && i < n; i++)
			if (ids[i] == NULL && fn(keys[i], NULL,
			    (enum mdm_state_enqueue_outcome)outcome[i], arg,
			    e) == -1)
				goto out;
		if (!(flags & MDM_STATE_ENQ_SKIP_UNKNOWN)) {
			mdm_err_set(e, MDM_E_NOINPUT, "%zu of %zu enrollments "
			    "are not known: nothing queued", stats->unknown, n);
			goto out;
		}
		if (stats->unknown == n) {
			ret = 0;
			goto out;
		}
	}

	if (enq_prepare(&q, e) == -1)
		goto out;
	for (start = 0; start < n; start = end) {
		end = start + MDM_STATE_QUEUE_CHUNK < n ?
		    start + MDM_STATE_QUEUE_CHUNK : n;
		t = now_s();
		if (mdm_state_begin(st, e) == -1)
			goto part;
		if (enq_command(&q, t, &cid, e) == -1 ||
		    enq_olds(&q, cid, e) == -1)
			goto part;
		for (i = start; i < end; i++)
			if (ids[i] != NULL && enq_row(&q, eids[i], cid, t,
			    &outcome[i], stats, e) == -1)
				goto part;
		if (mdm_state_commit(st, e) == -1)
			goto part;
		done = end;
		/* Told only now, so a slow reader holds no lock. */
		for (i = start; fn != NULL && i < end; i++)
			if (ids[i] != NULL && fn(keys[i], ids[i],
			    (enum mdm_state_enqueue_outcome)outcome[i], arg,
			    e) == -1)
				goto out;
	}
	ret = 0;
	goto out;
part:
	mdm_state_rollback(st);
	if (done > 0)
		mdm_err_prefix(e, "command %s was queued for the first %zu of "
		    "%zu enrollments, then", cmd->uuid, done, n);
out:
	if (in_txn)
		mdm_state_rollback(st);
	resolver_release(st, &r);
	enq_release(&q);
	for (i = 0; ids != NULL && i < n; i++)
		free(ids[i]);
	free(ids);
	free(eids);
	free(outcome);
	return ret;
}

/* ---- the device session ---- */

void
mdm_state_delivery_init(struct mdm_state_delivery *d)
{
	memset(d, 0, sizeof(*d));
	mdm_buf_init(&d->body, MDM_CAP_PLIST);
}

void
mdm_state_delivery_release(struct mdm_state_delivery *d)
{
	if (d == NULL)
		return;
	mdm_buf_release(&d->body);
	mdm_state_delivery_init(d);
}

/* The queue row of (eid, uuid): 1 with *cid, 0 when none, -1 error. */
static int
find_row(struct mdm_state *st, int64_t eid, const char *uuid, int64_t *cid,
    struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = -1;

	if (cprep(st, "SELECT q.command FROM commands c JOIN queue q "
	    "ON q.command = c.cid WHERE c.uuid = ?1 AND q.enrollment = ?2",
	    &s, e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, eid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*cid = sqlite3_column_int64(s, 0);
		ret = 1;
	} else if (rc == SQLITE_DONE)
		ret = 0;
	else
		dberr(st, rc, e, "queue");
	done(st, s);
	return ret;
}

/* The pending command offered last in this session: 1, 0 or -1. */
static int
last_offered(struct mdm_state *st, int64_t eid, int64_t *cid, char *uuid,
    size_t uuidlen, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = -1;

	if (cprep(st, "SELECT q.command, c.uuid FROM queue q "
	    "INDEXED BY queue_pending JOIN commands c ON c.cid = q.command "
	    "WHERE q.enrollment = ? AND q.status = 'pending' AND q.offered = 1 "
	    "ORDER BY q.sent_at DESC, q.command DESC LIMIT 1", &s, e) == -1)
		return -1;
	sqlite3_bind_int64(s, 1, eid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*cid = sqlite3_column_int64(s, 0);
		snprintf(uuid, uuidlen, "%s", col_text(s, 1));
		ret = 1;
	} else if (rc == SQLITE_DONE)
		ret = 0;
	else
		dberr(st, rc, e, "queue");
	done(st, s);
	return ret;
}

/* Stores a result and ends its queue row (cid 0: an orphan result). */
static int
store_result(struct mdm_state *st, int64_t eid, int64_t cid,
    const char *status, const char *error_chain, const void *raw,
    size_t raw_len, int64_t t, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (cprep(st, "INSERT INTO results (enrollment, command, status, "
	    "error_chain, raw, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
	    "ON CONFLICT (enrollment, command) DO UPDATE SET "
	    "status = excluded.status, error_chain = excluded.error_chain, "
	    "raw = excluded.raw, received_at = excluded.received_at", &s,
	    e) == -1)
		return -1;
	sqlite3_bind_int64(s, 1, eid);
	if (cid != 0)
		sqlite3_bind_int64(s, 2, cid);
	else
		sqlite3_bind_null(s, 2);
	sqlite3_bind_text(s, 3, status, -1, SQLITE_STATIC);
	bind_opt_text(s, 4, error_chain);
	sqlite3_bind_blob(s, 5, raw != NULL ? raw : "", (int)raw_len,
	    SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, t);
	if (run(st, s, "results", e) == -1)
		goto out;
	done(st, s);
	s = NULL;
	if (cid == 0)
		return 0;
	if (cprep(st, "UPDATE queue SET status = ?3, offered = 0, "
	    "updated_at = ?4 WHERE enrollment = ?1 AND command = ?2", &s,
	    e) == -1)
		goto out;
	sqlite3_bind_int64(s, 1, eid);
	sqlite3_bind_int64(s, 2, cid);
	sqlite3_bind_text(s, 3, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, t);
	if (run(st, s, "queue", e) == -1)
		goto out;
	rc = 0;
out:
	done(st, s);
	return rc;
}

static const char *
result_status(enum mdm_queue_status s)
{
	switch (s) {
	case MDM_QUEUE_ACKNOWLEDGED:
		return "acknowledged";
	case MDM_QUEUE_ERROR:
		return "error";
	case MDM_QUEUE_FORMAT_ERROR:
		return "format_error";
	default:
		return "unparseable";
	}
}

static int
record(struct mdm_state *st, int64_t eid, enum mdm_queue_status status,
    const struct mdm_queue_report *rep, const void *raw, size_t raw_len,
    int64_t t, struct mdm_state_delivery *out, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int64_t cid = 0;
	int rc;

	switch (status) {
	case MDM_QUEUE_IDLE:
		out->outcome = MDM_STATE_REP_IDLE;
		/* A new session: everything pending may be offered again. */
		if (cprep(st, "UPDATE queue INDEXED BY queue_pending "
		    "SET offered = 0 WHERE enrollment = ? "
		    "AND status = 'pending' AND offered = 1", &s, e) == -1)
			return -1;
		sqlite3_bind_int64(s, 1, eid);
		rc = run(st, s, "queue", e);
		done(st, s);
		return rc;
	case MDM_QUEUE_NOT_NOW:
		if ((rc = find_row(st, eid, rep->command_uuid, &cid, e)) != 1) {
			out->outcome = MDM_STATE_REP_UNKNOWN;
			return rc;
		}
		out->outcome = MDM_STATE_REP_NOT_NOW;
		snprintf(out->result_uuid, sizeof(out->result_uuid), "%s",
		    rep->command_uuid);
		if (cprep(st, "UPDATE queue SET not_now_count = "
		    "not_now_count + 1, not_now_at = ?3, offered = 1 "
		    "WHERE enrollment = ?1 AND command = ?2 "
		    "AND status = 'pending'", &s, e) == -1)
			return -1;
		sqlite3_bind_int64(s, 1, eid);
		sqlite3_bind_int64(s, 2, cid);
		sqlite3_bind_int64(s, 3, t);
		rc = run(st, s, "queue", e);
		done(st, s);
		return rc;
	case MDM_QUEUE_UNPARSEABLE:
		if (rep->command_uuid != NULL)
			rc = find_row(st, eid, rep->command_uuid, &cid, e);
		else
			rc = last_offered(st, eid, &cid, out->result_uuid,
			    sizeof(out->result_uuid), e);
		if (rc == -1)
			return -1;
		if (rc == 0) {
			/* Nothing to dequeue; kept for a human to read. */
			out->outcome = MDM_STATE_REP_ORPHAN;
			out->result_uuid[0] = '\0';
			return store_result(st, eid, 0, "unparseable", NULL,
			    raw, raw_len, t, e);
		}
		out->outcome = MDM_STATE_REP_UNPARSEABLE;
		break;
	default:
		if ((rc = find_row(st, eid, rep->command_uuid, &cid, e)) != 1) {
			out->outcome = MDM_STATE_REP_UNKNOWN;
			return rc;
		}
		out->outcome = MDM_STATE_REP_RECORDED;
		break;
	}
	if (rep->command_uuid != NULL)
		snprintf(out->result_uuid, sizeof(out->result_uuid), "%s",
		    rep->command_uuid);
	return store_result(st, eid, cid, result_status(status),
	    rep->error_chain, raw, raw_len, t, e);
}

/* Picks the next command, marks it offered and renders it into out. */
static int
deliver(struct mdm_state *st, int64_t eid, int64_t t,
    struct mdm_state_delivery *out, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int64_t cid, pid;
	int rc, ret = -1;

	if (cprep(st, "SELECT q.command, c.uuid, c.request_type, c.payload "
	    "FROM queue q INDEXED BY queue_pending JOIN commands c "
	    "ON c.cid = q.command WHERE q.enrollment = ? "
	    "AND q.status = 'pending' AND q.offered = 0 "
	    "ORDER BY q.created_at, q.command LIMIT 1", &s, e) == -1)
		return -1;
	sqlite3_bind_int64(s, 1, eid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		dberr(st, rc, e, "queue");
		goto out;
	}
	cid = sqlite3_column_int64(s, 0);
	snprintf(out->uuid, sizeof(out->uuid), "%s", col_text(s, 1));
	snprintf(out->request_type, sizeof(out->request_type), "%s",
	    col_text(s, 2));
	pid = sqlite3_column_int64(s, 3);
	done(st, s);
	s = NULL;

	if (cprep(st, "UPDATE queue SET offered = 1, sent_at = ?3 "
	    "WHERE enrollment = ?1 AND command = ?2", &s, e) == -1)
		goto out;
	sqlite3_bind_int64(s, 1, eid);
	sqlite3_bind_int64(s, 2, cid);
	sqlite3_bind_int64(s, 3, t);
	if (run(st, s, "queue", e) == -1)
		goto out;
	done(st, s);
	s = NULL;

	if (cprep(st, "SELECT body FROM command_payloads WHERE pid = ?", &s,
	    e) == -1)
		goto out;
	sqlite3_bind_int64(s, 1, pid);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		dberr(st, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, e,
		    "command_payloads");
		goto out;
	}
	if (mdm_queue_render(out->uuid, sqlite3_column_blob(s, 0),
	    (size_t)sqlite3_column_bytes(s, 0), &out->body, e) == -1)
		goto out;
	ret = 0;
out:
	done(st, s);
	if (ret == -1 || out->body.len == 0) {
		out->uuid[0] = '\0';
		out->request_type[0] = '\0';
		mdm_buf_reset(&out->body);
	}
	return ret;
}

static int
has_pending(struct mdm_state *st, int64_t eid, int *out, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (cprep(st, "SELECT EXISTS (SELECT 1 FROM queue INDEXED BY queue_pending "
	    "WHERE enrollment = ? AND status = 'pending')", &s, e) == -1)
		return -1;
	sqlite3_bind_int64(s, 1, eid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(s, 0);
	done(st, s);
	if (rc != SQLITE_ROW)
		return dberr(st, rc, e, "queue");
	return 0;
}

static int
touch_seen(struct mdm_state *st, int64_t eid, int64_t t, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (cprep(st, "UPDATE enrollments SET last_seen_at = ? WHERE eid = ?",
	    &s, e) == -1)
		return -1;
	sqlite3_bind_int64(s, 1, t);
	sqlite3_bind_int64(s, 2, eid);
	rc = run(st, s, "enrollments", e);
	done(st, s);
	return rc;
}

int
mdm_state_queue_report(struct mdm_state *st,
    const struct mdm_queue_report *rep, const void *raw, size_t raw_len,
    struct mdm_state_delivery *out, struct mdm_err *e)
{
	enum mdm_queue_status status = rep->status;
	int64_t eid, seen, t = now_s();
	int rc, stale, pending = 1;

	out->outcome = MDM_STATE_REP_IDLE;
	out->result_uuid[0] = out->uuid[0] = out->request_type[0] = '\0';
	mdm_buf_reset(&out->body);
	if (rep->ident.id[0] == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "the report names no "
		    "enrollment");
	if (raw_len > MDM_CAP_PLIST || raw_len > INT_MAX)
		return mdm_err_set(e, MDM_E_TOOBIG, "report larger than %u "
		    "bytes", MDM_CAP_PLIST);
	/* A result without a UUID cannot be matched by it. */
	if (status != MDM_QUEUE_IDLE && rep->command_uuid == NULL)
		status = MDM_QUEUE_UNPARSEABLE;
	if ((rc = eid_of(st, rep->ident.id, &eid, &seen, e)) == -1)
		return -1;
	if (rc == 0)
		return mdm_err_set(e, MDM_E_NOINPUT, "%s: no such enrollment",
		    rep->ident.id);
	stale = seen == 0 || t - seen >= MDM_STATE_SEEN_INTERVAL || t < seen;

	/* The common check-in, Idle with nothing queued, only reads. */
	if (status == MDM_QUEUE_IDLE) {
		if (has_pending(st, eid, &pending, e) == -1)
			return -1;
		if (!pending) {
			/* Best effort: a busy database must not fail the
			   check-in over a timestamp. */
			if (stale && touch_seen(st, eid, t, e) == -1 &&
			    (e == NULL || e->code != MDM_E_TEMPFAIL))
				return -1;
			return 0;
		}
	}
	if (mdm_state_begin(st, e) == -1)
		return -1;
	if (record(st, eid, status, rep, raw, raw_len, t, out, e) == -1 ||
	    (stale && touch_seen(st, eid, t, e) == -1) ||
	    deliver(st, eid, t, out, e) == -1 ||
	    mdm_state_commit(st, e) == -1) {
		mdm_state_rollback(st);
		out->uuid[0] = out->request_type[0] = '\0';
		mdm_buf_reset(&out->body);
		return -1;
	}
	return 0;
}

/* ---- inspection and upkeep ---- */

int
mdm_state_qstatus_parse(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < MDM_ARRAY_LEN(qstatus_names); i++)
		if (strcmp(name, qstatus_names[i]) == 0)
			return 1 << i;
	return -1;
}

/* "'a', 'b'" for the statuses in bits, into out. */
static void
status_list(unsigned bits, char *out, size_t outlen)
{
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; i < MDM_ARRAY_LEN(qstatus_names); i++)
		if (bits & (1u << i))
			n += (size_t)snprintf(out + n, n < outlen ? outlen - n :
			    0, "%s'%s'", n ? ", " : "", qstatus_names[i]);
}

/* The cid of a command UUID: 1, 0 or -1. */
static int
cid_of(struct mdm_state *st, const char *uuid, int64_t *cid,
    struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = -1;

	if (prep(st, "SELECT cid FROM commands WHERE uuid = ?", &s, e) == -1)
		return -1;
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*cid = sqlite3_column_int64(s, 0);
		ret = 1;
	} else if (rc == SQLITE_DONE)
		ret = 0;
	else
		dberr(st, rc, e, "commands");
	sqlite3_finalize(s);
	return ret;
}

static int
filter_ids(struct mdm_state *st, const char *key, const char *uuid,
    int64_t *eid, int64_t *cid, struct mdm_err *e)
{
	struct resolved r;
	int rc;

	*eid = *cid = 0;
	if (key != NULL) {
		if (resolve_one(st, key, &r, e) == -1)
			return -1;
		*eid = r.eid;
	}
	if (uuid != NULL) {
		if ((rc = cid_of(st, uuid, cid, e)) == 0)
			mdm_err_set(e, MDM_E_NOINPUT, "%s: no such command",
			    uuid);
		if (rc != 1)
			return -1;
	}
	return 0;
}

int
mdm_state_queue_foreach(struct mdm_state *st,
    const struct mdm_state_queue_filter *f,
    int (*fn)(const struct mdm_state_queue_row *row, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e)
{
	struct mdm_state_queue_row row;
	sqlite3_stmt *s = NULL;
	char sql[1024], list[256];
	unsigned bits = f != NULL && f->statuses ? f->statuses :
	    MDM_STATE_Q_PENDING;
	int64_t eid, cid;
	int rc, ret = -1;

	if (filter_ids(st, f ? f->key : NULL, f ? f->command_uuid : NULL,
	    &eid, &cid, e) == -1)
		return -1;
	status_list(bits, list, sizeof(list));
	snprintf(sql, sizeof(sql),
	    "SELECT e.id, c.uuid, c.request_type, q.status, q.not_now_count, "
	    "coalesce(q.not_now_at, 0), coalesce(q.sent_at, 0), q.created_at, "
	    "q.updated_at FROM queue q "
	    "JOIN enrollments e ON e.eid = q.enrollment "
	    "JOIN commands c ON c.cid = q.command "
	    "WHERE q.status IN (%s)%s%s "
	    "ORDER BY q.created_at, q.command, e.id", list,
	    eid ? " AND q.enrollment = ?1" : "",
	    cid ? " AND q.command = ?2" : "");
	if (prep(st, sql, &s, e) == -1)
		return -1;
	if (eid)
		sqlite3_bind_int64(s, 1, eid);
	if (cid)
		sqlite3_bind_int64(s, 2, cid);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row.enrollment_id = col_text(s, 0);
		row.command_uuid = col_text(s, 1);
		row.request_type = col_text(s, 2);
		row.status = col_text(s, 3);
		row.not_now_count = sqlite3_column_int64(s, 4);
		row.not_now_at = sqlite3_column_int64(s, 5);
		row.sent_at = sqlite3_column_int64(s, 6);
		row.created_at = sqlite3_column_int64(s, 7);
		row.updated_at = sqlite3_column_int64(s, 8);
		if (fn(&row, arg, e) == -1)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		dberr(st, rc, e, "queue");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

int
mdm_state_queue_results_foreach(struct mdm_state *st, const char *key,
    const char *command_uuid,
    int (*fn)(const struct mdm_state_result_row *row, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e)
{
	struct mdm_state_result_row row;
	sqlite3_stmt *s = NULL;
	char sql[768];
	int64_t eid, cid;
	int rc, ret = -1;

	if (filter_ids(st, key, command_uuid, &eid, &cid, e) == -1)
		return -1;
	snprintf(sql, sizeof(sql),
	    "SELECT e.id, c.uuid, c.request_type, r.status, r.error_chain, "
	    "r.raw, r.received_at FROM results r "
	    "JOIN enrollments e ON e.eid = r.enrollment "
	    "LEFT JOIN commands c ON c.cid = r.command WHERE 1%s%s "
	    "ORDER BY r.received_at, r.rid",
	    eid ? " AND r.enrollment = ?1" : "",
	    cid ? " AND r.command = ?2" : "");
	if (prep(st, sql, &s, e) == -1)
		return -1;
	if (eid)
		sqlite3_bind_int64(s, 1, eid);
	if (cid)
		sqlite3_bind_int64(s, 2, cid);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row.enrollment_id = col_text(s, 0);
		row.command_uuid = col_text(s, 1);
		row.request_type = col_text(s, 2);
		row.status = col_text(s, 3);
		row.error_chain = col_text(s, 4);
		row.raw = sqlite3_column_blob(s, 5);
		row.raw_len = (size_t)sqlite3_column_bytes(s, 5);
		row.received_at = sqlite3_column_int64(s, 6);
		if (fn(&row, arg, e) == -1)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		dberr(st, rc, e, "results");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

/*
 * Runs sql (binding ?1 = a, ?2 = t) in transactions until it changes
 * fewer than MDM_STATE_QUEUE_CHUNK rows; adds the rows changed to *n.
 */
static int
batched(struct mdm_state *st, const char *sql, int64_t a, int64_t t,
    int64_t *n, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int changed, ret = -1;

	if (prep(st, sql, &s, e) == -1)
		return -1;
	do {
		if (mdm_state_begin(st, e) == -1)
			goto out;
		sqlite3_bind_int64(s, 1, a);
		sqlite3_bind_int64(s, 2, t);
		if (run(st, s, "queue", e) == -1) {
			mdm_state_rollback(st);
			goto out;
		}
		changed = sqlite3_changes(mdm_state_db(st));
		if (mdm_state_commit(st, e) == -1) {
			mdm_state_rollback(st);
			goto out;
		}
		if (n != NULL)
			*n += changed;
	} while (changed >= MDM_STATE_QUEUE_CHUNK);
	ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

#define STR(x) #x
#define XSTR(x) STR(x)
#define CHUNK_S XSTR(MDM_STATE_QUEUE_CHUNK)

int
mdm_state_queue_cancel(struct mdm_state *st, const char *uuid, int64_t *n,
    struct mdm_err *e)
{
	int64_t cid, dummy = 0;
	int rc;

	if (n == NULL)
		n = &dummy;
	*n = 0;
	if (uuid == NULL || mdm_queue_uuid_check(uuid, NULL) == -1)
		return mdm_err_set(e, MDM_E_NOINPUT, "%.64s: no such command",
		    uuid ? uuid : "");
	if ((rc = cid_of(st, uuid, &cid, e)) == 0)
		return mdm_err_set(e, MDM_E_NOINPUT, "%s: no such command",
		    uuid);
	if (rc == -1)
		return -1;
	return batched(st, "UPDATE queue SET status = 'cancelled', "
	    "offered = 0, updated_at = ?2 WHERE command = ?1 AND enrollment IN "
	    "(SELECT enrollment FROM queue WHERE command = ?1 "
	    "AND status = 'pending' LIMIT " CHUNK_S ")", cid, now_s(), n, e);
}

int
mdm_state_queue_clear(struct mdm_state *st, const char *key, int64_t *n,
    struct mdm_err *e)
{
	struct resolved r;
	int64_t dummy = 0;

	if (n == NULL)
		n = &dummy;
	*n = 0;
	if (resolve_one(st, key, &r, e) == -1)
		return -1;
	return batched(st, "UPDATE queue INDEXED BY queue_pending SET "
	    "status = 'cancelled', offered = 0, updated_at = ?2 "
	    "WHERE enrollment = ?1 AND status = 'pending'", r.eid, now_s(), n, e);
}

static int
pragma_int(struct mdm_state *st, const char *sql, int64_t *out,
    struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (prep(st, sql, &s, e) == -1)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return dberr(st, rc, e, "pragma");
	return 0;
}

/* Runs a pragma that may return rows (incremental_vacuum does). */
static int
pragma_run(struct mdm_state *st, const char *sql, struct mdm_err *e)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (prep(st, sql, &s, e) == -1)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return dberr(st, rc, e, "vacuum");
	return 0;
}

static int
vacuum(struct mdm_state *st, int full, int64_t *freed, struct mdm_err *e)
{
	int64_t mode, size, before, after;

	*freed = 0;
	if (pragma_int(st, "PRAGMA auto_vacuum", &mode, e) == -1 ||
	    pragma_int(st, "PRAGMA page_size", &size, e) == -1 ||
	    pragma_int(st, "PRAGMA page_count", &before, e) == -1)
		return -1;
	if (full) {
		/* Only VACUUM can switch a database with tables. */
		if (mode != 2 && mdm_state_exec(st, "PRAGMA auto_vacuum = "
		    "INCREMENTAL", e) == -1)
			return -1;
		if (mdm_state_exec(st, "VACUUM", e) == -1)
			return -1;
		/* Give the WAL's copy back too; busy readers just delay it. */
		(void)pragma_run(st, "PRAGMA wal_checkpoint(TRUNCATE)", NULL);
	} else if (mode == 2) {
		if (pragma_run(st, "PRAGMA incremental_vacuum", e) == -1)
			return -1;
	}
	if (pragma_int(st, "PRAGMA page_count", &after, e) == -1)
		return -1;
	if (after < before)
		*freed = (before - after) * size;
	return 0;
}

int
mdm_state_queue_purge(struct mdm_state *st, const struct mdm_state_purge *p,
    struct mdm_state_purge_stats *out, struct mdm_err *e)
{
	struct mdm_state_purge_stats dummy;
	char sql[1024], list[256];
	unsigned bits = p->statuses ? p->statuses : MDM_STATE_Q_FINISHED;
	unsigned rbits = bits & (MDM_STATE_Q_ACKNOWLEDGED | MDM_STATE_Q_ERROR |
	    MDM_STATE_Q_FORMAT_ERROR | MDM_STATE_Q_UNPARSEABLE);
	int64_t age = p->older_than < 0 ? MDM_STATE_RETENTION : p->older_than;
	int64_t cutoff = now_s() - age;

	if (out == NULL)
		out = &dummy;
	memset(out, 0, sizeof(*out));
	if (bits & ~(MDM_STATE_Q_PENDING | MDM_STATE_Q_FINISHED))
		return mdm_err_set(e, MDM_E_USAGE, "unknown status bits");

	if (bits & MDM_STATE_Q_FINISHED) {
		status_list(bits & MDM_STATE_Q_FINISHED, list, sizeof(list));
		snprintf(sql, sizeof(sql), "DELETE FROM queue WHERE "
		    "(enrollment, command) IN (SELECT enrollment, command "
		    "FROM queue WHERE status <> 'pending' AND status IN (%s) "
		    "AND updated_at < ?2 AND ?1 = ?1 LIMIT " CHUNK_S ")", list);
		if (batched(st, sql, 0, cutoff, &out->queue_rows, e) == -1)
			return -1;
	}
	if ((bits & MDM_STATE_Q_PENDING) && batched(st, "DELETE FROM queue "
	    "WHERE (enrollment, command) IN (SELECT enrollment, command "
	    "FROM queue WHERE status = 'pending' AND created_at < ?2 "
	    "AND ?1 = ?1 LIMIT " CHUNK_S ")", 0, cutoff, &out->queue_rows,
	    e) == -1)
		return -1;
	if (p->statuses == 0 || rbits != 0) {
		status_list(p->statuses == 0 ? MDM_STATE_Q_FINISHED : rbits,
		    list, sizeof(list));
		snprintf(sql, sizeof(sql), "DELETE FROM results WHERE rid IN "
		    "(SELECT rid FROM results WHERE received_at < ?2 "
		    "AND status IN (%s) AND ?1 = ?1 LIMIT " CHUNK_S ")", list);
		if (batched(st, sql, 0, cutoff, &out->results, e) == -1)
			return -1;
	}
	if (batched(st, "DELETE FROM commands WHERE cid IN (SELECT cid "
	    "FROM commands c WHERE NOT EXISTS (SELECT 1 FROM queue q "
	    "WHERE q.command = c.cid) AND NOT EXISTS (SELECT 1 FROM results r "
	    "WHERE r.command = c.cid) AND ?1 = ?1 AND ?2 = ?2 LIMIT " CHUNK_S
	    ")", 0, 0, &out->commands, e) == -1 ||
	    batched(st, "DELETE FROM command_payloads WHERE pid IN (SELECT pid "
	    "FROM command_payloads p WHERE NOT EXISTS (SELECT 1 FROM commands "
	    "c WHERE c.payload = p.pid) AND ?1 = ?1 AND ?2 = ?2 LIMIT " CHUNK_S
	    ")", 0, 0, &out->payloads, e) == -1)
		return -1;
	return vacuum(st, p->vacuum, &out->bytes_freed, e);
}

int
mdm_state_queue_counts(struct mdm_state *st,
    struct mdm_state_queue_counts *out, struct mdm_err *e)
{
	int64_t *by_status[] = {
		&out->pending, &out->acknowledged, &out->error,
		&out->format_error, &out->unparseable, &out->cancelled,
		&out->superseded,
	};
	sqlite3_stmt *s = NULL;
	const char *name;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	if (prep(st, "SELECT status, count(*), "
	    "sum(status = 'pending' AND not_now_count > 0) "
	    "FROM queue GROUP BY status", &s, e) == -1)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		name = col_text(s, 0);
		for (i = 0; i < MDM_ARRAY_LEN(qstatus_names); i++)
			if (name != NULL && strcmp(name, qstatus_names[i]) == 0)
				*by_status[i] = sqlite3_column_int64(s, 1);
		out->not_now += sqlite3_column_int64(s, 2);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return dberr(st, rc, e, "queue");
	if (pragma_int(st, "SELECT count(*) FROM commands", &out->commands,
	    e) == -1 ||
	    pragma_int(st, "SELECT count(*) FROM command_payloads",
	    &out->payloads, e) == -1 ||
	    pragma_int(st, "SELECT count(*) FROM results", &out->results,
	    e) == -1 ||
	    pragma_int(st, "SELECT count(*) FROM enrollments",
	    &out->enrollments, e) == -1 ||
	    pragma_int(st, "SELECT count(*) FROM enrollments e WHERE "
	    PUSHABLE, &out->pushable, e) == -1)
		return -1;
	return 0;
}
