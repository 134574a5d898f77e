#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "buf.h"
#include "file.h"
#include "migrations.h"
#include "state.h"
#include "state_int.h"
#include "x509.h"
#include "ossl_int.h"
#include "mdm_int.h"

/* Room left under PATH_MAX for the names the tools put under dir. */
#define STATE_DIR_MAX	(PATH_MAX - 256)
#define SERIAL_MAX	64

/* Statements kept prepared for the queries a server runs per request. */
#define STMT_CACHE	48

struct cached_stmt {
	const char *sql;	/* the caller's static string: the key */
	sqlite3_stmt *stmt;
	int busy;
};

struct mdm_state {
	sqlite3 *db;
	char *dir;	/* owned, as given */
	char *dbpath;	/* owned: dir/mdm.db, for messages */
	struct cached_stmt cache[STMT_CACHE];
};

static const char *const private_dirs[] = { "ca", "tls", "signing", "push", "dep" };

static const char init_hint[] =
    "run 'mdm-certs init' first, or pass --state-dir";

static enum mdm_errc
sqlite_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return MDM_E_TEMPFAIL;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
		    rc == SQLITE_CONSTRAINT_UNIQUE)
			return MDM_E_EXISTS;
		return MDM_E_DATA;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		/* Damaged storage, not bad input: the sysexits I/O class. */
		return MDM_E_IO;
	case SQLITE_PERM:
	case SQLITE_AUTH:
	case SQLITE_READONLY:
		return MDM_E_PERM;
	case SQLITE_ERROR:	/* bad SQL: ours */
	case SQLITE_NOMEM:
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
	case SQLITE_MISMATCH:
	case SQLITE_INTERNAL:
		return MDM_E_SOFTWARE;
	default:
		return MDM_E_IO;
	}
}

int
mdm_state_db_err(struct mdm_state *st, int rc, struct mdm_err *e,
    const char *fmt, ...)
{
	char what[MDM_ERR_MSG_MAX];
	const char *msg;
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	msg = st != NULL && st->db != NULL ? sqlite3_errmsg(st->db) :
	    sqlite3_errstr(rc);
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		return mdm_err_set(e, MDM_E_TEMPFAIL, "%s: %s: another "
		    "process kept it busy, try again later", what, msg);
	return mdm_err_set(e, sqlite_code(rc), "%s: %s", what, msg);
}

sqlite3 *
mdm_state_db(struct mdm_state *st)
{
	return st->db;
}

int
mdm_state_stmt(struct mdm_state *st, const char *sql, sqlite3_stmt **out,
    struct mdm_err *e)
{
	struct cached_stmt *free_slot = NULL, *c;
	size_t i;
	int rc;

	*out = NULL;
	for (i = 0; i < STMT_CACHE; i++) {
		c = &st->cache[i];
		if (c->sql == sql && !c->busy) {
			c->busy = 1;
			*out = c->stmt;
			return 0;
		}
		if (c->sql == NULL && free_slot == NULL)
			free_slot = c;
	}
	rc = sqlite3_prepare_v3(st->db, sql, -1, free_slot != NULL ?
	    SQLITE_PREPARE_PERSISTENT : 0, out, NULL);
	if (rc != SQLITE_OK) {
		mdm_state_db_err(st, rc, e, "%s", st->dbpath);
		sqlite3_finalize(*out);
		*out = NULL;
		return -1;
	}
	if (free_slot != NULL) {
		free_slot->sql = sql;
		free_slot->stmt = *out;
		free_slot->busy = 1;
	}
	return 0;
}

void
mdm_state_stmt_done(struct mdm_state *st, sqlite3_stmt *stmt)
{
	size_t i;

	if (stmt == NULL)
		return;
	for (i = 0; i < STMT_CACHE; i++)
		if (st->cache[i].stmt == stmt) {
			sqlite3_reset(stmt);
			sqlite3_clear_bindings(stmt);
			st->cache[i].busy = 0;
			return;
		}
	sqlite3_finalize(stmt);
}

int
mdm_state_prepare(struct mdm_state *st, const char *sql, sqlite3_stmt **out,
    struct mdm_err *e)
{
	int rc;

