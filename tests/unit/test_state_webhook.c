/*
 * state_webhook: the outbox against a real local receiver (http_server.h
 * on port 0) that can answer 200, 500, 302, 503, a large body, hang, or
 * (a raw socket) close without answering.  Events arrive in order with
 * the right headers, body and HMAC; with nothing listening attempts are
 * recorded, backoff grows and nothing is lost; when the receiver comes
 * back everything arrives exactly once; one device's failing event holds
 * back that device only; leases keep two claimers (and four threads with
 * their own handles) apart; events die after max_attempts or max_age;
 * purge keeps pending rows and deletes in batches.  Time is passed in, so
 * no test waits for a backoff.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sqlite3.h>

#include "buf.h"
#include "http_server.h"
#include "queue.h"
#include "state.h"
#include "state_int.h"
#include "state_webhook.h"
#include "webhook.h"
#include "tap.h"

#define T0	INT64_C(1700000000000)
#define KEY	"webhook secret"
#define NREC	64

/* ---- the receiver ---- */

enum mode { OK200, FAIL500, FAIL_AUTH, REDIRECT, BUSY503, BIG, HANG };

struct rec {
	char *body;
	size_t len;
	char ctype[128], sig[128], method[16], path[64];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static enum mode mode = OK200;
static struct rec recs[NREC];
static int nrec;

static void
set_mode(enum mode m)
{
	pthread_mutex_lock(&mu);
	mode = m;
	pthread_mutex_unlock(&mu);
}

static void
reset_recs(void)
{
	int i;

	pthread_mutex_lock(&mu);
	for (i = 0; i < nrec; i++)
		free(recs[i].body);
	memset(recs, 0, sizeof(recs));
	nrec = 0;
	pthread_mutex_unlock(&mu);
}

static void
copyhdr(char *dst, size_t n, const char *v)
{
	snprintf(dst, n, "%s", v ? v : "");
}

static int
contains(const unsigned char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; p != NULL && i + n <= len; i++)
		if (memcmp(p + i, needle, n) == 0)
			return 1;
	return 0;
}

static void
receiver(struct mdm_http_request *r, void *ctx, void *arg)
{
	static char big[100000];
	const unsigned char *body;
	struct rec *x;
	enum mode m;
	size_t len;

	(void)ctx;
	(void)arg;
	body = mdm_http_request_body(r, &len);
	pthread_mutex_lock(&mu);
	m = mode;
	if (nrec < NREC) {
		x = &recs[nrec++];
		if ((x->body = malloc(len + 1)) != NULL) {
			if (len > 0)
				memcpy(x->body, body, len);
			x->body[len] = '\0';
			x->len = len;
		}
		copyhdr(x->ctype, sizeof(x->ctype),
		    mdm_http_request_header(r, "Content-Type"));
		copyhdr(x->sig, sizeof(x->sig),
		    mdm_http_request_header(r, "X-Hmac-Signature"));
		copyhdr(x->method, sizeof(x->method),
		    mdm_http_request_method(r));
		copyhdr(x->path, sizeof(x->path), mdm_http_request_path(r));
	}
	pthread_mutex_unlock(&mu);
	switch (m) {
	case OK200:
		mdm_http_reply(r, 200, "text/plain", "ok\n", 3, NULL);
		break;
	case FAIL500:
		mdm_http_reply(r, 500, "text/plain", "no\n", 3, NULL);
		break;
	case FAIL_AUTH:
		/* A receiver that chokes on one kind of event. */
		if (contains(body, len, "mdm.Authenticate"))
			mdm_http_reply(r, 500, "text/plain", "no\n", 3, NULL);
		else
			mdm_http_reply(r, 204, NULL, "", 0, NULL);
		break;
	case REDIRECT:
		mdm_http_add_header(r, "Location", "http://127.0.0.1:1/", NULL);
		mdm_http_reply(r, 302, "text/plain", "moved\n", 6, NULL);
		break;
	case BUSY503:
		mdm_http_reply(r, 503, "text/plain", "busy\n", 5, NULL);
		break;
	case BIG:
		memset(big, 'x', sizeof(big));
		mdm_http_reply(r, 200, "text/plain", big, sizeof(big), NULL);
		break;
	case HANG:
		usleep(1500000);
		mdm_http_reply(r, 200, "text/plain", "late\n", 5, NULL);
		break;
	}
}

