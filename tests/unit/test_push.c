/*
 * push: the library mdm-push and `mdm-queue enqueue --push` share, against
 * tests/tools/apns_mock (in $MDM_BIN; skipped when absent) with
 * certificates made here as in test_apns.c, over a fresh state directory.
 * Checks each outcome: ok (and the request the mock saw), token-dead
 * (stored on the enrollment), unknown, skipped (disabled), no-push-cert
 * (a topic without STATE/push/TOPIC.pem) and topic-failed (403
 * BadCertificate), the stats and exit status rule, progress, and the pure
 * helpers (URL parsing, outcome names).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/wait.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "buf.h"
#include "cli.h"
#include "apns.h"
#include "push.h"
#include "state.h"
#include "state_int.h"
#include "state_queue.h"
#include "x509.h"
#include "tap.h"

#define TOPIC	"com.apple.mgmt.External.push-test"
#define NOCERT	"com.apple.mgmt.External.no-cert"
#define MAXREC	16

static char dir[1024], bin[1024];
static char ca_pem[1100], srv_pem[1100], srv_key[1100];
static X509 *client_cert;
static EVP_PKEY *client_key;
static struct mdm_state *st;

/* What report() was told, in order. */
struct rec {
	char id[64];
	enum mdm_push_outcome o;
	int status;
	char reason[MDM_ERR_MSG_MAX];
};
struct recs {
	struct rec v[MAXREC];
	size_t n;
	unsigned long long last_done, last_total;
	int progress_calls;
};

static int
on_report(void *arg, const char *id, enum mdm_push_outcome o, int status,
    const char *reason, struct mdm_err *e)
{
	struct recs *r = arg;

	(void)e;
	if (r->n == MAXREC)
		return 0;
	snprintf(r->v[r->n].id, sizeof(r->v[r->n].id), "%s", id);
	r->v[r->n].o = o;
	r->v[r->n].status = status;
	snprintf(r->v[r->n].reason, sizeof(r->v[r->n].reason), "%s", reason);
	r->n++;
	return 0;
}

static void
on_progress(void *arg, unsigned long long done, unsigned long long total)
{
	struct recs *r = arg;

	r->last_done = done;
	r->last_total = total;
	r->progress_calls++;
}

static const struct rec *
find(const struct recs *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->v[i].id, id) == 0)
			return &r->v[i];
	return NULL;
}

