/*
 * apns: the client against tests/tools/apns_mock (built beside the tools
 * in $MDM_BIN; skipped when absent) with certificates made here: headers
 * and body as the mock saw them, every outcome class, one stream first
 * and then many, GOAWAY and a dropped connection with pushes in flight
 * (each push reported once, the unprocessed ones resent), 10,000 pushes
 * with none lost or duplicated, bounded slots, a client certificate the
 * server does not trust, an unreachable server, and Debian's nghttpd
 * with --verify-client when it is installed.  The pure helpers (reply
 * parsing, classification, push checks) are tested first.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "apns.h"
#include "buf.h"
#include "x509.h"
#include "tap.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TOPIC "com.apple.mgmt.External.e3b8ceac-1f18-2c8e-8a63-dd17d99435d9"

static char dir[1024], bin[1024];
static char ca_pem[1100], srv_pem[1100], srv_key[1100];
static X509 *client_cert, *rogue_cert;
static EVP_PKEY *client_key;

/* A generator of pushes and a record of what came back. */
struct gen {
	size_t n, pulled;
	const char *prefix;		/* token prefix; the rest is hex of i */
	const char *const *tokens;	/* or explicit tokens */
	int *seen;
	struct mdm_apns_result *res;
	size_t outstanding, max_outstanding, max_before_first, reported;
};

static int
gen_next(void *arg, struct mdm_apns_push *p)
{
	struct gen *g = arg;
	size_t i = g->pulled;

	if (i == g->n)
		return 0;
	if (g->tokens != NULL)
		snprintf(p->token, sizeof(p->token), "%s", g->tokens[i]);
	else
		snprintf(p->token, sizeof(p->token), "%s%0*zx", g->prefix,
		    (int)(64 - strlen(g->prefix)), i);
	snprintf(p->magic, sizeof(p->magic), "magic-%zu", i);
	p->expiration = 1700000000 + (int64_t)i;
	p->cookie = i;
	g->pulled++;
	g->outstanding++;
	if (g->outstanding > g->max_outstanding)
		g->max_outstanding = g->outstanding;
	if (g->reported == 0 && g->outstanding > g->max_before_first)
		g->max_before_first = g->outstanding;
	return 1;
}

static void
gen_done(void *arg, const struct mdm_apns_push *p,
    const struct mdm_apns_result *r)
{
	struct gen *g = arg;

	if (p->cookie >= g->n)
		return;
	g->seen[p->cookie]++;
	g->res[p->cookie] = *r;
	g->outstanding--;
	g->reported++;
}

static void
gen_init(struct gen *g, size_t n, const char *prefix)
{
	memset(g, 0, sizeof(*g));
	g->n = n;
	g->prefix = prefix;
	g->seen = calloc(n, sizeof(*g->seen));
	g->res = calloc(n, sizeof(*g->res));
}

static void
gen_free(struct gen *g)
{
	free(g->seen);
	free(g->res);
}

/* Each pulled push reported exactly once; count of those with outcome o. */
static size_t
gen_count(const struct gen *g, int o, int *once)
{
	size_t i, c = 0;

	*once = 1;
	for (i = 0; i < g->pulled; i++) {
		if (g->seen[i] != 1)
			*once = 0;
		if (g->seen[i] > 0 && (int)g->res[i].outcome == o)
			c++;
	}
	return c;
}

static int
make_certs(void)
{
	static const char *const names[] = { "localhost", "127.0.0.1" };
	struct mdm_x509_opts o;
	struct mdm_err e = { 0 };
	EVP_PKEY *k = NULL, *rk = NULL;
	X509 *ca = NULL, *srv = NULL, *rca = NULL;
	int rc = -1;

	if (mdm_x509_gen_rsa(2048, &k, &e) == -1 ||
	    mdm_x509_gen_rsa(2048, &rk, &e) == -1)
		goto out;
	memset(&o, 0, sizeof(o));
	o.days = 2;
	o.kind = MDM_X509_CA;
	o.common_name = "apns test CA";
	if (mdm_x509_self_sign(k, &o, &ca, &e) == -1)
		goto out;
	o.common_name = "rogue CA";
	if (mdm_x509_self_sign(rk, &o, &rca, &e) == -1)
		goto out;
	o.kind = MDM_X509_TLS_SERVER;
	o.common_name = "localhost";
	o.dns_names = names;
	o.n_dns_names = 2;
	if (mdm_x509_issue(ca, k, k, &o, &srv, &e) == -1)
		goto out;
	o.kind = MDM_X509_CLIENT;
	o.common_name = "push-client";
	o.dns_names = NULL;
	o.n_dns_names = 0;
	if (mdm_x509_issue(ca, k, k, &o, &client_cert, &e) == -1 ||
	    mdm_x509_issue(rca, rk, k, &o, &rogue_cert, &e) == -1)
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
	EVP_PKEY_free(rk);
	X509_free(ca);
	X509_free(srv);
	X509_free(rca);
	return rc;
}