static struct mdm_http_server *srv;
static char url[128];

static int
start_receiver(void)
{
	struct mdm_http_config c;
	struct mdm_err e = { 0 };

	memset(&c, 0, sizeof(c));
	c.listen = "127.0.0.1:0";
	c.threads = 2;
	c.max_body = 1 << 20;
	c.handler = receiver;
	if (mdm_http_server_new(&c, &srv, &e) == -1 ||
	    mdm_http_server_start(srv, &e) == -1) {
		tap_diag("receiver: %s", e.msg);
		return -1;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook",
	    mdm_http_server_port(srv));
	return 0;
}

/* A port nothing listens on: bound, then closed. */
static int
dead_port(void)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* A receiver that reads the request and hangs up without a word. */
struct closer {
	int fd;
	int port;
	pthread_t t;
};

static void *
closer_main(void *p)
{
	struct closer *c = p;
	char buf[4096];
	int fd;

	if ((fd = accept(c->fd, NULL, NULL)) != -1) {
		(void)recv(fd, buf, sizeof(buf), 0);
		close(fd);
	}
	return NULL;
}

static int
closer_start(struct closer *c)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);

	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(c->fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    getsockname(c->fd, (struct sockaddr *)&a, &l) == -1 ||
	    listen(c->fd, 4) == -1 ||
	    pthread_create(&c->t, NULL, closer_main, c) != 0) {
		close(c->fd);
		return -1;
	}
	c->port = ntohs(a.sin_port);
	return 0;
}

/* ---- helpers ---- */

static struct mdm_state *
open_state(const char *name)
{
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", tap_tmpdir(), name);
	if (mdm_state_open(path, MDM_STATE_CREATE, &st, &e) == -1)
		tap_diag("open %s: %s", path, e.msg);
	return st;
}

static void
mkident(struct mdm_queue_ident *id, const char *udid, const char *user)
{
	memset(id, 0, sizeof(*id));
	id->type = user ? MDM_QUEUE_USER : MDM_QUEUE_DEVICE;
	snprintf(id->id, sizeof(id->id), "%s%s%s", udid, user ? ":" : "",
	    user ? user : "");
	snprintf(id->device_id, sizeof(id->device_id), "%s", udid);
	id->udid = udid;
	id->user_id = user;
}

/* Adds an event of topic for udid (and user); its row id, or -1. */
static int64_t
add(struct mdm_state *st, const char *topic, const char *udid,
    const char *user, int64_t now)
{
	struct mdm_queue_ident id;
	struct mdm_webhook_event ev;
	struct mdm_err e = { 0 };
	char raw[256];
	int64_t rowid = -1;

	mkident(&id, udid, user);
	snprintf(raw, sizeof(raw), "<plist><dict><key>MessageType</key>"
	    "<string>%s</string></dict></plist>", topic + 4);
	memset(&ev, 0, sizeof(ev));
	ev.topic = topic;
	ev.ident = &id;
	ev.raw = raw;
	ev.raw_len = strlen(raw);
	ev.status = "Acknowledged";
	ev.command_uuid = "c0ffee";
	if (mdm_state_webhook_add_event(st, &ev, now, &rowid, &e) == -1)
		tap_diag("add %s: %s", topic, e.msg);
	return rowid;
}

struct snap {
	int n;
	int64_t id[64], attempts[64], next[64], claimed[64], delivered[64];
	int64_t dead[64];
	int status[64];
	char *body[64];
	size_t len[64];
	char event_id[64][65];
};

static int
snap_fn(const struct mdm_state_webhook_row *r, void *arg, struct mdm_err *e)
{
	struct snap *s = arg;
	int i = s->n;

	(void)e;
	if (i >= 64)
		return 0;
	s->id[i] = r->id;
	s->attempts[i] = r->attempts;
	s->next[i] = r->next_attempt_at;
	s->claimed[i] = r->claimed_until;
	s->delivered[i] = r->delivered_at;
	s->dead[i] = r->dead_at;
	s->status[i] = r->last_status;
	s->body[i] = malloc(r->body_len + 1);
	if (s->body[i] != NULL) {
		memcpy(s->body[i], r->body, r->body_len);
		s->body[i][r->body_len] = '\0';
	}
	s->len[i] = r->body_len;
	snprintf(s->event_id[i], sizeof(s->event_id[i]), "%s", r->event_id);
	s->n++;
	return 0;
}

