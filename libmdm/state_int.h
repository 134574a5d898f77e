/*
 * state_int: what libmdm's own state_*.c modules (the queue, enrollments,
 * DEP, ...) need to add their SQL beside state.c.  Tools never include
 * it: to them the backend stays hidden behind state.h, so SQL never leaks
 * out of libmdm/state*.c.  These helpers map SQLite's result codes onto
 * struct mdm_err the same way everywhere (busy is MDM_E_TEMPFAIL, a
 * unique or primary key clash MDM_E_EXISTS).
 */
#ifndef MDM_STATE_INT_H
#define MDM_STATE_INT_H

#include <sqlite3.h>

#include "err.h"
#include "state.h"

/* The connection; borrowed, lives as long as st.  One thread at a time. */
sqlite3 *mdm_state_db(struct mdm_state *st);

/*
 * Fills e from the SQLite result code rc and the connection's message:
 * "WHAT: sqlite message".  Call it before anything else touches the
 * connection (a rollback would replace the message).  Returns -1.
 */
int mdm_state_db_err(struct mdm_state *st, int rc, struct mdm_err *e,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* sqlite3_prepare_v2 with the error mapped; *out is owned: finalize it. */
int mdm_state_prepare(struct mdm_state *st, const char *sql,
    sqlite3_stmt **out, struct mdm_err *e);

/*
 * A statement kept prepared across calls, for queries run on every
 * request.  sql must be a string with static storage (a literal): its
 * address is the cache key.  A statement in use is never handed out
 * twice, so nested calls get their own.  Give it back with
 * mdm_state_stmt_done, never sqlite3_finalize: that resets it (so no
 * read transaction stays open) and clears its bindings; it finalizes a
 * statement the full cache could not keep.  stmt may be NULL.
 */
int mdm_state_stmt(struct mdm_state *st, const char *sql, sqlite3_stmt **out,
    struct mdm_err *e);
void mdm_state_stmt_done(struct mdm_state *st, sqlite3_stmt *stmt);

/* Runs SQL that returns no rows (may be several statements). */
int mdm_state_exec(struct mdm_state *st, const char *sql, struct mdm_err *e);

/* Whether s is all hex digits, upper- or lowercase as asked. */
int mdm_state_is_hex(const char *s, int upper);

/*
 * The rules of the certificates table, checked before any insert (so
 * every path keeps one table sane); sha gets the lowercase SHA-256 hex of
 * der.  mdm_state_cert_step_insert binds row as parameters 1 to 9 of an
 * INSERT INTO certificates (serial, subject, sha256, kind, not_before,
 * not_after, revoked_at, der, created_at, ...) the caller prepared (and
 * bound any further parameters of), steps it, and names a duplicate
 * serial or fingerprint MDM_E_EXISTS.
 */
int mdm_state_cert_check(const struct mdm_cert_row *row,
    const unsigned char *der, size_t der_len, char sha[65], struct mdm_err *e);
int mdm_state_cert_step_insert(struct mdm_state *st, sqlite3_stmt *stmt,
    const struct mdm_cert_row *row, const char *sha,
    const unsigned char *der, size_t der_len, struct mdm_err *e);

#endif