struct mock {
	pid_t pid;
	char port[16];
	char log[1100], stats[1100];
};

/* Starts apns_mock with extra options (NULL-terminated). */
static int
mock_start(struct mock *m, const char *name, const char *const *extra)
{
	char portfile[1100];
	const char *argv[32];
	size_t n = 0;

	snprintf(portfile, sizeof(portfile), "%s/%s.port", dir, name);
	snprintf(m->log, sizeof(m->log), "%s/%s.log", dir, name);
	snprintf(m->stats, sizeof(m->stats), "%s/%s.stats", dir, name);
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
	argv[n++] = "--stats";
	argv[n++] = m->stats;
	for (; extra != NULL && *extra != NULL && n < 30; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	return tap_spawn(argv, portfile, &m->pid, m->port, sizeof(m->port));
}

static void
mock_stop(struct mock *m)
{
	tap_stop(m->pid);
}

/* The number in the stats line "key N", or -1. */
static long
stat_num(const struct mock *m, const char *key)
{
	char line[600];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f;

	if ((f = fopen(m->stats, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, kl) == 0 && line[kl] == ' ')
			v = strtol(line + kl + 1, NULL, 10);
	fclose(f);
	return v;
}

static int
stat_has(const struct mock *m, const char *text)
{
	char line[600];
	int found = 0;
	FILE *f;

	if ((f = fopen(m->stats, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, text) != NULL)
			found = 1;
	fclose(f);
	return found;
}

/*
 * Reads the mock's log: every line's token must be one g pulled, each
 * seen once.  Returns the number of lines, or -1 on a duplicate or a
 * stranger.
 */
static long
log_check(const struct mock *m, const struct gen *g)
{
	char line[2048];
	unsigned char *hit;
	long lines = 0, rc = -1;
	size_t i;
	FILE *f;

	if ((f = fopen(m->log, "r")) == NULL)
		return -1;
	hit = calloc(g->n > 0 ? g->n : 1, 1);
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t pl = strlen(g->prefix);

		line[strcspn(line, "\t")] = '\0';
		if (strncmp(line, g->prefix, pl) != 0)
			goto out;
		i = strtoul(line + pl, NULL, 16);
		if (i >= g->n || hit[i]) {
			tap_diag("log: token %s %s", line,
			    i >= g->n ? "unknown" : "twice");
			goto out;
		}
		hit[i] = 1;
		lines++;
	}
	rc = lines;
out:
	free(hit);
	fclose(f);
	return rc;
}

static void
config(struct mdm_apns_config *c, const char *port)
{
	memset(c, 0, sizeof(*c));
	c->host = "127.0.0.1";
	c->port = port;
	c->topic = TOPIC;
	c->cert = client_cert;
	c->key = client_key;
	c->ca_file = ca_pem;
	c->backoff_ms = 20;
	c->timeout_ms = 10000;
}

static void
test_helpers(void)
{
	struct mdm_apns_push p;
	struct mdm_err e = { 0 };
	char reason[64];
	int64_t ts;
	static const char big[] = "{\"reason\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}";

	static const char unreg[] = "{\"reason\":\"Unregistered\","
	    "\"timestamp\":1700000000123}";
	static const char ctl[] = "{\"reason\":\"Bad\\u0001\"}";

	ok(mdm_apns_parse_reply(unreg, strlen(unreg), reason, sizeof(reason),
	    &ts) == 0 &&
	    strcmp(reason, "Unregistered") == 0 && ts == 1700000000123LL,
	    "reply: reason and timestamp");
	ok(mdm_apns_parse_reply(ctl, strlen(ctl), reason, sizeof(reason),
	    &ts) == 0 && strcmp(reason, "Bad?") == 0 &&
	    ts == 0, "reply: control characters replaced");
	ok(mdm_apns_parse_reply("[1]", 3, reason, sizeof(reason), &ts) == -1,
	    "reply: array refused");
	ok(mdm_apns_parse_reply("{\"reason\":", 10, reason, sizeof(reason),
	    &ts) == -1 && reason[0] == '\0', "reply: truncated JSON refused");
	ok(mdm_apns_parse_reply(big, sizeof(big) - 1, reason, 8, &ts) == 0 &&
	    strcmp(reason, "AAAAAAA") == 0, "reply: long reason cut");
	is_int(mdm_apns_classify(200, NULL), MDM_APNS_OK, "200 ok");
	is_int(mdm_apns_classify(410, "ExpiredToken"), MDM_APNS_TOKEN_DEAD,
	    "410 dead");
	is_int(mdm_apns_classify(400, "BadDeviceToken"), MDM_APNS_TOKEN_DEAD,
	    "BadDeviceToken dead");
	is_int(mdm_apns_classify(400, "DeviceTokenNotForTopic"),
	    MDM_APNS_TOKEN_DEAD, "DeviceTokenNotForTopic dead");
	is_int(mdm_apns_classify(403, "Forbidden"), MDM_APNS_TOPIC_FATAL,
	    "403 fatal");
	is_int(mdm_apns_classify(400, "MissingTopic"), MDM_APNS_TOPIC_FATAL,
	    "MissingTopic fatal");
	is_int(mdm_apns_classify(400, "TopicDisallowed"), MDM_APNS_TOPIC_FATAL,
	    "TopicDisallowed fatal");
	is_int(mdm_apns_classify(429, "TooManyRequests"), MDM_APNS_RETRY,
	    "429 retry");
	is_int(mdm_apns_classify(503, NULL), MDM_APNS_RETRY, "503 retry");
	is_int(mdm_apns_classify(400, "IdleTimeout"), MDM_APNS_RETRY,
	    "IdleTimeout retry");
	is_int(mdm_apns_classify(413, "PayloadTooLarge"), MDM_APNS_REFUSED,
	    "413 refused");
	is_int(mdm_apns_classify(404, NULL), MDM_APNS_REFUSED, "404 refused");
	is_str(mdm_apns_outcome_name(MDM_APNS_TOKEN_DEAD), "token-dead",
	    "outcome name");

	memset(&p, 0, sizeof(p));
	snprintf(p.token, sizeof(p.token), "00ff");
	snprintf(p.magic, sizeof(p.magic), "m");
	ok(mdm_apns_push_check(&p, &e) == 0, "minimal push valid");
	snprintf(p.token, sizeof(p.token), "00FF");
	ok(mdm_apns_push_check(&p, &e) == -1, "uppercase token refused");
	snprintf(p.token, sizeof(p.token), "0");
	ok(mdm_apns_push_check(&p, &e) == -1, "one digit token refused");
	snprintf(p.token, sizeof(p.token), "abc");
	ok(mdm_apns_push_check(&p, &e) == -1, "odd token refused");
	memset(p.token, 'a', MDM_APNS_TOKEN_MAX);
	p.token[MDM_APNS_TOKEN_MAX] = '\0';
	ok(mdm_apns_push_check(&p, &e) == 0, "512-digit token valid");
	snprintf(p.magic, sizeof(p.magic), "a\nb");
	ok(mdm_apns_push_check(&p, &e) == -1, "magic with newline refused");
	p.magic[0] = '\0';
	ok(mdm_apns_push_check(&p, &e) == -1, "empty magic refused");
	snprintf(p.magic, sizeof(p.magic), "m");
	snprintf(p.id, sizeof(p.id), "not-a-uuid");
	ok(mdm_apns_push_check(&p, &e) == -1, "bad apns-id refused");
	snprintf(p.id, sizeof(p.id), "6a3e3f8e-1c2b-4f5a-9d7e-0123456789ab");
	ok(mdm_apns_push_check(&p, &e) == 0, "uuid apns-id valid");
	p.priority = 7;
	ok(mdm_apns_push_check(&p, &e) == -1, "priority 7 refused");
	p.priority = 5;
	p.expiration = -1;
	ok(mdm_apns_push_check(&p, &e) == -1, "negative expiration refused");
}

/* One push with every header, as the mock logged it. */
static int one_next_called;

static int
one_next(void *arg, struct mdm_apns_push *p)
{
	(void)arg;
	if (one_next_called++)
		return 0;
	snprintf(p->token, sizeof(p->token), "%s", "aa00aa00aa00aa00aa00aa00"
	    "aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00");
	snprintf(p->magic, sizeof(p->magic), "%s", "ab\"c\\d-5F2C");
	snprintf(p->id, sizeof(p->id), "%s",
	    "6a3e3f8e-1c2b-4f5a-9d7e-0123456789ab");
	p->priority = 5;
	p->expiration = 1700000000;
	p->cookie = 0;
	return 1;
}

static void
one_done(void *arg, const struct mdm_apns_push *p,
    const struct mdm_apns_result *r)
{
	(void)p;
	*(struct mdm_apns_result *)arg = *r;
}

static void
test_one(void)
{
	static const char want[] = "aa00aa00aa00aa00aa00aa00aa00aa00aa00aa00"
	    "aa00aa00aa00aa00aa00aa00\t" TOPIC "\tmdm\t5\t1700000000\t"
	    "6a3e3f8e-1c2b-4f5a-9d7e-0123456789ab\t{\"mdm\":\"ab\\\"c\\\\d-"
	    "5F2C\"}\n";
	struct mdm_apns_config c;
	struct mdm_apns_result r;
	struct mdm_apns *a = NULL;
	struct mdm_err e = { 0 };
	struct mock m;
	char line[1024] = "";
	FILE *f;
	int rc;

	if (mock_start(&m, "one", NULL) == -1) {
		ok(0, "mock starts");
		return;
	}
	config(&c, m.port);
	memset(&r, 0, sizeof(r));
	r.outcome = MDM_APNS_RETRY;
	ok(mdm_apns_new(&c, &a, &e) == 0, "client made: %s", e.msg);
	rc = mdm_apns_run(a, one_next, one_done, &r, &e);
	ok(rc == 0, "run: %s", rc == 0 ? "ok" : e.msg);
	is_int(r.outcome, MDM_APNS_OK, "200: ok");
	is_int(r.status, 200, "200: status");
	is_str(r.apns_id, "6a3e3f8e-1c2b-4f5a-9d7e-0123456789ab",
	    "200: our apns-id echoed");
	is_int(r.attempts, 1, "200: one attempt");
	/* A second run reuses the open connection. */
	one_next_called = 0;
	ok(mdm_apns_run(a, one_next, one_done, &r, &e) == 0 &&
	    r.outcome == MDM_APNS_OK, "second run ok");
	mdm_apns_free(a);
	mock_stop(&m);
	if ((f = fopen(m.log, "r")) != NULL) {
		if (fgets(line, sizeof(line), f) == NULL)
			line[0] = '\0';
		fclose(f);
	}
	is_str(line, want, "mock saw path, topic, push type, priority, "
	    "expiration, apns-id and the escaped body");
	is_int(stat_num(&m, "connections"), 1, "one connection for two runs");
	ok(stat_has(&m, "CN=push-client"), "mock saw the client certificate");
}

static void
test_outcomes(void)
{
	static const char *const tokens[] = {
		"aaaa", "4100aa", "410eaa", "400baa", "400daa", "4000aa",
		"413aaa", "429aaa", "500aaa", "503aaa", "BAD",
	};
	static const struct {
		int outcome, status;
		const char *reason;
	} want[] = {
		{ MDM_APNS_OK, 200, "" },
		{ MDM_APNS_TOKEN_DEAD, 410, "Unregistered" },
		{ MDM_APNS_TOKEN_DEAD, 410, "ExpiredToken" },
		{ MDM_APNS_TOKEN_DEAD, 400, "BadDeviceToken" },
		{ MDM_APNS_TOKEN_DEAD, 400, "DeviceTokenNotForTopic" },
		{ MDM_APNS_REFUSED, 400, "BadExpirationDate" },
		{ MDM_APNS_REFUSED, 413, "PayloadTooLarge" },
		{ MDM_APNS_RETRY, 429, "TooManyRequests" },
		{ MDM_APNS_RETRY, 500, "InternalServerError" },
		{ MDM_APNS_RETRY, 503, "ServiceUnavailable" },
		{ MDM_APNS_REFUSED, 0, "" },
	};
	static const char *const fatal_tokens[][2] = {
		{ "403aaa", "BadCertificate" },
		{ "403eaa", "BadCertificateEnvironment" },
		{ "403faa", "Forbidden" },
		{ "400caa", "BadTopic" },
		{ "400aaa", "TopicDisallowed" },
	};
	const char *fatal_list[4];
	struct mdm_apns_config c;
	struct mdm_apns *a = NULL;
	struct mdm_err e = { 0 };
	struct gen g;
	struct mock m;
	size_t i;
	int rc, once;

	if (mock_start(&m, "outcomes", NULL) == -1) {
		ok(0, "mock starts");
		return;
	}
	config(&c, m.port);
	gen_init(&g, ARRAY_LEN(tokens), "");
	g.tokens = tokens;
	mdm_apns_new(&c, &a, &e);
	rc = mdm_apns_run(a, gen_next, gen_done, &g, &e);
	ok(rc == 0, "outcomes: run returns 0");
	gen_count(&g, 0, &once);
	ok(once && g.pulled == g.n, "outcomes: each reported once");
	for (i = 0; i < g.n; i++) {
		is_int(g.res[i].outcome, want[i].outcome, tokens[i]);
		is_int(g.res[i].status, want[i].status, tokens[i]);
		is_str(g.res[i].reason, want[i].reason, tokens[i]);
	}
	ok(g.res[1].timestamp > 1600000000000LL, "410 timestamp in ms");
	is_int(g.res[3].timestamp, 0, "400: no timestamp");
	ok(strstr(g.res[10].error, "hex") != NULL, "bad token: error says "
	    "why: %s", g.res[10].error);
	mdm_apns_free(a);
	gen_free(&g);

	/* Each topic error stops the topic; what follows is never sent. */
	for (i = 0; i < ARRAY_LEN(fatal_tokens); i++) {
		fatal_list[0] = fatal_tokens[i][0];
		fatal_list[1] = "aaaa";
		fatal_list[2] = "bbbb";
		fatal_list[3] = "cccc";
		gen_init(&g, 4, "");
		g.tokens = fatal_list;
		a = NULL;
		mdm_apns_new(&c, &a, &e);
		rc = mdm_apns_run(a, gen_next, gen_done, &g, &e);
		ok(rc == -1 && e.code == MDM_E_CONFIG &&
		    strstr(e.msg, fatal_tokens[i][1]) != NULL,
		    "%s: run fails: %s", fatal_tokens[i][1], e.msg);
		gen_count(&g, 0, &once);
		ok(once, "%s: every push taken reported once",
		    fatal_tokens[i][1]);
		ok(g.res[0].outcome == MDM_APNS_TOPIC_FATAL &&
		    g.res[0].status > 0 &&
		    strcmp(g.res[0].reason, fatal_tokens[i][1]) == 0,
		    "%s: topic-fatal", fatal_tokens[i][1]);
		/* The first push goes alone, so nothing else was taken. */
		is_int(g.pulled, 1, "nothing taken after a topic error");
		ok(mdm_apns_run(a, gen_next, gen_done, &g, &e) == -1 &&
		    e.code == MDM_E_CONFIG, "%s: later runs fail at once",
		    fatal_tokens[i][1]);
		mdm_apns_free(a);
		gen_free(&g);
	}
	mock_stop(&m);
}

/*
 * n pushes through at most maxs slots against a mock started with extra,
 * which must see want_conns_min connections; more than one means pushes
 * were cut off and must have been sent again.
 */
static void
batch(const char *name, const char *const *extra, size_t n, unsigned maxs,
    int want_conns_min)
{
	struct mdm_apns_config c;
	struct mdm_apns *a = NULL;
	struct mdm_err e = { 0 };
	struct gen g;
	struct mock m;
	long lines;
	int rc, once;
	size_t okc, i, resent = 0;

	if (mock_start(&m, name, extra) == -1) {
		ok(0, "%s: mock starts", name);
		return;
	}
	config(&c, m.port);
	c.max_streams = maxs;
	gen_init(&g, n, "cafe");
	if (mdm_apns_new(&c, &a, &e) == -1) {
		ok(0, "%s: client: %s", name, e.msg);
		mock_stop(&m);
		gen_free(&g);
		return;
	}
	rc = mdm_apns_run(a, gen_next, gen_done, &g, &e);
	ok(rc == 0, "%s: run: %s", name, rc == 0 ? "ok" : e.msg);
	okc = gen_count(&g, MDM_APNS_OK, &once);
	for (i = 0; i < g.pulled; i++)
		if (g.res[i].attempts > 1)
			resent++;
	ok(g.pulled == n && once, "%s: %zu taken, each reported once", name,
	    g.pulled);
	ok(okc == n, "%s: %zu of %zu ok", name, okc, n);
	if (okc != n) {
		for (i = 0; i < n; i++)
			if (g.res[i].outcome != MDM_APNS_OK) {
				tap_diag("push %zu: %s %d %s", i,
				    mdm_apns_outcome_name(g.res[i].outcome),
				    g.res[i].status, g.res[i].error);
				break;
			}
	}
	is_int(g.max_before_first, 1, "client: one push before the first "
	    "answer");
	ok(g.max_outstanding <= (maxs > 0 ? maxs : 1000), "%s: at most %u "
	    "pushes held (%zu)", name, maxs > 0 ? maxs : 1000,
	    g.max_outstanding);
	mdm_apns_free(a);
	mock_stop(&m);
	lines = log_check(&m, &g);
	is_int(lines, (long long)n, "mock log: every push once, none lost");
	is_int(stat_num(&m, "max_streams_first"), 1,
	    "mock: one stream before the first answer");
	ok(stat_num(&m, "max_streams") > 1, "%s: mock saw %ld streams at "
	    "once after it", name, stat_num(&m, "max_streams"));
	ok(stat_num(&m, "connections") >= want_conns_min, "%s: %ld "
	    "connections", name, stat_num(&m, "connections"));
	if (want_conns_min > 1)
		ok(resent > 0 && resent < n, "%s: %zu pushes the server had not "
		    "processed were sent again", name, resent);
	gen_free(&g);
}

static void
test_bad_client(void)
{
	struct mdm_apns_config c;
	struct mdm_apns *a = NULL;
	struct mdm_err e = { 0 };
	struct gen g;
	struct mock m;
	int rc, once;

	if (mock_start(&m, "rogue", NULL) == -1) {
		ok(0, "mock starts");
		return;
	}
	config(&c, m.port);
	c.cert = rogue_cert;
	gen_init(&g, 5, "beef");
	mdm_apns_new(&c, &a, &e);
	rc = mdm_apns_run(a, gen_next, gen_done, &g, &e);
	ok(rc == -1, "untrusted client certificate: run fails: %s", e.msg);
	gen_count(&g, 0, &once);
	ok(once && g.pulled >= 1, "untrusted client certificate: each push "
	    "taken reported once");
	ok(g.res[0].outcome == MDM_APNS_TOPIC_FATAL ||
	    g.res[0].outcome == MDM_APNS_RETRY, "untrusted client "
	    "certificate: %s: %s", mdm_apns_outcome_name(g.res[0].outcome),
	    g.res[0].error);
	mdm_apns_free(a);
	gen_free(&g);
	mock_stop(&m);
	ok(log_check(&m, &g) <= 0, "nothing reached the mock");
}

/* A server that drops every connection: bounded attempts, then give up. */
static void
test_give_up(void)
{
	static const char *const drop[] = { "--drop", NULL };
	struct mdm_apns_config c;
	struct mdm_apns *a = NULL;
	struct mdm_err e = { 0 };
	struct gen g;
	struct mock m;
	int rc, once;

	if (mock_start(&m, "drop", drop) == -1) {
		ok(0, "mock starts");
		return;
	}
	config(&c, m.port);
	gen_init(&g, 10, "d0d0");
	mdm_apns_new(&c, &a, &e);
	rc = mdm_apns_run(a, gen_next, gen_done, &g, &e);
	ok(rc == -1 && e.code == MDM_E_UNAVAILABLE, "dropped every time: "
	    "run gives up: %s", e.msg);
	gen_count(&g, 0, &once);
	ok(once && g.pulled >= 1 && g.pulled < g.n, "dropped every time: "
	    "%zu taken, each reported once", g.pulled);
	ok(g.res[0].outcome == MDM_APNS_RETRY && g.res[0].attempts == 3,
	    "dropped every time: retry after %d attempts: %s",
	    g.res[0].attempts, g.res[0].error);
	mdm_apns_free(a);
	mock_stop(&m);
	is_int(stat_num(&m, "connections"), 3, "three connections, then "
	    "no more");
	is_int(log_check(&m, &g), 0, "no push processed");
	gen_free(&g);
}

static void
test_unreachable(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct mdm_apns_config c;
	struct mdm_apns *a = NULL;
	struct mdm_err e = { 0 };
	struct gen g;
	char port[16];
	int fd, rc, once;

	/* A port that was free a moment ago and has no listener now. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	close(fd);
	snprintf(port, sizeof(port), "%u", ntohs(sin.sin_port));
	config(&c, port);
	gen_init(&g, 3, "dead");
	mdm_apns_new(&c, &a, &e);
	rc = mdm_apns_run(a, gen_next, gen_done, &g, &e);
	ok(rc == -1 && e.code == MDM_E_UNAVAILABLE, "unreachable: %s",
	    e.msg);
	gen_count(&g, 0, &once);
	ok(once && g.pulled == 1 && g.res[0].outcome == MDM_APNS_RETRY,
	    "unreachable: the one push taken is reported retry");
	mdm_apns_free(a);
	gen_free(&g);
}

static void
test_nghttpd(void)
{
	static const char nghttpd[] = "/usr/sbin/nghttpd";
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct timespec ts = { 0, 50 * 1000000 };
	struct mdm_apns_config c;
	struct mdm_apns_result r;
	struct mdm_apns *a = NULL;
	struct mdm_err e = { 0 };
	char port[16], docroot[1100];
	pid_t pid;
	int fd, i, rc;

	if (access(nghttpd, X_OK) != 0) {
		tap_skip(2, "nghttpd not installed");
		return;
	}
	snprintf(docroot, sizeof(docroot), "%s/htdocs", dir);
	mkdir(docroot, 0755);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	close(fd);
	snprintf(port, sizeof(port), "%u", ntohs(sin.sin_port));
	if ((pid = fork()) == 0) {
		execl(nghttpd, nghttpd, "--verify-client", "-d", docroot,
		    "-a", "127.0.0.1", port, srv_key, srv_pem, (char *)NULL);
		_exit(127);
	}
	/* Wait until it listens. */
	for (i = 0; i < 100; i++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
		close(fd);
		if (rc == 0)
			break;
		nanosleep(&ts, NULL);
	}
	config(&c, port);
	memset(&r, 0, sizeof(r));
	one_next_called = 0;
	mdm_apns_new(&c, &a, &e);
	rc = mdm_apns_run(a, one_next, one_done, &r, &e);
	ok(rc == 0, "nghttpd --verify-client: run: %s", rc == 0 ? "ok" :
	    e.msg);
	ok(r.status >= 200 && r.status < 600, "nghttpd answered over "
	    "HTTP/2 with our client certificate: %d (%s)", r.status,
	    mdm_apns_outcome_name(r.outcome));
	mdm_apns_free(a);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

int
main(void)
{
	static const char *const slow[] = { "--slow-start", NULL };
	static const char *const goaway[] = { "--slow-start",
		"--goaway-after", "50", NULL };
	static const char *const drop[] = { "--close-after", "50", NULL };
	const char *b = getenv("MDM_BIN");

	test_helpers();
	snprintf(bin, sizeof(bin), "%s/apns_mock", b != NULL ? b : ".");
	if (b == NULL || access(bin, X_OK) != 0) {
		tap_diag("no apns_mock in $MDM_BIN: skipping the rest");
		tap_done();
		return 77;
	}
	snprintf(dir, sizeof(dir), "%s", tap_tmpdir());
	if (make_certs() == -1) {
		ok(0, "test certificates");
		return tap_done();
	}
	test_one();
	test_outcomes();
	batch("plain", NULL, 300, 0, 1);
	batch("slow-start", slow, 300, 0, 1);
	batch("goaway", goaway, 500, 0, 2);
	batch("close", drop, 500, 0, 2);
	batch("bounded", NULL, 2000, 64, 1);
	batch("10000", slow, 10000, 0, 1);
	test_bad_client();
	test_give_up();
	test_unreachable();
	test_nghttpd();
	X509_free(client_cert);
	X509_free(rogue_cert);
	EVP_PKEY_free(client_key);
	return tap_done();
}