static void
snap_take(struct mdm_state *st, unsigned which, struct snap *s)
{
	struct mdm_err e = { 0 };

	memset(s, 0, sizeof(*s));
	if (mdm_state_webhook_foreach(st, which, snap_fn, s, &e) == -1)
		tap_diag("foreach: %s", e.msg);
}

static void
snap_free(struct snap *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		free(s->body[i]);
}

static struct mdm_state_webhook_counts
counts(struct mdm_state *st)
{
	struct mdm_state_webhook_counts c;
	struct mdm_err e = { 0 };

	if (mdm_state_webhook_counts(st, &c, &e) == -1) {
		tap_diag("counts: %s", e.msg);
		memset(&c, 0xff, sizeof(c));
	}
	return c;
}

static int
deliver(struct mdm_state *st, const struct mdm_webhook_config *cfg,
    int64_t now, struct mdm_webhook_stats *stats)
{
	struct mdm_err e = { 0 };
	int n;

	if ((n = mdm_webhook_deliver_due(st, cfg, now, stats, &e)) == -1)
		tap_diag("deliver: %s", e.msg);
	return n;
}

static void
config(struct mdm_webhook_config *c, const char *u)
{
	memset(c, 0, sizeof(*c));
	c->url = u;
	c->hmac_key = (const unsigned char *)KEY;
	c->hmac_key_len = strlen(KEY);
	c->timeout_ms = 5000;
	c->owner = "test";
}

/* ---- tests ---- */

static void
test_in_order(void)
{
	struct mdm_state *st = open_state("order");
	struct mdm_webhook_config cfg;
	struct mdm_webhook_stats stats;
	struct mdm_state_webhook_counts c;
	struct mdm_buf sig;
	struct snap s;
	int i, n, good_body = 1, good_hdr = 1, good_sig = 1;

	if (st == NULL)
		return;
	reset_recs();
	set_mode(OK200);
	add(st, "mdm.Authenticate", "DEV-A", NULL, T0);
	add(st, "mdm.TokenUpdate", "DEV-A", NULL, T0 + 1);
	add(st, "mdm.TokenUpdate", "DEV-A", "USER-1", T0 + 2);
	add(st, "mdm.Connect", "DEV-B", NULL, T0 + 3);
	add(st, "mdm.CheckOut", "DEV-A", NULL, T0 + 4);
	c = counts(st);
	is_int(c.pending, 5, "five pending");
	is_int(c.oldest_pending, T0, "oldest pending");
	config(&cfg, url);
	n = deliver(st, &cfg, T0 + 10, &stats);
	is_int(n, 5, "five POSTs");
	is_int(stats.delivered, 5, "five delivered");
	is_int(stats.stopped, 0, "not stopped");
	snap_take(st, MDM_STATE_WEBHOOK_DELIVERED, &s);
	is_int(s.n, 5, "five rows delivered");
	is_int(nrec, 5, "receiver got five");
	mdm_buf_init(&sig, 1024);
	for (i = 0; i < s.n && i < nrec; i++) {
		good_body &= recs[i].len == s.len[i] &&
		    memcmp(recs[i].body, s.body[i], s.len[i]) == 0;
		good_hdr &= strcmp(recs[i].ctype,
		    "application/json; charset=utf-8") == 0 &&
		    strcmp(recs[i].method, "POST") == 0 &&
		    strcmp(recs[i].path, "/hook") == 0;
		mdm_buf_reset(&sig);
		good_sig &= mdm_webhook_hmac(KEY, strlen(KEY), s.body[i],
		    s.len[i], &sig, NULL) == 0 &&
		    strcmp(recs[i].sig, (const char *)sig.data) == 0;
		ok(s.delivered[i] == T0 + 10 && s.attempts[i] == 1 &&
		    s.status[i] == 200 && s.claimed[i] == 0,
		    "row %d: delivered at now, 1 attempt, 200, no lease", i);
	}
	ok(good_body, "bodies as stored, oldest first");
	ok(good_hdr, "POST /hook with Content-Type application/json; "
	    "charset=utf-8");
	ok(good_sig, "X-Hmac-Signature is base64 HMAC-SHA256 of the body");
	ok(nrec > 0 && strstr(recs[0].body, "\"mdm.Authenticate\"") &&
	    strstr(recs[3].body, "\"acknowledge_event\"") &&
	    strstr(recs[2].body, "\"parent_id\":\"DEV-A\""),
	    "event JSON as built");
	mdm_buf_release(&sig);
	snap_free(&s);
	is_int(deliver(st, &cfg, T0 + 20, &stats), 0, "nothing left");
	c = counts(st);
	ok(c.pending == 0 && c.delivered == 5 && c.dead == 0 &&
	    c.oldest_pending == 0, "counts: 0 pending, 5 delivered");

	/* Without a key: no signature header. */
	reset_recs();
	cfg.hmac_key = NULL;
	cfg.hmac_key_len = 0;
	add(st, "mdm.CheckOut", "DEV-C", NULL, T0 + 30);
	is_int(deliver(st, &cfg, T0 + 31, &stats), 1, "one POST");
	ok(nrec == 1 && recs[0].sig[0] == '\0', "unsigned without a key");
	mdm_state_close(st);
}

