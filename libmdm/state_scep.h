/*
 * state_scep: the SQL behind the SCEP CA (scep.c): issued certificates
 * looked up by fingerprint, transaction and serial, recorded with their
 * SCEP transactionID, revoked; and the one-time challenges, kept only as
 * the lowercase hex SHA-256 of the challenge (migration 0002_scep).
 *
 * A struct mdm_state_scep caches its prepared statements (each is
 * prepared on first use), so the enrolment path parses no SQL after its
 * first request.  It borrows the state handle, which must outlive it, and
 * like that handle it is used by one thread at a time.
 *
 * Writes run inside the caller's transaction when one is open
 * (mdm_state_begin): the SCEP CA consumes a challenge and records the
 * certificate it paid for in one BEGIN IMMEDIATE transaction, which is
 * what makes a one-time challenge work exactly once across threads and
 * processes.  Busy is MDM_E_TEMPFAIL, as everywhere in state.
 */
#ifndef MDM_STATE_SCEP_H
#define MDM_STATE_SCEP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "state.h"

struct mdm_state_scep;

/* *out owned: mdm_state_scep_close it (before st is closed). */
int mdm_state_scep_open(struct mdm_state *st, struct mdm_state_scep **out,
    struct mdm_err *e);
/* Finalizes the cached statements.  ss may be NULL. */
void mdm_state_scep_close(struct mdm_state_scep *ss);

/* One recorded certificate. */
struct mdm_state_scep_cert {
	char serial[65];		/* uppercase hex */
	char sha256[65];		/* lowercase hex of der */
	int64_t not_before, not_after;	/* unix seconds */
	int64_t revoked_at;		/* 0 = not revoked */
	struct mdm_buf der;		/* owned, cap MDM_CAP_CERT */
};
/* Zeroes c and inits der; call before a lookup. */
void mdm_state_scep_cert_init(struct mdm_state_scep_cert *c);
void mdm_state_scep_cert_release(struct mdm_state_scep_cert *c);

/*
 * Lookups: 1 and *out filled when found, 0 when not (out left empty),
 * -1 on a database error.  out must have been initialised.
 * by_transaction returns the newest certificate of that transaction.
 */
int mdm_state_scep_cert_by_sha256(struct mdm_state_scep *ss,
    const char *sha256, struct mdm_state_scep_cert *out, struct mdm_err *e);
int mdm_state_scep_cert_by_transaction(struct mdm_state_scep *ss,
    const char *transaction_id, struct mdm_state_scep_cert *out,
    struct mdm_err *e);
int mdm_state_scep_cert_by_serial(struct mdm_state_scep *ss,
    const char *serial, struct mdm_state_scep_cert *out, struct mdm_err *e);

/*
 * Records a certificate as mdm_state_cert_insert does (same checks, same
 * MDM_E_EXISTS on a serial or fingerprint already recorded, row->sha256
 * may be NULL), plus its SCEP transaction_id (NULL for none; 1 to 255
 * bytes otherwise) and, for a RenewalReq, the lowercase hex SHA-256 of
 * the certificate that signed it (renewed_from; NULL otherwise), by which
 * mdm-serve accepts the renewed identity.  created_at is now.
 */
int mdm_state_scep_cert_insert(struct mdm_state_scep *ss,
    const struct mdm_cert_row *row, const char *transaction_id,
    const char *renewed_from, const unsigned char *der, size_t der_len,
    struct mdm_err *e);

/*
 * Revokes the certificate with this serial (uppercase hex, normalised by
 * the caller) at time at.  0: revoked now; 1: it was already revoked
 * (left as it was); -1 with MDM_E_NOINPUT: no such certificate.
 */
int mdm_state_scep_revoke(struct mdm_state_scep *ss, const char *serial,
    int64_t at, struct mdm_err *e);
/*
 * Calls fn for each revoked certificate, ordered by serial.  fn returns 0
 * to go on or -1 (with e filled) to stop; serial is borrowed for the call
 * only, and fn must not use ss.
 */
int mdm_state_scep_revoked_foreach(struct mdm_state_scep *ss,
    int (*fn)(const char *serial, int64_t revoked_at, void *arg,
    struct mdm_err *e), void *arg, struct mdm_err *e);

/*
 * One-time challenges, by hash (64 lowercase hex digits).
 * add: stores a new one expiring at expires_at and deletes those expired
 * before now; a hash already there is MDM_E_EXISTS.
 * valid: 1 if it exists and has not expired at now, else 0 (read only: a
 * cheap test before spending a signature on a request).
 * consume: deletes it if it exists and has not expired at now; 1 if it
 * did, 0 if there was nothing to consume.  Call it inside the transaction
 * that records the certificate.
 */
int mdm_state_scep_challenge_add(struct mdm_state_scep *ss, const char *hash,
    int64_t expires_at, int64_t now, struct mdm_err *e);
int mdm_state_scep_challenge_valid(struct mdm_state_scep *ss,
    const char *hash, int64_t now, struct mdm_err *e);
int mdm_state_scep_challenge_consume(struct mdm_state_scep *ss,
    const char *hash, int64_t now, struct mdm_err *e);

#endif
