/*
 * state: the state directory and its database, mdm.db.  Every tool and
 * the server open the same directory at the same time, so the database
 * runs in WAL mode with a busy timeout, every write happens inside
 * BEGIN IMMEDIATE (a writer waits for the lock up front instead of
 * failing half-way), and a lock still held after the timeout is
 * MDM_E_TEMPFAIL (exit 75: retry later).
 *
 *   DIR/mdm.db      SQLite, 0600; schema = PRAGMA user_version, moved
 *                   forward by the embedded migrations (migrations.h)
 *   DIR/ca/ tls/ push/ dep/   0700, keys 0600
 *   DIR/profiles/   0755, desired-state profiles
 *
 * All SQL lives in state.c and in later state_*.c files, which reach the
 * sqlite3 handle through the internal header state_int.h; tools see only
 * this API, so a PostgreSQL backend can later sit behind it.
 *
 * A struct mdm_state is used by one thread at a time.
 */
#ifndef MDM_STATE_H
#define MDM_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

struct mdm_state;

enum {
	MDM_STATE_CREATE = 1,	/* create the directory layout if missing */
};

#define MDM_STATE_BUSY_TIMEOUT_MS 5000

/*
 * Opens the state directory dir (the tool resolves it from --state-dir,
 * MDM_STATE_DIR or the compiled-in default; dir is copied).
 *
 * With MDM_STATE_CREATE: mkdir -p dir (0700), ca/ tls/ push/ dep/ (0700)
 * and profiles/ (0755); existing directories keep their modes.  mdm.db
 * is created 0600 (its -wal and -shm files inherit that mode).
 * Without it: a missing dir or mdm.db is MDM_E_CONFIG with a message that
 * says to run `mdm-certs init` or pass --state-dir.
 *
 * mdm.db must be a regular file (a symlink is refused: point --state-dir
 * at the real directory instead).  It is opened with journal_mode=WAL,
 * synchronous=NORMAL, foreign_keys=ON and a busy timeout of
 * MDM_STATE_BUSY_TIMEOUT_MS; pending migrations are applied, each with its
 * user_version bump in one BEGIN IMMEDIATE transaction, so two tools
 * opening a fresh directory at once apply each migration exactly once.
 * A database whose user_version is newer than this build knows is refused
 * (MDM_E_CONFIG, "made by a newer mdm"); a file that is not a database is
 * MDM_E_DATA and is left untouched; a lock held past the timeout is
 * MDM_E_TEMPFAIL.
 *
 * *out is owned by the caller: mdm_state_close it.
 */
int mdm_state_open(const char *dir, unsigned flags, struct mdm_state **out,
    struct mdm_err *e);

/* Rolls back an open transaction and closes.  st may be NULL. */
void mdm_state_close(struct mdm_state *st);

/* The directory as given to mdm_state_open; borrowed, lives as long as st. */
const char *mdm_state_dir(const struct mdm_state *st);

/*
 * Writes dir + "/" + rel into out.  rel must be relative and free of ".."
 * components (MDM_E_USAGE), as parts of it (a push topic) may come from
 * the user.  MDM_E_SOFTWARE when it does not fit in outlen.
 */
int mdm_state_path(const struct mdm_state *st, const char *rel, char *out,
    size_t outlen, struct mdm_err *e);

/*
 * The CA certificate, DIR/ca/ca.pem; *out owned.  Missing: MDM_E_CONFIG,
 * saying to run `mdm-certs init`.
 */
int mdm_state_ca_cert(struct mdm_state *st, X509 **out, struct mdm_err *e);

/*
 * An identity kept in the state directory: DIR/stem.pem and DIR/stem.key
 * (e.g. "signing/signing", "push/TOPIC").  The key file must be private
 * (mdm_file_read_private) and unencrypted, and must belong to the
 * certificate.  A missing certificate is MDM_E_CONFIG, "... is missing: "
 * followed by hint (what to run).  *cert and *key owned; both NULL on
 * failure.
 */
int mdm_state_identity(struct mdm_state *st, const char *stem,
    const char *hint, X509 **cert, EVP_PKEY **key, struct mdm_err *e);

/* The schema version (PRAGMA user_version) of the open database. */
int mdm_state_schema_version(struct mdm_state *st, int *out,
    struct mdm_err *e);

/* How long a write waits for another writer; tests shorten it.  ms >= 0. */
void mdm_state_set_busy_timeout(struct mdm_state *st, int ms);

/*
 * BEGIN IMMEDIATE / COMMIT / ROLLBACK.  Transactions do not nest.  When
 * commit fails the transaction is still open: call mdm_state_rollback.
 * Rollback without a transaction is a no-op.
 */
int mdm_state_begin(struct mdm_state *st, struct mdm_err *e);
int mdm_state_commit(struct mdm_state *st, struct mdm_err *e);
void mdm_state_rollback(struct mdm_state *st);

/*
 * Writes the file rel under the state directory with
 * mdm_file_write_atomic (file_flags: MDM_FILE_NOREPLACE).  Keys get 0600,
 * certificates 0644.  rel is checked as by mdm_state_path.
 */
int mdm_state_write_file(struct mdm_state *st, const char *rel,
    const void *data, size_t len, mode_t mode, unsigned file_flags,
    struct mdm_err *e);

/*
 * Writes cert (0644), or key when cert is NULL (0600), in PEM as rel,
 * with mdm_state_write_file; the PEM of a key lives in wiped memory.
 */
int mdm_state_write_pem(struct mdm_state *st, const char *rel, X509 *cert,
    EVP_PKEY *key, unsigned file_flags, struct mdm_err *e);

/*
 * Certificates the SCEP CA issued (device identities).  mdm-scep fills
 * the table; `mdm-certs list` reads it.
 */
struct mdm_cert_row {
	const char *serial;	/* uppercase hex, unique */
	const char *subject;
	const char *sha256;	/* lowercase hex of the DER, unique */
	const char *kind;	/* "device" for now */
	int64_t not_before, not_after;	/* unix seconds */
	int64_t revoked_at;	/* 0 = not revoked */
};

/*
 * Records a certificate and its DER (at most 1 MiB).  row->sha256 may be
 * NULL: it is then computed from der; when given it must equal the
 * SHA-256 of der (MDM_E_DATA otherwise), since devices are later matched
 * by it.  A serial that is not uppercase hex, or not_after before
 * not_before: MDM_E_DATA.  MDM_E_EXISTS when the serial or the
 * fingerprint is already recorded.  Runs inside the caller's transaction
 * if one is open.
 */
int mdm_state_cert_insert(struct mdm_state *st, const struct mdm_cert_row *row,
    const unsigned char *der, size_t der_len, struct mdm_err *e);

/*
 * Calls fn for each certificate, ordered by not_after, then serial.  fn
 * returns 0 to go on, or -1 with e filled to stop; foreach then returns
 * -1 with fn's error.  The row and its strings are borrowed for the call
 * only.  fn must not use st.
 */
int mdm_state_cert_foreach(struct mdm_state *st,
    int (*fn)(const struct mdm_cert_row *row, void *arg, struct mdm_err *e),
    void *arg, struct mdm_err *e);

#endif