static void
test_receiver_down(void)
{
	struct mdm_state *st = open_state("down");
	struct mdm_webhook_config cfg;
	struct mdm_webhook_stats stats;
	struct mdm_err e = { 0 };
	struct snap s;
	char down[128];
	int64_t now = T0, a1, a2, b1, at = 0, prev = 0, delay;
	int i, grows = 1, seen[3] = { 0 }, dup = 0, n;

	if (st == NULL)
		return;
	snprintf(down, sizeof(down), "http://127.0.0.1:%d/hook", dead_port());
	config(&cfg, down);
	a1 = add(st, "mdm.Authenticate", "DEV-A", NULL, now);
	a2 = add(st, "mdm.TokenUpdate", "DEV-A", NULL, now);
	b1 = add(st, "mdm.Authenticate", "DEV-B", NULL, now);

	n = deliver(st, &cfg, now, &stats);
	ok(n == 1 && stats.stopped && stats.failed == 1 &&
	    stats.last_status == 0 && stats.last_error[0] != '\0',
	    "nothing listening: one attempt, round stopped (%s)",
	    stats.last_error);
	snap_take(st, 0, &s);
	ok(s.n == 3 && s.id[0] == a1 && s.attempts[0] == 1 &&
	    s.status[0] == 0 && s.next[0] >= now + 800 &&
	    s.next[0] <= now + 1200 && s.claimed[0] == 0,
	    "first event: 1 attempt, status 0, retry in 1 s +-20%%");
	ok(s.n == 3 && s.attempts[1] == 0 && s.claimed[1] == 0 &&
	    s.attempts[2] == 0 && s.claimed[2] == 0,
	    "the rest handed back untried");
	snap_free(&s);
	n = deliver(st, &cfg, now, &stats);
	snap_take(st, 0, &s);
	ok(n == 1 && s.n == 3 && s.id[2] == b1 && s.attempts[2] == 1 &&
	    s.attempts[1] == 0, "next round: DEV-B tried, DEV-A's second "
	    "waits behind its first");
	snap_free(&s);
	is_int(deliver(st, &cfg, now, &stats), 0, "then nothing is due");

	snap_take(st, 0, &s);
	ok(mdm_state_webhook_next_due(st, &at, &e) == 0 && s.n == 3 &&
	    at == (s.next[0] < s.next[2] ? s.next[0] : s.next[2]),
	    "next_due: the sooner of the two retries, not the waiting "
	    "sibling");
	prev = s.next[0] - now;
	snap_free(&s);

	/* Follow the retries of the first event through time. */
	for (i = 0; i < 6; i++) {
		snap_take(st, 0, &s);
		now = s.next[0];
		snap_free(&s);
		while (deliver(st, &cfg, now, &stats) > 0)
			;
		snap_take(st, 0, &s);
		delay = s.next[0] - now;
		grows &= delay > prev;
		prev = delay;
		snap_free(&s);
	}
	snap_take(st, 0, &s);
	ok(grows, "backoff grows with each attempt (last %lld ms)",
	    (long long)prev);
	ok(s.n == 3 && s.attempts[0] == 7 && s.attempts[1] == 0 &&
	    s.dead[0] == 0, "seven attempts recorded, second never tried "
	    "ahead of the first");
	snap_free(&s);
	is_int(counts(st).pending, 3, "nothing lost while down");

	/* The receiver comes back. */
	reset_recs();
	set_mode(OK200);
	config(&cfg, url);
	now += 24 * 3600 * 1000LL;
	n = deliver(st, &cfg, now, &stats);
	ok(n == 3 && stats.delivered == 3, "back: all three delivered");
	ok(nrec == 3 && strstr(recs[0].body, "\"DEV-A\"") &&
	    strstr(recs[0].body, "mdm.Authenticate") &&
	    strstr(recs[1].body, "mdm.TokenUpdate") &&
	    strstr(recs[2].body, "\"DEV-B\""), "in the order written");
	snap_take(st, 0, &s);
	for (i = 0; i < nrec && i < 3; i++) {
		for (n = 0; n < s.n; n++)
			if (strstr(recs[i].body, s.event_id[n]) != NULL)
				seen[n]++;
	}
	for (n = 0; n < 3; n++)
		dup |= seen[n] != 1;
	ok(!dup, "each event exactly once");
	snap_free(&s);
	is_int(deliver(st, &cfg, now + 3600 * 1000LL * 24 * 10, &stats), 0,
	    "nothing sent again");
	(void)a2;
	mdm_state_close(st);
}

