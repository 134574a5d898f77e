#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "file.h"
#include "migrations.h"
#include "state.h"
#include "state_int.h"
#include "x509.h"
#include "tap.h"

static char root[4096];

static const char *
at(const char *rel)
{
	static char bufs[4][4200];
	static int n;
	char *p = bufs[n++ % 4];

	snprintf(p, sizeof(bufs[0]), "%s/%s", root, rel);
	return p;
}

static int
mode_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == -1)
		return -1;
	return (int)(st.st_mode & 07777);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *
pragma_text(struct mdm_state *st, const char *sql)
{
	static char out[64];
	sqlite3_stmt *stmt = NULL;

	out[0] = '\0';
	if (sqlite3_prepare_v2(mdm_state_db(st), sql, -1, &stmt, NULL) ==
	    SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
		snprintf(out, sizeof(out), "%s",
		    (const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	return out;
}

static void
sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0, i;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct rows {
	char serial[8][65];
	char sha[8][65];
	char kind[8][16];
	char subject[8][64];
	long long not_before[8], not_after[8], revoked_at[8];
	int n;
	int stop_at;
};

static int
collect(const struct mdm_cert_row *row, void *arg, struct mdm_err *e)
{
	struct rows *r = arg;

	if (r->n == r->stop_at)
		return mdm_err_set(e, MDM_E_DATA, "stop at %s", row->serial);
	if (r->n < 8) {
		snprintf(r->serial[r->n], 65, "%s", row->serial);
		snprintf(r->sha[r->n], 65, "%s", row->sha256);
		snprintf(r->kind[r->n], 16, "%s", row->kind);
		snprintf(r->subject[r->n], 64, "%s", row->subject);
		r->not_before[r->n] = row->not_before;
		r->not_after[r->n] = row->not_after;
		r->revoked_at[r->n] = row->revoked_at;
	}
	r->n++;
	return 0;
}

static int
count_certs(struct mdm_state *st)
{
	struct rows r;
	struct mdm_err e;

	memset(&r, 0, sizeof(r));
	r.stop_at = -1;
	if (mdm_state_cert_foreach(st, collect, &r, &e) == -1)
		return -1;
	return r.n;
}

static int
insert(struct mdm_state *st, const char *serial, const char *der,
    long long not_after, struct mdm_err *e)
{
	struct mdm_cert_row row;

	memset(&row, 0, sizeof(row));
	row.serial = serial;
	row.subject = "CN=device";
	row.kind = "device";
	row.not_before = 0;
	row.not_after = not_after;
	return mdm_state_cert_insert(st, &row, (const unsigned char *)der,
	    strlen(der), e);
}

static void
test_layout(void)
{
	struct mdm_state *st = NULL;
	struct mdm_err e;
	char dir[4200];
	int v = -1;

	snprintf(dir, sizeof(dir), "%s", at("s1/state"));

	umask(0);
	ok(mdm_state_open(dir, MDM_STATE_CREATE, &st, &e) == 0,
	    "open with CREATE on a missing directory");
	if (st == NULL) {
		tap_diag("%s", e.msg);
		exit(tap_done());
	}
	umask(022);
	is_int(mode_of(at("s1/state")), 0700, "state dir 0700 under umask 0");
	is_int(mode_of(at("s1/state/ca")), 0700, "ca/ 0700");
	is_int(mode_of(at("s1/state/tls")), 0700, "tls/ 0700");
	is_int(mode_of(at("s1/state/push")), 0700, "push/ 0700");
	is_int(mode_of(at("s1/state/dep")), 0700, "dep/ 0700");
	is_int(mode_of(at("s1/state/signing")), 0700, "signing/ 0700");
	is_int(mode_of(at("s1/state/profiles")), 0755, "profiles/ 0755");
	is_int(mode_of(at("s1/state/mdm.db")), 0600, "mdm.db 0600");
	is_str(mdm_state_dir(st), dir, "mdm_state_dir is the dir given");
	ok(mdm_state_schema_version(st, &v, &e) == 0, "schema version read");
	is_int(v, (long long)mdm_migrations_count,
	    "every migration applied (user_version = count)");
	is_str(pragma_text(st, "PRAGMA journal_mode"), "wal", "WAL mode is on");
	is_str(pragma_text(st, "PRAGMA foreign_keys"), "1", "foreign keys on");
	is_str(pragma_text(st, "PRAGMA synchronous"), "1", "synchronous NORMAL");
	is_str(pragma_text(st, "PRAGMA auto_vacuum"), "2",
	    "a new database vacuums incrementally");
	ok(insert(st, "01", "der-one", 5000, &e) == 0, "insert a certificate");
	is_int(mode_of(at("s1/state/mdm.db-wal")), 0600,
	    "mdm.db-wal inherits 0600");
	mdm_state_close(st);
	st = NULL;

	/* Reopening must not run 0001 again: CREATE TABLE would fail. */
	ok(mdm_state_open(dir, 0, &st, &e) == 0, "reopen without CREATE");
	ok(st != NULL && mdm_state_schema_version(st, &v, &e) == 0 &&
	    v == (int)mdm_migrations_count, "version unchanged on reopen");
	ok(st != NULL && count_certs(st) == 1, "data kept across reopen");
	mdm_state_close(st);
	st = NULL;
	chmod(at("s1/state/ca"), 0750);
	ok(mdm_state_open(dir, MDM_STATE_CREATE, &st, &e) == 0,
	    "reopen with CREATE is a no-op");
	is_int(mode_of(at("s1/state/ca")), 0750, "existing subdir mode kept");
	ok(st != NULL && count_certs(st) == 1, "data kept across CREATE");
	mdm_state_close(st);
	mdm_state_close(NULL);
}

static void
test_missing_and_newer(void)
{
	struct mdm_state *st = NULL;
	struct mdm_err e;
	char sql[64];
	int fd;

	ok(mdm_state_open(at("nope"), 0, &st, &e) == -1 && st == NULL,
	    "missing directory without CREATE fails");
	is_int(e.code, MDM_E_CONFIG, "missing directory is CONFIG");
	ok(strstr(e.msg, "mdm-certs init") != NULL,
	    "message says to run mdm-certs init: %s", e.msg);
	mkdir(at("empty"), 0700);
	ok(mdm_state_open(at("empty"), 0, &st, &e) == -1 &&
	    e.code == MDM_E_CONFIG && strstr(e.msg, "mdm-certs init") != NULL,
	    "directory without mdm.db is CONFIG: %s", e.msg);
	ok(mdm_file_exists(at("empty/mdm.db")) == 0, "and creates nothing");
	fd = open(at("afile"), O_WRONLY | O_CREAT, 0600);
	close(fd);
	ok(mdm_state_open(at("afile"), 0, &st, &e) == -1 &&
	    e.code == MDM_E_CONFIG, "a file as state dir is CONFIG");
	ok(mdm_state_open("", 0, &st, &e) == -1 && e.code == MDM_E_USAGE,
	    "empty dir name is USAGE");

	ok(mdm_state_open(at("newer"), MDM_STATE_CREATE, &st, &e) == 0,
	    "fresh state for the newer-schema test");
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %u",
	    mdm_migrations_count + 1);
	ok(st != NULL && sqlite3_exec(mdm_state_db(st), sql, NULL, NULL,
	    NULL) == SQLITE_OK, "bump user_version past this build");
	mdm_state_close(st);
	st = NULL;
	ok(mdm_state_open(at("newer"), 0, &st, &e) == -1 && st == NULL,
	    "a newer schema is refused");
	is_int(e.code, MDM_E_CONFIG, "newer schema is CONFIG");
	ok(strstr(e.msg, "newer mdm") != NULL, "message: %s", e.msg);
	ok(mdm_state_open(at("newer"), MDM_STATE_CREATE, &st, &e) == -1 &&
	    strstr(e.msg, "newer mdm") != NULL, "also with CREATE");
}

static void
test_busy(void)
{
	struct mdm_state *a = NULL, *b = NULL;
	struct mdm_err e;
	double t0, dt;

	ok(mdm_state_open(at("busy"), MDM_STATE_CREATE, &a, &e) == 0 &&
	    mdm_state_open(at("busy"), 0, &b, &e) == 0, "two handles at once");
	if (a == NULL || b == NULL) {
		tap_skip(8, "no handles");
		goto out;
	}
	ok(mdm_state_begin(a, &e) == 0, "first handle takes the write lock");
	mdm_state_set_busy_timeout(b, 200);
	t0 = now();
	ok(mdm_state_begin(b, &e) == -1, "second writer gives up");
	dt = now() - t0;
	is_int(e.code, MDM_E_TEMPFAIL, "busy is TEMPFAIL");
	ok(dt >= 0.15 && dt < 1.0, "it waited for the timeout (%.3f s)", dt);
	ok(count_certs(b) == 0, "readers are not blocked by the writer");
	ok(insert(a, "0A", "der-a", 100, &e) == 0, "writer inserts");
	ok(mdm_state_commit(a, &e) == 0, "writer commits");
	ok(mdm_state_begin(b, &e) == 0, "second handle gets the lock now");
	ok(count_certs(b) == 1, "and sees the committed row");
	mdm_state_rollback(b);
out:
	mdm_state_close(a);
	mdm_state_close(b);
}

static void
test_tx_and_certs(void)
{
	struct mdm_state *st = NULL;
	struct mdm_cert_row row;
	struct mdm_err e;
	struct rows r;
	char sha[65];
	const char *der3 = "der-three";

	if (mdm_state_open(at("certs"), MDM_STATE_CREATE, &st, &e) == -1) {
		tap_diag("%s", e.msg);
		ok(0, "open for certificates");
		return;
	}
	ok(mdm_state_begin(st, &e) == 0, "begin");
	ok(insert(st, "0B", "der-b", 200, &e) == 0, "insert inside a tx");
	ok(count_certs(st) == 1, "visible inside the tx");
	mdm_state_rollback(st);
	is_int(count_certs(st), 0, "rolled back: nothing left");
	mdm_state_rollback(st);
	ok(1, "rollback without a transaction is a no-op");

	sha256_hex(der3, strlen(der3), sha);
	memset(&row, 0, sizeof(row));
	row.serial = "03";
	row.subject = "CN=three,O=Example";
	row.sha256 = sha;
	row.kind = "device";
	row.not_before = 100;
	row.not_after = 3000;
	row.revoked_at = 2500;
	ok(mdm_state_cert_insert(st, &row, (const unsigned char *)der3,
	    strlen(der3), &e) == 0, "insert with a matching sha256");
	ok(insert(st, "01", "der-one", 9000, &e) == 0, "insert a second");
	ok(insert(st, "02", "der-two", 1000, &e) == 0, "insert a third");

	memset(&r, 0, sizeof(r));
	r.stop_at = -1;
	ok(mdm_state_cert_foreach(st, collect, &r, &e) == 0, "foreach");
	is_int(r.n, 3, "three rows");
	ok(strcmp(r.serial[0], "02") == 0 && strcmp(r.serial[1], "03") == 0 &&
	    strcmp(r.serial[2], "01") == 0, "ordered by not_after");
	is_str(r.subject[1], "CN=three,O=Example", "subject round trip");
	is_str(r.sha[1], sha, "sha256 round trip");
	is_str(r.kind[1], "device", "kind round trip");
	ok(r.not_before[1] == 100 && r.not_after[1] == 3000,
	    "validity round trip");
	ok(r.revoked_at[1] == 2500 && r.revoked_at[0] == 0,
	    "revoked_at round trip, 0 when not revoked");
	sha256_hex("der-two", 7, sha);
	is_str(r.sha[0], sha, "sha256 computed from the DER when NULL");

	memset(&r, 0, sizeof(r));
	r.stop_at = 1;
	ok(mdm_state_cert_foreach(st, collect, &r, &e) == -1 &&
	    e.code == MDM_E_DATA && strstr(e.msg, "03") != NULL,
	    "callback stops foreach with its error");

	ok(insert(st, "01", "other-der", 10, &e) == -1, "duplicate serial");
	is_int(e.code, MDM_E_EXISTS, "duplicate serial is EXISTS");
	ok(insert(st, "04", "der-one", 10, &e) == -1 && e.code == MDM_E_EXISTS,
	    "duplicate fingerprint is EXISTS: %s", e.msg);
	ok(insert(st, "0a", "der-x", 10, &e) == -1 && e.code == MDM_E_DATA,
	    "lowercase serial refused");
	row.serial = "05";
	row.sha256 = "00";
	ok(mdm_state_cert_insert(st, &row, (const unsigned char *)"zz", 2,
	    &e) == -1 && e.code == MDM_E_DATA, "sha256 not matching the DER");
	row.sha256 = NULL;
	row.not_after = 1;
	ok(mdm_state_cert_insert(st, &row, (const unsigned char *)"zz", 2,
	    &e) == -1 && e.code == MDM_E_DATA, "not_after before not_before");
	is_int(count_certs(st), 3, "failed inserts left nothing");

	ok(mdm_state_write_file(st, "ca/ca.key", "KEY", 3, 0600,
	    MDM_FILE_NOREPLACE, &e) == 0, "write_file under the state dir");
	is_int(mode_of(at("certs/ca/ca.key")), 0600, "ca.key 0600");
	ok(mdm_state_write_file(st, "ca/ca.key", "KEY", 3, 0600,
	    MDM_FILE_NOREPLACE, &e) == -1 && e.code == MDM_E_EXISTS,
	    "write_file passes NOREPLACE on");
	{
		struct mdm_x509_opts o = { 0 };
		EVP_PKEY *k = NULL, *k2 = NULL;
		X509 *c = NULL, *c2 = NULL;

		o.kind = MDM_X509_CA;
		o.common_name = "write-pem";
		o.days = 1;
		ok(mdm_x509_gen_rsa(2048, &k, &e) == 0 &&
		    mdm_x509_self_sign(k, &o, &c, &e) == 0, "a test identity");
		ok(mdm_state_write_pem(st, "ca/id.key", NULL, k, 0, &e) == 0 &&
		    mdm_state_write_pem(st, "ca/id.pem", c, NULL, 0, &e) == 0,
		    "write_pem: key, then certificate");
		is_int(mode_of(at("certs/ca/id.key")), 0600, "the key 0600");
		is_int(mode_of(at("certs/ca/id.pem")), 0644, "the certificate "
		    "0644");
		ok(mdm_state_identity(st, "ca/id", NULL, &c2, &k2, &e) == 0 &&
		    X509_cmp(c, c2) == 0 && mdm_x509_key_matches(c2, k2),
		    "they read back as the same identity");
		ok(mdm_state_write_pem(st, "ca/id.pem", c, NULL,
		    MDM_FILE_NOREPLACE, &e) == -1 && e.code == MDM_E_EXISTS,
		    "write_pem passes NOREPLACE on");
		X509_free(c);
		X509_free(c2);
		EVP_PKEY_free(k);
		EVP_PKEY_free(k2);
	}
	mdm_state_close(st);
}

static void
test_paths(void)
{
	struct mdm_state *st = NULL;
	struct mdm_err e;
	char out[4200], tiny[8];

	if (mdm_state_open(at("paths"), MDM_STATE_CREATE, &st, &e) == -1) {
		ok(0, "open for paths: %s", e.msg);
		return;
	}
	ok(mdm_state_path(st, "push/topic.pem", out, sizeof(out), &e) == 0,
	    "path under the state dir");
	is_str(out, at("paths/push/topic.pem"), "joined with a slash");
	ok(mdm_state_path(st, "ca.pem", tiny, sizeof(tiny), &e) == -1 &&
	    e.code == MDM_E_SOFTWARE, "too small a buffer is SOFTWARE");
	ok(mdm_state_path(st, "../x", out, sizeof(out), &e) == -1 &&
	    e.code == MDM_E_USAGE, "../ refused");
	ok(mdm_state_path(st, "push/../../x", out, sizeof(out), &e) == -1,
	    "inner .. refused");
	ok(mdm_state_path(st, "/etc/passwd", out, sizeof(out), &e) == -1,
	    "absolute path refused");
	ok(mdm_state_path(st, "push/..x", out, sizeof(out), &e) == 0,
	    "a name starting with .. is fine");
	mdm_state_close(st);

	/* A symlinked state directory is fine; a symlinked mdm.db is not. */
	symlink("paths", at("plink"));
	st = NULL;
	if (!ok(mdm_state_open(at("plink"), 0, &st, &e) == 0,
	    "state dir reached through a symlink"))
		tap_diag("%s", e.msg);
	mdm_state_close(st);
	mkdir(at("dblink"), 0700);
	symlink("../paths/mdm.db", at("dblink/mdm.db"));
	st = NULL;
	ok(mdm_state_open(at("dblink"), 0, &st, &e) == -1 &&
	    e.code == MDM_E_CONFIG, "symlinked mdm.db refused: %s", e.msg);
}

static void
test_corrupt(void)
{
	unsigned char garbage[8192], after[sizeof(garbage)];
	struct mdm_state *st = NULL;
	struct mdm_err e;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(garbage); i++)
		garbage[i] = (unsigned char)(i * 7919 + 13);
	mkdir(at("corrupt"), 0700);
	fd = open(at("corrupt/mdm.db"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd != -1 && write(fd, garbage, sizeof(garbage)) ==
	    (ssize_t)sizeof(garbage), "garbage mdm.db written");
	close(fd);
	ok(mdm_state_open(at("corrupt"), 0, &st, &e) == -1 && st == NULL,
	    "garbage mdm.db refused");
	is_int(e.code, MDM_E_IO, "garbage is an I/O error (damaged storage)");
	ok(strstr(e.msg, "mdm.db") != NULL &&
	    strstr(e.msg, "not a database") != NULL, "message: %s", e.msg);
	ok(mdm_state_open(at("corrupt"), MDM_STATE_CREATE, &st, &e) == -1 &&
	    e.code == MDM_E_IO, "refused with CREATE too");
	memset(after, 0, sizeof(after));
	fd = open(at("corrupt/mdm.db"), O_RDONLY);
	ok(fd != -1 && read(fd, after, sizeof(after)) ==
	    (ssize_t)sizeof(after) && memcmp(garbage, after,
	    sizeof(garbage)) == 0, "garbage mdm.db left byte for byte");
	close(fd);
}

/* Several tools opening a fresh directory at once: each migration once. */
static void
test_concurrent_init(void)
{
	pid_t pids[4];
	struct mdm_state *st = NULL;
	struct mdm_err e;
	int i, status, good = 0, v = -1;

	for (i = 0; i < 4; i++) {
		if ((pids[i] = fork()) == 0) {
			struct mdm_state *cst = NULL;
			struct mdm_err ce;
			int r;

			r = mdm_state_open(at("race"), MDM_STATE_CREATE, &cst,
			    &ce);
			if (r == -1)
				fprintf(stderr, "child: %s\n", ce.msg);
			mdm_state_close(cst);
			_exit(r == 0 ? 0 : 1);
		}
	}
	for (i = 0; i < 4; i++)
		if (waitpid(pids[i], &status, 0) == pids[i] &&
		    WIFEXITED(status) && WEXITSTATUS(status) == 0)
			good++;
	is_int(good, 4, "four tools initialise one directory at once");
	ok(mdm_state_open(at("race"), 0, &st, &e) == 0 &&
	    mdm_state_schema_version(st, &v, &e) == 0 &&
	    v == (int)mdm_migrations_count, "and the schema is complete");
	mdm_state_close(st);
}

int
main(void)
{
	snprintf(root, sizeof(root), "%s", tap_tmpdir());
	test_layout();
	test_missing_and_newer();
	test_busy();
	test_tx_and_certs();
	test_paths();
	test_corrupt();
	test_concurrent_init();
	return tap_done();
}