/* A CA, the mock's server certificate, and a push identity it issued. */
static int
make_certs(void)
{
	static const char *const names[] = { "localhost", "127.0.0.1" };
	struct mdm_x509_opts o;
	struct mdm_err e = { 0 };
	EVP_PKEY *k = NULL;
	X509 *ca = NULL, *srv = NULL;
	int rc = -1;

	if (mdm_x509_gen_rsa(2048, &k, &e) == -1)
		goto out;
	memset(&o, 0, sizeof(o));
	o.days = 2;
	o.kind = MDM_X509_CA;
	o.common_name = "push test CA";
	if (mdm_x509_self_sign(k, &o, &ca, &e) == -1)
		goto out;
	o.kind = MDM_X509_TLS_SERVER;
	o.common_name = "localhost";
	o.dns_names = names;
	o.n_dns_names = 2;
	if (mdm_x509_issue(ca, k, k, &o, &srv, &e) == -1)
		goto out;
	o.kind = MDM_X509_CLIENT;
	o.common_name = "APSP:push-test";
	o.dns_names = NULL;
	o.n_dns_names = 0;
	if (mdm_x509_issue(ca, k, k, &o, &client_cert, &e) == -1)
		goto out;
	client_key = k;
	k = NULL;
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", dir);
	snprintf(srv_pem, sizeof(srv_pem), "%s/server.pem", dir);
	snprintf(srv_key, sizeof(srv_key), "%s/server.key", dir);
	if (tap_write_pem(ca_pem, ca, NULL) == -1 ||
	    tap_write_pem(srv_pem, srv, NULL) == -1 ||
	    tap_write_pem(srv_key, NULL, client_key) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		tap_diag("certificates: %s", e.msg);
	EVP_PKEY_free(k);
	X509_free(ca);
	X509_free(srv);
	return rc;
}

/* STATE/push/TOPIC.pem and .key, as mdm-certs push-import leaves them. */
static int
install_identity(void)
{
	struct mdm_buf b;
	struct mdm_err e = { 0 };
	int rc = -1;

	mdm_buf_init_secret(&b, 1 << 20);
	if (mdm_x509_cert_to_pem(client_cert, &b, &e) == -1 ||
	    mdm_state_write_file(st, "push/" TOPIC ".pem", b.data, b.len,
	    0644, 0, &e) == -1)
		goto out;
	mdm_buf_release_secret(&b);
	mdm_buf_init_secret(&b, 1 << 20);
	if (mdm_x509_key_to_pem(client_key, &b, &e) == -1 ||
	    mdm_state_write_file(st, "push/" TOPIC ".key", b.data, b.len,
	    0600, 0, &e) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		tap_diag("push identity: %s", e.msg);
	mdm_buf_release_secret(&b);
	return rc;
}

struct mock {
	pid_t pid;
	char port[16];
	char log[1100];
};

static int
mock_start(struct mock *m)
{
	char portfile[1100];
	const char *argv[16];
	size_t n = 0;

	snprintf(portfile, sizeof(portfile), "%s/mock.port", dir);
	snprintf(m->log, sizeof(m->log), "%s/mock.log", dir);
	argv[n++] = bin;
	argv[n++] = "--cert";
	argv[n++] = srv_pem;
	argv[n++] = "--key";
	argv[n++] = srv_key;
	argv[n++] = "--client-ca";
	argv[n++] = ca_pem;
	argv[n++] = "--port-file";
	argv[n++] = portfile;
	argv[n++] = "--log";
	argv[n++] = m->log;
	argv[n] = NULL;
	return tap_spawn(argv, portfile, &m->pid, m->port, sizeof(m->port));
}

static void
mock_stop(struct mock *m)
{
	tap_stop(m->pid);
}

/* Lines of the mock's log whose token starts with prefix. */
static int
log_count(const struct mock *m, const char *prefix)
{
	char line[2048];
	int n = 0;
	FILE *f;

	if ((f = fopen(m->log, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, prefix, strlen(prefix)) == 0)
			n++;
	fclose(f);
	return n;
}

static void
sql_exec(const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(mdm_state_db(st), sql, NULL, NULL, &msg) != SQLITE_OK)
		tap_diag("%s: %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
}

static long long
sql_int(const char *sql)
{
	sqlite3_stmt *s = NULL;
	long long v = -1;

	if (sqlite3_prepare_v2(mdm_state_db(st), sql, -1, &s, NULL) ==
	    SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	else
		tap_diag("%s: %s", sql, sqlite3_errmsg(mdm_state_db(st)));
	sqlite3_finalize(s);
	return v;
}

static void
config(struct mdm_push_config *c, const struct mock *m, struct recs *r)
{
	memset(c, 0, sizeof(*c));
	c->host = "127.0.0.1";
	c->port = m->port;
	c->ca_file = ca_pem;
	c->report = on_report;
	c->progress = on_progress;
	c->arg = r;
}

static void
test_helpers(void)
{
	char host[MDM_PUSH_HOST_MAX], port[MDM_PUSH_PORT_MAX];
	struct mdm_push_stats s;
	struct mdm_err e = { 0 };

	ok(mdm_push_parse_url("https://api.push.apple.com", host,
	    sizeof(host), port, sizeof(port), &e) == 0 &&
	    strcmp(host, "api.push.apple.com") == 0 &&
	    strcmp(port, "443") == 0, "url: host, port 443 by default");
	ok(mdm_push_parse_url("https://[::1]:2197/", host, sizeof(host),
	    port, sizeof(port), &e) == 0 && strcmp(host, "::1") == 0 &&
	    strcmp(port, "2197") == 0, "url: an IPv6 literal and a port");
	ok(mdm_push_parse_url("http://x", host, sizeof(host), port,
	    sizeof(port), &e) == -1 && e.code == MDM_E_USAGE,
	    "url: not https is a usage error");
	ok(mdm_push_parse_url("https://x:44a", host, sizeof(host), port,
	    sizeof(port), &e) == -1, "url: a port that is not a number");
	ok(mdm_push_server(NULL, 0, host, sizeof(host), port, sizeof(port),
	    &e) == 0 && strcmp(host, MDM_APNS_HOST) == 0 &&
	    strcmp(port, "443") == 0, "server: production by default");
	ok(mdm_push_server(NULL, 1, host, sizeof(host), port, sizeof(port),
	    &e) == 0 && strcmp(host, MDM_APNS_HOST_SANDBOX) == 0,
	    "server: --sandbox");
	ok(mdm_push_server("https://127.0.0.1:2197", 0, host, sizeof(host),
	    port, sizeof(port), &e) == 0 && strcmp(host, "127.0.0.1") == 0 &&
	    strcmp(port, "2197") == 0, "server: --apns-url");
	ok(mdm_push_server("https://x", 1, host, sizeof(host), port,
	    sizeof(port), &e) == -1 && e.code == MDM_E_USAGE &&
	    strcmp(e.msg, "--apns-url and --sandbox exclude each other") == 0,
	    "server: --apns-url with --sandbox refused");
	ok(mdm_push_server("http://x", 0, host, sizeof(host), port,
	    sizeof(port), &e) == -1 && strncmp(e.msg, "--apns-url: ", 12) == 0,
	    "server: a bad --apns-url, named: %s", e.msg);
	is_str(mdm_push_outcome_name(MDM_PUSH_NO_PUSH_CERT), "no-push-cert",
	    "outcome name");
	is_str(mdm_push_outcome_name(MDM_PUSH_TOPIC_FAILED), "topic-failed",
	    "outcome name");
	memset(&s, 0, sizeof(s));
	s.n[MDM_PUSH_OK] = 2;
	s.n[MDM_PUSH_SKIPPED] = 1;
	s.topics_tried = 1;
	is_int(mdm_push_exit_status(&s), MDM_EX_OK, "ok and skipped: 0");
	s.n[MDM_PUSH_UNKNOWN] = 1;
	is_int(mdm_push_exit_status(&s), MDM_EX_NO, "an unknown id: 1");
	s.n[MDM_PUSH_RETRY] = 1;
	is_int(mdm_push_exit_status(&s), MDM_EX_TEMPFAIL, "a retry: 75");
	s.topics_unreachable = 1;
	is_int(mdm_push_exit_status(&s), MDM_EX_UNAVAILABLE,
	    "every topic unreachable: 69");
}

static void
test_outcomes(const struct mock *m)
{
	struct mdm_push_config c;
	struct mdm_push *p = NULL;
	struct mdm_err e = { 0 };
	const struct mdm_push_stats *s;
	const struct rec *r;
	struct recs got;
	static const char *const ids[] = {
		"ok1", "SN-dead1", "nosuch", "off1", "nocert1",
	};
	size_t i;

	memset(&got, 0, sizeof(got));
	config(&c, m, &got);
	c.priority = 5;
	ok(mdm_push_new(st, &c, &p, &e) == 0, "new: %s", e.msg);
	if (p == NULL)
		return;
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		ok(mdm_push_add(p, ids[i], &e) == 0, "add %s: %s", ids[i],
		    e.msg);
	is_int((long long)got.n, 2, "unknown and skipped reported at once");
	ok(mdm_push_run(p, &e) == 0, "run: %s", e.msg);
	is_int((long long)got.n, 5, "each id reported once");

	r = find(&got, "ok1");
	ok(r != NULL && r->o == MDM_PUSH_OK && r->status == 200, "ok1: ok 200");
	is_int(log_count(m, "aa01"), 1, "the mock got ok1's push");
	r = find(&got, "dead1");
	ok(r != NULL && r->o == MDM_PUSH_TOKEN_DEAD && r->status == 410 &&
	    strcmp(r->reason, "Unregistered") == 0,
	    "a serial resolves; 410 Unregistered: token-dead");
	is_int(sql_int("SELECT token_dead FROM enrollments WHERE id = 'dead1'"),
	    1, "token-dead stored");
	is_int(sql_int("SELECT last_push_status FROM enrollments WHERE "
	    "id = 'ok1'"), 200, "ok1's push health stored");
	r = find(&got, "nosuch");
	ok(r != NULL && r->o == MDM_PUSH_UNKNOWN, "unknown id");
	r = find(&got, "off1");
	ok(r != NULL && r->o == MDM_PUSH_SKIPPED &&
	    strstr(r->reason, "disabled") != NULL, "disabled: skipped");
	r = find(&got, "nocert1");
	ok(r != NULL && r->o == MDM_PUSH_NO_PUSH_CERT &&
	    strstr(r->reason, "mdm-certs push-import") != NULL,
	    "a topic without a certificate: no-push-cert");
	is_int(sql_int("SELECT last_push_at FROM enrollments WHERE "
	    "id = 'nocert1'"), 0, "no-push-cert: nothing stored");
	is_int(log_count(m, "bb"), 0, "and nothing sent for it");
	s = mdm_push_stats(p);
	ok(s->n[MDM_PUSH_OK] == 1 && s->n[MDM_PUSH_TOKEN_DEAD] == 1 &&
	    s->n[MDM_PUSH_UNKNOWN] == 1 && s->n[MDM_PUSH_SKIPPED] == 1 &&
	    s->n[MDM_PUSH_NO_PUSH_CERT] == 1 && s->topics_tried == 1 &&
	    s->topics_unreachable == 0, "stats");
	is_int(mdm_push_exit_status(s), MDM_EX_NO, "exit status 1");
	ok(got.progress_calls > 0 && got.last_done == 2 &&
	    got.last_total == 2, "progress ends at 2 of 2 pushes");
	ok(mdm_push_run(p, &e) == -1, "a second run is refused");
	mdm_push_free(p);
	p = NULL;

	/* Later runs skip the dead token. */
	memset(&got, 0, sizeof(got));
	config(&c, m, &got);
	ok(mdm_push_new(st, &c, &p, &e) == 0 && mdm_push_add(p, "dead1",
	    &e) == 0 && mdm_push_run(p, &e) == 0, "run again: %s", e.msg);
	r = find(&got, "dead1");
	ok(r != NULL && r->o == MDM_PUSH_SKIPPED, "a dead token is skipped");
	is_int(mdm_push_exit_status(mdm_push_stats(p)), MDM_EX_OK,
	    "skipped only: exit status 0");
	is_int(log_count(m, "4100aa"), 1, "no second request for it");
	mdm_push_free(p);
}

static void
test_topic_failed(const struct mock *m)
{
	struct mdm_push_config c;
	struct mdm_push *p = NULL;
	struct mdm_err e = { 0 };
	const struct rec *r;
	struct recs got;

	memset(&got, 0, sizeof(got));
	config(&c, m, &got);
	ok(mdm_push_new(st, &c, &p, &e) == 0 && mdm_push_add(p, "cert403",
	    &e) == 0 && mdm_push_run(p, &e) == 0, "run: %s", e.msg);
	r = find(&got, "cert403");
	ok(r != NULL && r->o == MDM_PUSH_TOPIC_FAILED && r->status == 403,
	    "403 BadCertificate: topic-failed");
	is_int(mdm_push_exit_status(mdm_push_stats(p)), MDM_EX_NO,
	    "topic-failed: exit status 1");
	mdm_push_free(p);
}

static void
test_filter(const struct mock *m)
{
	struct mdm_state_enroll_filter f;
	struct mdm_push_config c;
	struct mdm_push *p = NULL;
	struct mdm_err e = { 0 };
	struct recs got;

	memset(&got, 0, sizeof(got));
	memset(&f, 0, sizeof(f));
	f.enabled = 1;
	f.seen_before = 1000;
	config(&c, m, &got);
	ok(mdm_push_new(st, &c, &p, &e) == 0 &&
	    mdm_push_add_filter(p, &f, &e) == 0 && mdm_push_run(p, &e) == 0,
	    "a filter: %s", e.msg);
	ok(got.n == 1 && strcmp(got.v[0].id, "ok2") == 0 &&
	    got.v[0].o == MDM_PUSH_OK, "pushes only what passes it");
	mdm_push_free(p);
}

int
main(void)
{
	char sdir[1100];
	struct mdm_push_config c;
	struct mdm_push *p = NULL;
	struct mdm_err e = { 0 };
	struct mock m;
	const char *b = getenv("MDM_BIN");

	test_helpers();
	memset(&c, 0, sizeof(c));
	ok(mdm_push_new(NULL, &c, &p, &e) == -1 && p == NULL,
	    "new without a report callback fails");
	snprintf(bin, sizeof(bin), "%s/apns_mock", b != NULL ? b : ".");
	if (b == NULL || access(bin, X_OK) != 0) {
		tap_diag("no apns_mock in $MDM_BIN: skipping the rest");
		tap_done();
		return 77;
	}
	snprintf(dir, sizeof(dir), "%s", tap_tmpdir());
	snprintf(sdir, sizeof(sdir), "%s/state", dir);
	if (make_certs() == -1 ||
	    mdm_state_open(sdir, MDM_STATE_CREATE, &st, &e) == -1 ||
	    install_identity() == -1) {
		ok(0, "setup: %s", e.msg);
		return tap_done();
	}
	sql_exec("INSERT INTO enrollments (id, type, udid, serial_number, "
	    "enabled, topic, push_token, push_magic, last_seen_at, "
	    "created_at, updated_at) VALUES "
	    "('ok1', 'device', 'ok1', 'SN-ok1', 1, '" TOPIC "', 'aa01', "
	    "'m1', 5000, 0, 0), "
	    "('ok2', 'device', 'ok2', 'SN-ok2', 1, '" TOPIC "', 'aa02', "
	    "'m2', NULL, 0, 0), "
	    "('dead1', 'device', 'dead1', 'SN-dead1', 1, '" TOPIC "', "
	    "'4100aa', 'm3', 5000, 0, 0), "
	    "('off1', 'device', 'off1', 'SN-off1', 0, '" TOPIC "', 'aa04', "
	    "'m4', 5000, 0, 0), "
	    "('nocert1', 'device', 'nocert1', 'SN-nocert1', 1, '" NOCERT "', "
	    "'bb01', 'm5', 5000, 0, 0), "
	    "('cert403', 'device', 'cert403', 'SN-cert403', 1, '" TOPIC "', "
	    "'4030aa', 'm6', 5000, 0, 0)");
	if (mock_start(&m) == -1) {
		ok(0, "apns_mock started");
		mdm_state_close(st);
		return tap_done();
	}
	test_outcomes(&m);
	test_topic_failed(&m);
	sql_exec("UPDATE enrollments SET enabled = 0 WHERE id = 'cert403'");
	test_filter(&m);
	mock_stop(&m);
	mdm_state_close(st);
	X509_free(client_cert);
	EVP_PKEY_free(client_key);
	return tap_done();
}