static void
test_statuses(void)
{
	struct mdm_state *st = open_state("statuses");
	struct mdm_webhook_config cfg;
	struct mdm_webhook_stats stats;
	struct closer cl;
	struct snap s;
	char u[128];
	int64_t now = T0;
	int n;

	if (st == NULL)
		return;
	config(&cfg, url);

	/* One device's failing event holds back that device only. */
	reset_recs();
	set_mode(FAIL_AUTH);
	add(st, "mdm.Authenticate", "DEV-A", NULL, now);
	add(st, "mdm.TokenUpdate", "DEV-A", NULL, now);
	add(st, "mdm.CheckOut", "DEV-B", NULL, now);
	n = deliver(st, &cfg, now, &stats);
	ok(n == 2 && stats.failed == 1 && stats.delivered == 1 &&
	    !stats.stopped && stats.last_status == 500,
	    "500 for one event: the round goes on (%s)", stats.last_error);
	ok(nrec == 2 && strstr(recs[1].body, "DEV-B") != NULL,
	    "DEV-A's second event not sent ahead of its first");
	snap_take(st, MDM_STATE_WEBHOOK_PENDING, &s);
	ok(s.n == 2 && s.status[0] == 500 && s.attempts[1] == 0 &&
	    s.claimed[1] == 0, "500 recorded; the sibling handed back");
	snap_free(&s);
	set_mode(OK200);
	now += 5000;
	is_int(deliver(st, &cfg, now, &stats), 2, "later both go");
	is_int(counts(st).delivered, 3, "three delivered");

	/* 2xx other than 200, a big reply, a redirect, 503. */
	reset_recs();
	set_mode(BIG);
	add(st, "mdm.CheckOut", "DEV-C", NULL, now);
	n = deliver(st, &cfg, now, &stats);
	ok(n == 1 && stats.delivered == 1, "200 with a reply over the cap "
	    "counts (%s)", stats.last_error);
	set_mode(REDIRECT);
	add(st, "mdm.CheckOut", "DEV-D", NULL, now);
	add(st, "mdm.CheckOut", "DEV-E", NULL, now);
	n = deliver(st, &cfg, now, &stats);
	ok(n == 2 && stats.failed == 2 && stats.last_status == 302 &&
	    !stats.stopped, "302 is a failure, not followed, round goes on");
	set_mode(BUSY503);
	now += 10 * 60 * 1000;
	n = deliver(st, &cfg, now, &stats);
	ok(n == 1 && stats.stopped && stats.last_status == 503,
	    "503 stops the round");

	/* A receiver that hangs past the timeout. */
	set_mode(HANG);
	cfg.timeout_ms = 300;
	now += 10 * 60 * 1000;
	n = deliver(st, &cfg, now, &stats);
	ok(n == 1 && stats.stopped && stats.last_status == 0,
	    "timeout: status 0, round stopped (%s)", stats.last_error);
	set_mode(OK200);

	/* One that hangs up without answering. */
	if (closer_start(&cl) == 0) {
		snprintf(u, sizeof(u), "http://127.0.0.1:%d/hook", cl.port);
		config(&cfg, u);
		now += 10 * 60 * 1000;
		n = deliver(st, &cfg, now, &stats);
		ok(n == 1 && stats.stopped && stats.last_status == 0,
		    "closed without a reply: status 0 (%s)", stats.last_error);
		pthread_join(cl.t, NULL);
		close(cl.fd);
	} else {
		tap_skip(1, "no socket for the closing receiver");
	}
	config(&cfg, url);
	now += 24 * 3600 * 1000LL;
	while (deliver(st, &cfg, now, &stats) > 0)
		;
	is_int(counts(st).pending, 0, "all delivered in the end");
	mdm_state_close(st);
}

