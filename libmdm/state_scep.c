#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "buf.h"
#include "state.h"
#include "state_int.h"
#include "state_scep.h"
#include "mdm_int.h"

#define TXID_MAX	255

enum stmt_id {
	S_BY_SHA256,
	S_BY_TXID,
	S_BY_SERIAL,
	S_INSERT,
	S_REVOKED_AT,
	S_REVOKE,
	S_REVOKED_LIST,
	S_CH_SWEEP,
	S_CH_ADD,
	S_CH_VALID,
	S_CH_CONSUME,
	S_COUNT
};

#define CERT_COLS \
	"serial, sha256, not_before, not_after, coalesce(revoked_at, 0), der"

static const char *const sql_text[S_COUNT] = {
	[S_BY_SHA256] = "SELECT " CERT_COLS " FROM certificates "
	    "WHERE sha256 = ?",
	/* rowid breaks ties between certificates made in the same second. */
	[S_BY_TXID] = "SELECT " CERT_COLS " FROM certificates "
	    "WHERE transaction_id = ? ORDER BY created_at DESC, rowid DESC "
	    "LIMIT 1",
	[S_BY_SERIAL] = "SELECT " CERT_COLS " FROM certificates "
	    "WHERE serial = ?",
	[S_INSERT] = "INSERT INTO certificates (serial, subject, sha256, "
	    "kind, not_before, not_after, revoked_at, der, created_at, "
	    "transaction_id, renewed_from) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[S_REVOKED_AT] = "SELECT coalesce(revoked_at, 0) FROM certificates "
	    "WHERE serial = ?",
	[S_REVOKE] = "UPDATE certificates SET revoked_at = ? "
	    "WHERE serial = ? AND revoked_at IS NULL",
	[S_REVOKED_LIST] = "SELECT serial, revoked_at FROM certificates "
	    "WHERE revoked_at IS NOT NULL ORDER BY serial",
	[S_CH_SWEEP] = "DELETE FROM scep_challenges WHERE expires_at <= ?",
	[S_CH_ADD] = "INSERT INTO scep_challenges (hash, expires_at, "
	    "created_at) VALUES (?, ?, ?)",
	[S_CH_VALID] = "SELECT 1 FROM scep_challenges "
	    "WHERE hash = ? AND expires_at > ?",
	[S_CH_CONSUME] = "DELETE FROM scep_challenges "
	    "WHERE hash = ? AND expires_at > ?",
};

struct mdm_state_scep {
	struct mdm_state *st;		/* borrowed */
	sqlite3_stmt *stmt[S_COUNT];	/* owned, prepared on first use */
};

int
mdm_state_scep_open(struct mdm_state *st, struct mdm_state_scep **out,
    struct mdm_err *e)
{
	struct mdm_state_scep *ss;