	*out = NULL;
	rc = sqlite3_prepare_v2(st->db, sql, -1, out, NULL);
	if (rc != SQLITE_OK) {
		mdm_state_db_err(st, rc, e, "%s", st->dbpath);
		sqlite3_finalize(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int
mdm_state_exec(struct mdm_state *st, const char *sql, struct mdm_err *e)
{
	int rc;

	rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return mdm_state_db_err(st, rc, e, "%s", st->dbpath);
	return 0;
}

/* Runs a one-row, one-column query such as a PRAGMA. */
static int
query_int(struct mdm_state *st, const char *sql, int *out, struct mdm_err *e)
{
	sqlite3_stmt *stmt = NULL;
	int rc, ret = -1;

	if (mdm_state_prepare(st, sql, &stmt, e) == -1)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		mdm_state_db_err(st, rc, e, "%s", st->dbpath);
		goto out;
	}
	*out = sqlite3_column_int(stmt, 0);
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

static int
make_layout(const char *dir, struct mdm_err *e)
{
	char path[PATH_MAX];
	size_t i;

	if (mdm_file_mkdir_p(dir, 0700, e) == -1)
		return -1;
	for (i = 0; i < MDM_ARRAY_LEN(private_dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, private_dirs[i]);
		if (mdm_file_mkdir_p(path, 0700, e) == -1)
			return -1;
	}
	snprintf(path, sizeof(path), "%s/profiles", dir);
	return mdm_file_mkdir_p(path, 0755, e);
}

/*
 * Finds mdm.db, creating it empty with 0600 when asked: SQLite would
 * create it with 0644 less the umask, and the database holds push and
 * unlock tokens.  SQLite gives -wal and -shm the database file's mode.
 */
static int
find_db(struct mdm_state *st, unsigned flags, struct mdm_err *e)
{
	struct stat sb;
	int fd;

	if (lstat(st->dbpath, &sb) == -1) {
		if (errno != ENOENT)
			return mdm_err_set_sys(e, errno == EACCES ?
			    MDM_E_PERM : MDM_E_IO, errno, "%s", st->dbpath);
		if (!(flags & MDM_STATE_CREATE))
			return mdm_err_set(e, MDM_E_CONFIG, "%s: no mdm.db in "
			    "the state directory: %s", st->dir, init_hint);
		fd = open(st->dbpath,
		    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd == -1 && errno != EEXIST)
			return mdm_err_set_sys(e, errno == EACCES ?
			    MDM_E_PERM : MDM_E_IO, errno, "%s", st->dbpath);
		if (fd != -1) {
			/* Exactly 0600: a umask like 0200 must not make it 0400. */
			if (fchmod(fd, 0600) == -1) {
				mdm_err_set_sys(e, MDM_E_IO, errno, "%s",
				    st->dbpath);
				close(fd);
				return -1;
			}
			close(fd);
		}
		/* EEXIST: another tool created it first; look again. */
		if (lstat(st->dbpath, &sb) == -1)
			return mdm_err_set_sys(e, MDM_E_IO, errno, "%s",
			    st->dbpath);
	}
	if (S_ISLNK(sb.st_mode))
		return mdm_err_set(e, MDM_E_CONFIG, "%s: is a symlink: pass "
		    "the directory it lives in as --state-dir", st->dbpath);
	if (!S_ISREG(sb.st_mode))
		return mdm_err_set(e, MDM_E_CONFIG, "%s: not a regular file",
		    st->dbpath);
	return 0;
}

static int
open_db(struct mdm_state *st, struct mdm_err *e)
{
	sqlite3_stmt *stmt = NULL;
	const char *mode;
	int rc, flags, ret = -1;

	/*
	 * No SQLITE_OPEN_CREATE: find_db made the file.  No
	 * SQLITE_OPEN_NOFOLLOW: it refuses a symlink anywhere in the path
	 * (a state directory under a symlinked /var); find_db refused a
	 * symlinked mdm.db already.
	 */
	flags = SQLITE_OPEN_READWRITE;
#ifdef SQLITE_OPEN_EXRESCODE
	flags |= SQLITE_OPEN_EXRESCODE;
#endif
	rc = sqlite3_open_v2(st->dbpath, &st->db, flags, NULL);
	if (rc != SQLITE_OK) {
		if (st->db == NULL)
			return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		return mdm_state_db_err(st, rc, e, "%s", st->dbpath);
	}
	sqlite3_extended_result_codes(st->db, 1);
	/* SQLite quietly opens a file it may not write read-only. */
	if (sqlite3_db_readonly(st->db, "main") == 1)
		return mdm_err_set(e, MDM_E_PERM, "%s: not writable by this "
		    "user", st->dbpath);
	sqlite3_busy_timeout(st->db, MDM_STATE_BUSY_TIMEOUT_MS);
#ifdef SQLITE_DBCONFIG_DEFENSIVE
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
#endif
#ifdef SQLITE_DBCONFIG_TRUSTED_SCHEMA
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
#endif
	/*
	 * The first statements that read the file: garbage fails here.
	 * auto_vacuum lets purge hand space back (incremental_vacuum); it
	 * takes only before the header is written, that is on a new
	 * database, and is a no-op on an older one until a VACUUM
	 * (mdm-queue purge --vacuum).
	 */
	if (mdm_state_exec(st, "PRAGMA auto_vacuum = INCREMENTAL", e) == -1)
		goto out;
	if (mdm_state_prepare(st, "PRAGMA journal_mode = WAL", &stmt, e) == -1)
		goto out;
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		mdm_state_db_err(st, rc, e, "%s", st->dbpath);
		goto out;
	}
	mode = (const char *)sqlite3_column_text(stmt, 0);
	if (mode == NULL || strcasecmp(mode, "wal") != 0) {
		mdm_err_set(e, MDM_E_CONFIG, "%s: cannot use WAL mode (got "
		    "%s); is the state directory on a network file system?",
		    st->dbpath, mode ? mode : "nothing");
		goto out;
	}
	if (mdm_state_exec(st, "PRAGMA synchronous = NORMAL", e) == -1 ||
	    mdm_state_exec(st, "PRAGMA foreign_keys = ON", e) == -1)
		goto out;
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}

static int
newer_error(struct mdm_state *st, int have, int known, struct mdm_err *e)
{
	return mdm_err_set(e, MDM_E_CONFIG, "%s: made by a newer mdm (schema "
	    "version %d, this build knows up to %d): upgrade mdm", st->dbpath,
	    have, known);
}

/*
 * Applies each pending migration with its user_version bump in one
 * transaction.  The version is read again once the write lock is held:
 * another tool may have migrated meanwhile.
 */
static int
migrate(struct mdm_state *st, struct mdm_err *e)
{
	const struct mdm_migration *m;
	char sql[64];
	int known, have;
	unsigned i;

	for (i = 0; i < mdm_migrations_count; i++)
		if (mdm_migrations[i].version != (int)i + 1)
			return mdm_err_set(e, MDM_E_SOFTWARE, "migration %s is "
			    "out of sequence", mdm_migrations[i].name);
	known = (int)mdm_migrations_count;
	if (query_int(st, "PRAGMA user_version", &have, e) == -1)
		return -1;
	if (have > known)
		return newer_error(st, have, known, e);
	if (have < 0)
		return mdm_err_set(e, MDM_E_DATA, "%s: bad schema version %d",
		    st->dbpath, have);
	while (have < known) {
		if (mdm_state_begin(st, e) == -1)
			return -1;
		if (query_int(st, "PRAGMA user_version", &have, e) == -1)
			goto fail;
		if (have > known) {
			newer_error(st, have, known, e);
			goto fail;
		}
		if (have < 0) {
			mdm_err_set(e, MDM_E_DATA, "%s: bad schema version "
			    "%d", st->dbpath, have);
			goto fail;
		}
		if (have == known) {
			mdm_state_rollback(st);
			break;
		}
		m = &mdm_migrations[have];
		if (sqlite3_exec(st->db, m->sql, NULL, NULL, NULL) !=
		    SQLITE_OK) {
			mdm_state_db_err(st, sqlite3_extended_errcode(st->db),
			    e, "%s: migration %s", st->dbpath, m->name);
			goto fail;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		    m->version);
		if (mdm_state_exec(st, sql, e) == -1 ||
		    mdm_state_commit(st, e) == -1)
			goto fail;
		have = m->version;
	}
	return 0;
fail:
	mdm_state_rollback(st);
	return -1;
}

int
mdm_state_open(const char *dir, unsigned flags, struct mdm_state **out,
    struct mdm_err *e)
{
	struct mdm_state *st = NULL;
	struct stat sb;
	size_t len;
	int rc = -1;

	*out = NULL;
	if (dir == NULL || *dir == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "empty state directory name");
	if ((len = strlen(dir)) > STATE_DIR_MAX)
		return mdm_err_set(e, MDM_E_USAGE,
		    "%.64s...: state directory name too long", dir);
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->dir = strdup(dir)) == NULL ||
	    (st->dbpath = malloc(len + sizeof("/mdm.db"))) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	snprintf(st->dbpath, len + sizeof("/mdm.db"), "%s/mdm.db", dir);
	if (flags & MDM_STATE_CREATE) {
		if (make_layout(dir, e) == -1)
			goto out;
	} else if (stat(dir, &sb) == -1) {
		if (errno == ENOENT)
			mdm_err_set(e, MDM_E_CONFIG, "state directory %s does "
			    "not exist: %s", dir, init_hint);
		else
			mdm_err_set_sys(e, errno == EACCES ? MDM_E_PERM :
			    MDM_E_IO, errno, "state directory %s", dir);
		goto out;
	} else if (!S_ISDIR(sb.st_mode)) {
		mdm_err_set(e, MDM_E_CONFIG, "state directory %s is not a "
		    "directory", dir);
		goto out;
	}
	if (find_db(st, flags, e) == -1 || open_db(st, e) == -1 ||
	    migrate(st, e) == -1)
		goto out;
	*out = st;
	st = NULL;
	rc = 0;
out:
	mdm_state_close(st);
	return rc;
}

void
mdm_state_close(struct mdm_state *st)
{
	size_t i;

	if (st == NULL)
		return;
	if (st->db != NULL) {
		for (i = 0; i < STMT_CACHE; i++)
			sqlite3_finalize(st->cache[i].stmt);
		mdm_state_rollback(st);
		sqlite3_close_v2(st->db);
	}
	free(st->dir);
	free(st->dbpath);
	free(st);
}

const char *
mdm_state_dir(const struct mdm_state *st)
{
	return st->dir;
}

/* rel may carry user input (a topic): keep it inside the directory. */
static int
check_rel(const char *rel, struct mdm_err *e)
{
	const char *p = rel, *end;
	size_t n;

	if (rel == NULL || *rel == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "empty file name");
	if (*rel == '/')
		return mdm_err_set(e, MDM_E_USAGE, "%s: must be relative to "
		    "the state directory", rel);
	for (;;) {
		end = strchr(p, '/');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return mdm_err_set(e, MDM_E_USAGE, "%s: leaves the "
			    "state directory", rel);
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

int
mdm_state_path(const struct mdm_state *st, const char *rel, char *out,
    size_t outlen, struct mdm_err *e)
{
	int n;

	if (check_rel(rel, e) == -1)
		return -1;
	n = snprintf(out, outlen, "%s/%s", st->dir, rel);
	if (n < 0 || (size_t)n >= outlen)
		return mdm_err_set(e, MDM_E_SOFTWARE, "%s/%s: path longer "
		    "than %zu bytes", st->dir, rel, outlen);
	return 0;
}

int
mdm_state_ca_cert(struct mdm_state *st, X509 **out, struct mdm_err *e)
{
	char path[PATH_MAX];

	*out = NULL;
	if (mdm_state_path(st, "ca/ca.pem", path, sizeof(path), e) == -1)
		return -1;
	if (!mdm_file_exists(path))
		return mdm_err_set(e, MDM_E_CONFIG, "%s is missing: run "
		    "'mdm-certs init' first", path);
	return mdm_x509_load_cert(path, out, e);
}

int
mdm_state_identity(struct mdm_state *st, const char *stem, const char *hint,
    X509 **cert, EVP_PKEY **key, struct mdm_err *e)
{
	char rel[PATH_MAX], cpath[PATH_MAX], kpath[PATH_MAX];
	struct mdm_buf b;
	int rc = -1;

	*cert = NULL;
	*key = NULL;
	mdm_buf_init_secret(&b, MDM_CAP_CERT);
	if (snprintf(rel, sizeof(rel), "%s.pem", stem) >= (int)sizeof(rel) ||
	    mdm_state_path(st, rel, cpath, sizeof(cpath), e) == -1 ||
	    snprintf(rel, sizeof(rel), "%s.key", stem) >= (int)sizeof(rel) ||
	    mdm_state_path(st, rel, kpath, sizeof(kpath), e) == -1) {
		mdm_err_set(e, MDM_E_USAGE, "identity '%.64s': bad name", stem);
		goto out;
	}
	if (!mdm_file_exists(cpath)) {
		mdm_err_set(e, MDM_E_CONFIG, "%s is missing: %s", cpath, hint);
		goto out;
	}
	if (mdm_x509_load_cert(cpath, cert, e) == -1 ||
	    mdm_file_read_private(kpath, &b, e) == -1)
		goto out;
	if (mdm_x509_key_from_mem(b.data, b.len, NULL, key, e) == -1) {
		mdm_err_prefix(e, "%s", kpath);
		goto out;
	}
	if (!mdm_x509_key_matches(*cert, *key)) {
		mdm_err_set(e, MDM_E_CONFIG, "%s does not belong to %s", kpath,
		    cpath);
		goto out;
	}
	rc = 0;
out:
	mdm_buf_release_secret(&b);
	if (rc == -1) {
		X509_free(*cert);
		EVP_PKEY_free(*key);
		*cert = NULL;
		*key = NULL;
	}
	return rc;
}

int
mdm_state_schema_version(struct mdm_state *st, int *out, struct mdm_err *e)
{
	return query_int(st, "PRAGMA user_version", out, e);
}

void
mdm_state_set_busy_timeout(struct mdm_state *st, int ms)
{
	sqlite3_busy_timeout(st->db, ms < 0 ? 0 : ms);
}

/* BEGIN and COMMIT come with every write: kept prepared. */
static int
step_cached(struct mdm_state *st, const char *sql, const char *what,
    struct mdm_err *e)
{
	sqlite3_stmt *s;
	int rc, ret = 0;

	if (mdm_state_stmt(st, sql, &s, e) == -1)
		return -1;
	if ((rc = sqlite3_step(s)) != SQLITE_DONE)
		ret = mdm_state_db_err(st, rc, e, "%s: %s", st->dbpath, what);
	mdm_state_stmt_done(st, s);
	return ret;
}

int
mdm_state_begin(struct mdm_state *st, struct mdm_err *e)
{
	static const char sql[] = "BEGIN IMMEDIATE";

	return step_cached(st, sql, "begin", e);
}

int
mdm_state_commit(struct mdm_state *st, struct mdm_err *e)
{
	static const char sql[] = "COMMIT";

	return step_cached(st, sql, "commit", e);
}

void
mdm_state_rollback(struct mdm_state *st)
{
	if (st == NULL || st->db == NULL || sqlite3_get_autocommit(st->db))
		return;
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

int
mdm_state_write_file(struct mdm_state *st, const char *rel, const void *data,
    size_t len, mode_t mode, unsigned file_flags, struct mdm_err *e)
{
	char path[PATH_MAX];

	if (mdm_state_path(st, rel, path, sizeof(path), e) == -1)
		return -1;
	return mdm_file_write_atomic(path, data, len, mode, file_flags, e);
}

int
mdm_state_write_pem(struct mdm_state *st, const char *rel, X509 *cert,
    EVP_PKEY *key, unsigned file_flags, struct mdm_err *e)
{
	struct mdm_buf b;
	int rc = -1;

	mdm_buf_init_secret(&b, MDM_CAP_CERT);
	if (cert != NULL ? mdm_x509_cert_to_pem(cert, &b, e) :
	    mdm_x509_key_to_pem(key, &b, e))
		goto out;
	rc = mdm_state_write_file(st, rel, b.data, b.len,
	    cert != NULL ? 0644 : 0600, file_flags, e);
out:
	mdm_buf_release_secret(&b);
	return rc;
}

int
mdm_state_is_hex(const char *s, int upper)
{
	for (; *s != '\0'; s++) {
		if (*s >= '0' && *s <= '9')
			continue;
		if (upper ? (*s >= 'A' && *s <= 'F') : (*s >= 'a' && *s <= 'f'))
			continue;
		return 0;
	}
	return 1;
}

int
mdm_state_cert_check(const struct mdm_cert_row *row,
    const unsigned char *der, size_t der_len, char sha[65], struct mdm_err *e)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t n;

	if (row->serial == NULL || (n = strlen(row->serial)) == 0 ||
	    n > SERIAL_MAX || !mdm_state_is_hex(row->serial, 1))
		return mdm_err_set(e, MDM_E_DATA, "certificate serial \"%.64s\" "
		    "is not uppercase hex of 1 to %d digits",
		    row->serial ? row->serial : "", SERIAL_MAX);
	if (row->subject == NULL || row->kind == NULL || *row->kind == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "certificate %s: subject "
		    "and kind are required", row->serial);
	if (row->not_after < row->not_before || row->revoked_at < 0)
		return mdm_err_set(e, MDM_E_DATA, "certificate %s: bad "
		    "validity times", row->serial);
	if (der == NULL || der_len == 0 || der_len > MDM_CAP_CERT)
		return mdm_err_set(e, MDM_E_DATA, "certificate %s: DER of "
		    "%zu bytes (1 to %u allowed)", row->serial, der_len,
		    MDM_CAP_CERT);
	if (EVP_Digest(der, der_len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sha256");
	mdm_hex_lower(md, mdlen, sha);
	if (row->sha256 != NULL && strcmp(row->sha256, sha) != 0)
		return mdm_err_set(e, MDM_E_DATA, "certificate %s: sha256 %.64s "
		    "is not the lowercase SHA-256 of its DER", row->serial,
		    row->sha256);
	return 0;
}

int
mdm_state_cert_step_insert(struct mdm_state *st, sqlite3_stmt *stmt,
    const struct mdm_cert_row *row, const char *sha,
    const unsigned char *der, size_t der_len, struct mdm_err *e)
{
	int rc;

	sqlite3_bind_text(stmt, 1, row->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, row->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, sha, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, row->kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, row->not_before);
	sqlite3_bind_int64(stmt, 6, row->not_after);
	if (row->revoked_at != 0)
		sqlite3_bind_int64(stmt, 7, row->revoked_at);
	else
		sqlite3_bind_null(stmt, 7);
	sqlite3_bind_blob(stmt, 8, der, (int)der_len, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 9, (sqlite3_int64)time(NULL));
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return mdm_err_set(e, MDM_E_EXISTS, "certificate serial %s is "
		    "already recorded", row->serial);
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return mdm_err_set(e, MDM_E_EXISTS, "certificate with sha256 %s "
		    "is already recorded", sha);
	if (rc != SQLITE_DONE)
		return mdm_state_db_err(st, rc, e, "%s: certificate %s",
		    st->dbpath, row->serial);
	return 0;
}

int
mdm_state_cert_insert(struct mdm_state *st, const struct mdm_cert_row *row,
    const unsigned char *der, size_t der_len, struct mdm_err *e)
{
	static const char sql[] =
	    "INSERT INTO certificates (serial, subject, sha256, kind, "
	    "not_before, not_after, revoked_at, der, created_at) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *stmt = NULL;
	char sha[65];
	int ret;

	if (mdm_state_cert_check(row, der, der_len, sha, e) == -1 ||
	    mdm_state_prepare(st, sql, &stmt, e) == -1)
		return -1;
	ret = mdm_state_cert_step_insert(st, stmt, row, sha, der, der_len, e);
	sqlite3_finalize(stmt);
	return ret;
}

static const char *
col_text(sqlite3_stmt *stmt, int i)
{
	const unsigned char *s = sqlite3_column_text(stmt, i);

	return s != NULL ? (const char *)s : "";
}

int
mdm_state_cert_foreach(struct mdm_state *st,
    int (*fn)(const struct mdm_cert_row *row, void *arg, struct mdm_err *e),
    void *arg, struct mdm_err *e)
{
	static const char sql[] =
	    "SELECT serial, subject, sha256, kind, not_before, not_after, "
	    "coalesce(revoked_at, 0) FROM certificates "
	    "ORDER BY not_after, serial";
	struct mdm_cert_row row;
	sqlite3_stmt *stmt = NULL;
	int rc, ret = -1;

	if (mdm_state_prepare(st, sql, &stmt, e) == -1)
		return -1;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		row.serial = col_text(stmt, 0);
		row.subject = col_text(stmt, 1);
		row.sha256 = col_text(stmt, 2);
		row.kind = col_text(stmt, 3);
		row.not_before = sqlite3_column_int64(stmt, 4);
		row.not_after = sqlite3_column_int64(stmt, 5);
		row.revoked_at = sqlite3_column_int64(stmt, 6);
		if (fn(&row, arg, e) == -1)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		mdm_state_db_err(st, rc, e, "%s: certificates", st->dbpath);
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	return ret;
}