static void
test_claims(void)
{
	struct mdm_state *st = open_state("claims"), *st2;
	struct mdm_state_webhook_batch a = { NULL, 0 }, b = { NULL, 0 };
	struct mdm_state_webhook_batch c = { NULL, 0 };
	struct mdm_err e = { 0 };
	char udid[32];
	size_t i, j;
	int overlap = 0, ok_a, ok_b;

	if (st == NULL)
		return;
	st2 = open_state("claims");
	for (i = 0; i < 10; i++) {
		snprintf(udid, sizeof(udid), "DEV-%zu", i);
		add(st, "mdm.CheckOut", udid, NULL, T0);
	}
	ok_a = mdm_state_webhook_claim(st, "a", T0, 60000, 4, &a, &e) == 0;
	ok_b = st2 != NULL && mdm_state_webhook_claim(st2, "b", T0, 60000,
	    10, &b, &e) == 0;
	ok(ok_a && ok_b && a.n == 4 && b.n == 6, "two handles: 4 and 6 "
	    "claimed");
	for (i = 0; i < a.n; i++)
		for (j = 0; j < b.n; j++)
			overlap |= a.ev[i].id == b.ev[j].id;
	ok(!overlap, "no event in both claims");
	ok(a.n == 4 && a.ev[0].id < a.ev[3].id && a.ev[0].body.len > 0 &&
	    strcmp(a.ev[0].topic, "mdm.CheckOut") == 0 &&
	    strcmp(a.ev[0].okey, "DEV-0") == 0, "oldest first, with body");
	ok(mdm_state_webhook_claim(st, "c", T0 + 59999, 60000, 10, &c,
	    &e) == 0 && c.n == 0, "no third claim while leases hold");
	mdm_state_webhook_batch_release(&c);
	ok(mdm_state_webhook_failed(st, a.ev[0].id, "b", 500, "x", T0,
	    0, 0, NULL, &e) == 0, "a failure reported by a non-owner");
	ok(mdm_state_webhook_claim(st, "c", T0 + 60001, 60000, 10, &c,
	    &e) == 0 && c.n == 10, "expired leases are claimed again");
	ok(c.n == 10 && c.ev[0].attempts == 0, "the non-owner's report "
	    "changed nothing");
	ok(mdm_state_webhook_delivered(st, a.ev[1].id, 200, T0, &e) == 0,
	    "delivered by the old owner still counts");
	mdm_state_webhook_batch_release(&a);
	mdm_state_webhook_batch_release(&b);
	mdm_state_webhook_batch_release(&c);
	is_int(counts(st).delivered, 1, "one delivered");
	ok(mdm_state_webhook_claim(st, "", T0, 1, 1, &c, &e) == -1 &&
	    e.code == MDM_E_USAGE, "empty owner refused");
	ok(mdm_state_webhook_claim(st, "x", 1700000000, 1, 1, &c, &e) == -1 &&
	    e.code == MDM_E_USAGE, "now in seconds refused");
	mdm_state_close(st2);
	mdm_state_close(st);
}

#define NTHREADS 4
#define NEVENTS 200

struct worker {
	int index;
	int got;
	int ids[NEVENTS + 1];
	int failed;
};