	*out = NULL;
	if (st == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "no state to open");
	if ((ss = calloc(1, sizeof(*ss))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	ss->st = st;
	*out = ss;
	return 0;
}

void
mdm_state_scep_close(struct mdm_state_scep *ss)
{
	size_t i;

	if (ss == NULL)
		return;
	for (i = 0; i < S_COUNT; i++)
		sqlite3_finalize(ss->stmt[i]);
	free(ss);
}

/* The cached statement, reset and unbound, ready for new bindings. */
static sqlite3_stmt *
stmt(struct mdm_state_scep *ss, enum stmt_id id, struct mdm_err *e)
{
	sqlite3_stmt *s = ss->stmt[id];

	if (s == NULL) {
		if (mdm_state_prepare(ss->st, sql_text[id], &s, e) == -1)
			return NULL;
		ss->stmt[id] = s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/*
 * A statement must not stay active after its caller is done: an open
 * read would pin the WAL snapshot, and the blobs it handed out belong to
 * it.  Reset drops both.
 */
static void
done(sqlite3_stmt *s)
{
	if (s != NULL)
		sqlite3_reset(s);
}

void
mdm_state_scep_cert_init(struct mdm_state_scep_cert *c)
{
	memset(c, 0, sizeof(*c));
	mdm_buf_init(&c->der, MDM_CAP_CERT);
}

void
mdm_state_scep_cert_release(struct mdm_state_scep_cert *c)
{
	if (c == NULL)
		return;
	mdm_buf_release(&c->der);
	mdm_state_scep_cert_init(c);
}

static void
copy_text(char *dst, size_t dstlen, const unsigned char *src)
{
	snprintf(dst, dstlen, "%s", src != NULL ? (const char *)src : "");
}

/* Runs a one-row certificate lookup with its one text parameter bound. */
static int
cert_lookup(struct mdm_state_scep *ss, enum stmt_id id, const char *key,
    struct mdm_state_scep_cert *out, struct mdm_err *e)
{
	sqlite3_stmt *s;
	const void *blob;
	int rc, n, ret = -1;

	mdm_state_scep_cert_release(out);
	if ((s = stmt(ss, id, e)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		mdm_state_db_err(ss->st, rc, e, "certificates");
		goto out;
	}
	copy_text(out->serial, sizeof(out->serial), sqlite3_column_text(s, 0));
	copy_text(out->sha256, sizeof(out->sha256), sqlite3_column_text(s, 1));
	out->not_before = sqlite3_column_int64(s, 2);
	out->not_after = sqlite3_column_int64(s, 3);
	out->revoked_at = sqlite3_column_int64(s, 4);
	blob = sqlite3_column_blob(s, 5);
	n = sqlite3_column_bytes(s, 5);
	if (blob == NULL || n <= 0) {
		mdm_err_set(e, MDM_E_IO, "certificate %s: no DER recorded",
		    out->serial);
		goto out;
	}
	if (mdm_buf_append(&out->der, blob, (size_t)n, e) == -1)
		goto out;
	ret = 1;
out:
	done(s);
	if (ret != 1)
		mdm_state_scep_cert_release(out);
	return ret;
}

int
mdm_state_scep_cert_by_sha256(struct mdm_state_scep *ss, const char *sha256,
    struct mdm_state_scep_cert *out, struct mdm_err *e)
{
	return cert_lookup(ss, S_BY_SHA256, sha256, out, e);
}

int
mdm_state_scep_cert_by_transaction(struct mdm_state_scep *ss,
    const char *transaction_id, struct mdm_state_scep_cert *out,
    struct mdm_err *e)
{
	return cert_lookup(ss, S_BY_TXID, transaction_id, out, e);
}

int
mdm_state_scep_cert_by_serial(struct mdm_state_scep *ss, const char *serial,
    struct mdm_state_scep_cert *out, struct mdm_err *e)
{
	return cert_lookup(ss, S_BY_SERIAL, serial, out, e);
}

int
mdm_state_scep_cert_insert(struct mdm_state_scep *ss,
    const struct mdm_cert_row *row, const char *transaction_id,
    const char *renewed_from, const unsigned char *der, size_t der_len,
    struct mdm_err *e)
{
	sqlite3_stmt *s;
	char sha[65];
	size_t n;
	int ret;

	if (mdm_state_cert_check(row, der, der_len, sha, e) == -1)
		return -1;
	if (transaction_id != NULL && ((n = strlen(transaction_id)) == 0 ||
	    n > TXID_MAX))
		return mdm_err_set(e, MDM_E_DATA, "certificate %s: "
		    "transaction id of %zu bytes (1 to %d allowed)",
		    row->serial, n, TXID_MAX);
	if (renewed_from != NULL && (strlen(renewed_from) != 64 ||
	    !mdm_state_is_hex(renewed_from, 0)))
		return mdm_err_set(e, MDM_E_DATA, "certificate %s: renewed "
		    "from '%.70s', not a SHA-256", row->serial, renewed_from);
	if ((s = stmt(ss, S_INSERT, e)) == NULL)
		return -1;
	if (transaction_id != NULL)
		sqlite3_bind_text(s, 10, transaction_id, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 10);
	if (renewed_from != NULL)
		sqlite3_bind_text(s, 11, renewed_from, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 11);
	ret = mdm_state_cert_step_insert(ss->st, s, row, sha, der, der_len, e);
	done(s);
	return ret;
}

int
mdm_state_scep_revoke(struct mdm_state_scep *ss, const char *serial,
    int64_t at, struct mdm_err *e)
{
	sqlite3_stmt *s;
	int rc, ret = -1;

	if ((s = stmt(ss, S_REVOKE, e)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, at);
	sqlite3_bind_text(s, 2, serial, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) != SQLITE_DONE) {
		mdm_state_db_err(ss->st, rc, e, "revoke %s", serial);
		done(s);
		return -1;
	}
	done(s);
	if (sqlite3_changes(mdm_state_db(ss->st)) == 1)
		return 0;
	/* Nothing changed: unknown, or revoked before. */
	if ((s = stmt(ss, S_REVOKED_AT, e)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, serial, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		mdm_err_set(e, MDM_E_NOINPUT, "no certificate with serial %s",
		    serial);
	else if (rc != SQLITE_ROW)
		mdm_state_db_err(ss->st, rc, e, "revoke %s", serial);
	else
		ret = 1;
	done(s);
	return ret;
}

int
mdm_state_scep_revoked_foreach(struct mdm_state_scep *ss,
    int (*fn)(const char *serial, int64_t revoked_at, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e)
{
	sqlite3_stmt *s;
	const unsigned char *serial;
	int rc, ret = -1;

	if ((s = stmt(ss, S_REVOKED_LIST, e)) == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		serial = sqlite3_column_text(s, 0);
		if (fn(serial != NULL ? (const char *)serial : "",
		    sqlite3_column_int64(s, 1), arg, e) == -1)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		mdm_state_db_err(ss->st, rc, e, "revoked certificates");
		goto out;
	}
	ret = 0;
out:
	done(s);
	return ret;
}

static int
check_hash(const char *hash, struct mdm_err *e)
{
	if (hash == NULL || strlen(hash) != 64 || !mdm_state_is_hex(hash, 0))
		return mdm_err_set(e, MDM_E_USAGE, "challenge hash is not 64 "
		    "lowercase hex digits");
	return 0;
}

int
mdm_state_scep_challenge_add(struct mdm_state_scep *ss, const char *hash,
    int64_t expires_at, int64_t now, struct mdm_err *e)
{
	sqlite3_stmt *s;
	int rc;

	if (check_hash(hash, e) == -1)
		return -1;
	if ((s = stmt(ss, S_CH_SWEEP, e)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	if ((rc = sqlite3_step(s)) != SQLITE_DONE) {
		mdm_state_db_err(ss->st, rc, e, "scep challenges");
		done(s);
		return -1;
	}
	done(s);
	if ((s = stmt(ss, S_CH_ADD, e)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, expires_at);
	sqlite3_bind_int64(s, 3, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		mdm_err_set(e, MDM_E_EXISTS, "challenge already recorded");
	else if (rc != SQLITE_DONE)
		mdm_state_db_err(ss->st, rc, e, "scep challenge");
	done(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
mdm_state_scep_challenge_valid(struct mdm_state_scep *ss, const char *hash,
    int64_t now, struct mdm_err *e)
{
	sqlite3_stmt *s;
	int rc;

	if (check_hash(hash, e) == -1)
		return -1;
	if ((s = stmt(ss, S_CH_VALID, e)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		mdm_state_db_err(ss->st, rc, e, "scep challenge");
	done(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
mdm_state_scep_challenge_consume(struct mdm_state_scep *ss, const char *hash,
    int64_t now, struct mdm_err *e)
{
	sqlite3_stmt *s;
	int rc;

	if (check_hash(hash, e) == -1)
		return -1;
	if ((s = stmt(ss, S_CH_CONSUME, e)) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	if ((rc = sqlite3_step(s)) != SQLITE_DONE) {
		mdm_state_db_err(ss->st, rc, e, "scep challenge");
		done(s);
		return -1;
	}
	done(s);
	return sqlite3_changes(mdm_state_db(ss->st)) == 1 ? 1 : 0;
}