static void *
worker_main(void *p)
{
	struct worker *w = p;
	struct mdm_state *st = open_state("race");
	struct mdm_state_webhook_batch b;
	struct mdm_err e = { 0 };
	char owner[16];
	size_t i;

	if (st == NULL) {
		w->failed = 1;
		return NULL;
	}
	snprintf(owner, sizeof(owner), "w%d", w->index);
	for (;;) {
		if (mdm_state_webhook_claim(st, owner, T0, 600000, 3, &b,
		    &e) == -1) {
			tap_diag("%s: %s", owner, e.msg);
			w->failed = 1;
			break;
		}
		if (b.n == 0)
			break;
		for (i = 0; i < b.n; i++) {
			if (b.ev[i].id >= 1 && b.ev[i].id <= NEVENTS)
				w->ids[b.ev[i].id]++;
			w->got++;
			if (mdm_state_webhook_delivered(st, b.ev[i].id, 200,
			    T0, &e) == -1)
				w->failed = 1;
		}
		mdm_state_webhook_batch_release(&b);
	}
	mdm_state_close(st);
	return NULL;
}

static void
test_race(void)
{
	struct mdm_state *st = open_state("race");
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	char udid[32];
	int i, k, total = 0, once = 1, failed = 0, spread = 0;

	if (st == NULL)
		return;
	for (i = 0; i < NEVENTS; i++) {
		snprintf(udid, sizeof(udid), "DEV-%d", i % 50);
		add(st, "mdm.CheckOut", udid, NULL, T0);
	}
	memset(w, 0, sizeof(w));
	for (i = 0; i < NTHREADS; i++) {
		w[i].index = i;
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	for (k = 1; k <= NEVENTS; k++) {
		int c = 0;

		for (i = 0; i < NTHREADS; i++)
			c += w[i].ids[k];
		once &= c == 1;
	}
	for (i = 0; i < NTHREADS; i++) {
		total += w[i].got;
		failed |= w[i].failed;
		spread += w[i].got > 0;
	}
	ok(!failed, "four claimers ran without errors");
	is_int(total, NEVENTS, "every event claimed");
	ok(once, "no event claimed twice");
	tap_diag("%d of %d threads got events", spread, NTHREADS);
	is_int(counts(st).delivered, NEVENTS, "all delivered");
	mdm_state_close(st);
}

static void
test_dead(void)
{
	struct mdm_state *st = open_state("dead");
	struct mdm_webhook_config cfg;
	struct mdm_webhook_stats stats;
	struct mdm_err e = { 0 };
	struct snap s;
	char down[128];
	int64_t now = T0, at;
	int i, rounds = 0, dead = 0;

	if (st == NULL)
		return;
	snprintf(down, sizeof(down), "http://127.0.0.1:%d/hook", dead_port());
	config(&cfg, down);
	cfg.max_attempts = 3;
	add(st, "mdm.Authenticate", "DEV-A", NULL, now);
	add(st, "mdm.TokenUpdate", "DEV-A", NULL, now);
	for (i = 0; i < 10 && counts(st).dead == 0; i++) {
		rounds += deliver(st, &cfg, now, &stats) > 0;
		dead += stats.dead;
		if (mdm_state_webhook_next_due(st, &at, &e) == -1 || at == 0)
			break;
		now = at;
	}
	is_int(rounds, 3, "three rounds to give up");
	is_int(dead, 1, "stats count the death");
	snap_take(st, MDM_STATE_WEBHOOK_DEAD, &s);
	ok(s.n == 1 && s.attempts[0] == 3 && s.dead[0] > 0 &&
	    s.status[0] == 0 && s.delivered[0] == 0,
	    "dead after max_attempts, kept with its attempts");
	snap_free(&s);
	/* The dead event no longer holds back its sibling. */
	reset_recs();
	config(&cfg, url);
	ok(deliver(st, &cfg, now, &stats) == 1 && nrec == 1 &&
	    strstr(recs[0].body, "mdm.TokenUpdate") != NULL,
	    "its sibling goes next");

	/* max_age: an old event dies at its first failure. */
	config(&cfg, down);
	cfg.max_age_ms = 60000;
	add(st, "mdm.CheckOut", "DEV-B", NULL, now);
	deliver(st, &cfg, now + 60001, &stats);
	ok(stats.failed == 1 && stats.dead == 1, "older than max_age: dead "
	    "at the first failure");
	is_int(counts(st).dead, 2, "two dead");
	is_int(counts(st).pending, 0, "none pending");
	mdm_state_close(st);
}

static void
test_purge(void)
{
	struct mdm_state *st = open_state("purge");
	struct mdm_state_webhook_batch b = { NULL, 0 };
	struct mdm_state_webhook_counts c;
	struct mdm_err e = { 0 };
	int64_t n = -1, day = 86400 * 1000LL, pend;
	int dead = 0;

	if (st == NULL)
		return;
	add(st, "mdm.CheckOut", "DEV-A", NULL, T0);
	add(st, "mdm.CheckOut", "DEV-B", NULL, T0);
	pend = add(st, "mdm.CheckOut", "DEV-C", NULL, T0);
	if (mdm_state_webhook_claim(st, "p", T0, 1000, 2, &b, &e) == 0 &&
	    b.n == 2) {
		mdm_state_webhook_delivered(st, b.ev[0].id, 200, T0, &e);
		mdm_state_webhook_failed(st, b.ev[1].id, "p", 0, "down", T0, 1,
		    0, &dead, &e);
	}
	mdm_state_webhook_batch_release(&b);
	ok(dead == 1, "one dead (max_attempts 1)");
	/* Many old delivered rows, to see the batches. */
	ok(mdm_state_exec(st, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
	    "SELECT i + 1 FROM n WHERE i < 12000) INSERT INTO webhook_outbox "
	    "(topic, event_id, okey, body, created_at, next_attempt_at, "
	    "attempts, last_status, delivered_at) SELECT 'mdm.CheckOut', "
	    "'e' || i, 'X', x'7b7d', 1600000000000, 1600000000000, 1, 200, "
	    "1600000000000 FROM n", &e) == 0, "12000 old delivered rows");
	ok(mdm_state_webhook_purge(st, T0 + 7 * day - 1, -1, -1, &n,
	    &e) == 0, "purge");
	is_int(n, 12000, "only the old rows go, in batches");
	ok(mdm_state_webhook_purge(st, T0 + 7 * day + 1, -1, -1, &n,
	    &e) == 0 && n == 1, "delivered go after 7 days");
	c = counts(st);
	ok(c.delivered == 0 && c.dead == 1 && c.pending == 1,
	    "dead and pending kept");
	ok(mdm_state_webhook_purge(st, T0 + 30 * day + 1, -1, -1, &n,
	    &e) == 0 && n == 1, "dead go after 30 days");
	ok(mdm_state_webhook_purge(st, T0 + 3650 * day, 0, 0, &n, &e) == 0 &&
	    n == 0 && counts(st).pending == 1, "pending never purged");
	(void)pend;
	mdm_state_close(st);
}

static void
test_add_checks(void)
{
	struct mdm_state *st = open_state("checks");
	struct mdm_err e = { 0 };
	int v = 0;

	if (st == NULL)
		return;
	ok(mdm_state_webhook_add(st, "x", "id", "k", "{}", 2, T0, NULL,
	    &e) == -1 && e.code == MDM_E_USAGE, "bad topic refused");
	ok(mdm_state_webhook_add(st, "mdm.X", "a b", "k", "{}", 2, T0, NULL,
	    &e) == -1 && e.code == MDM_E_USAGE, "bad event_id refused");
	ok(mdm_state_webhook_add(st, "mdm.X", "id", NULL, "{}", 2, T0, NULL,
	    &e) == 0, "raw add without a key");
	ok(mdm_state_webhook_add(st, "mdm.X", "id", "k", "{}", 2, 1700000000,
	    NULL, &e) == -1 && e.code == MDM_E_USAGE, "seconds refused");
	if (mdm_state_schema_version(st, &v, &e) == -1)
		v = -1;
	ok(v >= 4, "schema version %d has the outbox", v);
	mdm_state_close(st);
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (start_receiver() == -1) {
		tap_skip(1, "no local receiver");
		curl_global_cleanup();
		return tap_done();
	}
	test_add_checks();
	test_in_order();
	test_receiver_down();
	test_statuses();
	test_claims();
	test_race();
	test_dead();
	test_purge();
	mdm_http_server_free(srv);
	reset_recs();
	curl_global_cleanup();
	return tap_done();
}
