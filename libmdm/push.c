#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "apns.h"
#include "buf.h"
#include "cli.h"
#include "file.h"
#include "log.h"
#include "push.h"
#include "pushcert.h"
#include "state.h"
#include "state_queue.h"
#include "x509.h"
#include "mdm_int.h"

/* Not pushed yet: only inside this file, never reported. */
#define OUT_NONE	MDM_PUSH_NOUTCOMES

struct item {
	char *id, *token, *magic;	/* owned */
	enum mdm_push_outcome outcome;	/* or OUT_NONE */
	int status;
	int answered;			/* APNs gave an HTTP answer */
	char *reason;			/* owned; NULL: none (most pushes) */
};

/*
 * One topic: the ids of this window, its identity, its connection (kept
 * from one window to the next), its thread.
 */
struct topic {
	char *name;			/* owned */
	struct item *v;			/* owned */
	size_t n, alloc;
	size_t *todo;			/* owned: indexes of this round */
	size_t ntodo, cursor, todo_alloc;
	X509 *cert;			/* owned */
	EVP_PKEY *key;			/* owned */
	int loaded;			/* identity read (or failed) */
	char *no_cert;			/* owned: why there is no identity */
	char *fatal;			/* owned: why APNs refused the topic */
	struct mdm_apns *apns;		/* owned; NULL until needed */
	int tried;			/* pushed in some window */
	int reached;			/* APNs answered some push */
	int transport_failed;		/* some window lost the server */
	size_t counted;			/* ids added to p->done */
	pthread_t tid;
	int started;
	struct mdm_push *p;
};

struct mdm_push {
	struct mdm_state *st;		/* borrowed */
	struct mdm_push_config cfg;	/* strings borrowed */
	struct topic *topics;		/* owned */
	size_t ntopics;
	size_t held;			/* targets in this window */
	unsigned long long taken;	/* targets pushed, every window */
	pthread_mutex_t lock;
	unsigned long long done;	/* under lock: pushes judged */
	size_t finished;		/* under lock: topics done */
	struct mdm_push_stats stats;
	int ran;
};

static const char *const outcome_names[] = {
	[MDM_PUSH_OK] = "ok",
	[MDM_PUSH_TOKEN_DEAD] = "token-dead",
	[MDM_PUSH_REFUSED] = "refused",
	[MDM_PUSH_RETRY] = "retry",
	[MDM_PUSH_TOPIC_FAILED] = "topic-failed",
	[MDM_PUSH_UNKNOWN] = "unknown",
	[MDM_PUSH_SKIPPED] = "skipped",
	[MDM_PUSH_NO_PUSH_CERT] = "no-push-cert",
};

const char *
mdm_push_outcome_name(enum mdm_push_outcome o)
{
	if ((size_t)o >= MDM_ARRAY_LEN(outcome_names))
		return "none";
	return outcome_names[o];
}

int
mdm_push_parse_url(const char *url, char *host, size_t hostlen, char *port,
    size_t portlen, struct mdm_err *e)
{
	const char *h, *end, *colon;
	size_t len, plen;

	if (strncmp(url, "https://", 8) != 0)
		goto bad;
	h = url + 8;
	len = strlen(h);
	if (len > 0 && h[len - 1] == '/')
		len--;
	end = h + len;
	if (*h == '[') {
		if ((colon = memchr(h, ']', len)) == NULL)
			goto bad;
		h++;
		len = (size_t)(colon - h);
		colon++;
		if (colon != end && *colon != ':')
			goto bad;
	} else {
		colon = memchr(h, ':', len);
		len = colon != NULL ? (size_t)(colon - h) : len;
	}
	if (len == 0 || len >= hostlen || memchr(h, '/', len) != NULL)
		goto bad;
	memcpy(host, h, len);
	host[len] = '\0';
	if (colon == NULL || colon == end) {
		snprintf(port, portlen, "443");
		return 0;
	}
	plen = (size_t)(end - colon - 1);
	if (plen == 0 || plen >= portlen ||
	    strspn(colon + 1, "0123456789") < plen)
		goto bad;
	memcpy(port, colon + 1, plen);
	port[plen] = '\0';
	return 0;
bad:
	return mdm_err_set(e, MDM_E_USAGE, "'%s' is not https://host[:port]",
	    url);
}

int
mdm_push_server(const char *url, int sandbox, char *host, size_t hostlen,
    char *port, size_t portlen, struct mdm_err *e)
{
	if (url == NULL) {
		snprintf(host, hostlen, "%s", sandbox ? MDM_APNS_HOST_SANDBOX :
		    MDM_APNS_HOST);
		snprintf(port, portlen, "443");
		return 0;
	}
	if (sandbox)
		return mdm_err_set(e, MDM_E_USAGE, "--apns-url and --sandbox "
		    "exclude each other");
	if (mdm_push_parse_url(url, host, hostlen, port, portlen, e) == -1) {
		mdm_err_prefix(e, "--apns-url");
		return -1;
	}
	return 0;
}

int
mdm_push_exit_status(const struct mdm_push_stats *s)
{
	if (s->topics_tried > 0 && s->topics_unreachable == s->topics_tried)
		return MDM_EX_UNAVAILABLE;
	if (s->n[MDM_PUSH_RETRY] > 0)
		return MDM_EX_TEMPFAIL;
	if (s->n[MDM_PUSH_TOKEN_DEAD] + s->n[MDM_PUSH_REFUSED] +
	    s->n[MDM_PUSH_TOPIC_FAILED] + s->n[MDM_PUSH_UNKNOWN] +
	    s->n[MDM_PUSH_NO_PUSH_CERT] > 0)
		return MDM_EX_NO;
	return MDM_EX_OK;
}

const struct mdm_push_stats *
mdm_push_stats(const struct mdm_push *p)
{
	return &p->stats;
}

static int
report(struct mdm_push *p, const char *id, enum mdm_push_outcome o,
    int status, const char *reason, struct mdm_err *e)
{
	p->stats.n[o]++;
	return p->cfg.report(p->cfg.arg, id, o, status, reason, e);
}

int
mdm_push_new(struct mdm_state *st, const struct mdm_push_config *cfg,
    struct mdm_push **out, struct mdm_err *e)
{
	struct mdm_push *p;
	int err;

	*out = NULL;
	if (cfg->report == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "push: no report callback");
	if (cfg->priority != 0 && cfg->priority != 5 && cfg->priority != 10)
		return mdm_err_set(e, MDM_E_USAGE, "push: priority %d is not "
		    "5 or 10", cfg->priority);
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	if ((err = pthread_mutex_init(&p->lock, NULL)) != 0) {
		free(p);
		return mdm_err_set_sys(e, MDM_E_SOFTWARE, err,
		    "pthread_mutex_init");
	}
	p->st = st;
	p->cfg = *cfg;
	if (p->cfg.host == NULL)
		p->cfg.host = MDM_APNS_HOST;
	if (p->cfg.port == NULL)
		p->cfg.port = "443";
	if (p->cfg.priority == 0)
		p->cfg.priority = 10;
	*out = p;
	return 0;
}

static void
item_release(struct item *it)
{
	free(it->id);
	free(it->token);
	free(it->magic);
	free(it->reason);
}

/*
 * Keeps a copy of why (none for an empty one): a reason is rare, so an
 * item carries a pointer, not a buffer, and 100,000 ids stay small.  Out
 * of memory only loses the text.
 */
static void
set_reason(struct item *it, const char *why)
{
	free(it->reason);
	it->reason = why != NULL && *why != '\0' ? strdup(why) : NULL;
}

void
mdm_push_free(struct mdm_push *p)
{
	size_t i, j;

	if (p == NULL)
		return;
	for (i = 0; i < p->ntopics; i++) {
		for (j = 0; j < p->topics[i].n; j++)
			item_release(&p->topics[i].v[j]);
		free(p->topics[i].v);
		free(p->topics[i].todo);
		free(p->topics[i].name);
		free(p->topics[i].no_cert);
		free(p->topics[i].fatal);
		mdm_apns_free(p->topics[i].apns);
		X509_free(p->topics[i].cert);
		EVP_PKEY_free(p->topics[i].key);
	}
	free(p->topics);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static struct topic *
topic_get(struct mdm_push *p, const char *name, struct mdm_err *e)
{
	struct topic *t;
	size_t i;

	for (i = 0; i < p->ntopics; i++)
		if (strcmp(p->topics[i].name, name) == 0)
			return &p->topics[i];
	if ((t = reallocarray(p->topics, p->ntopics + 1, sizeof(*t))) ==
	    NULL)
		goto oom;
	p->topics = t;
	t = &p->topics[p->ntopics];
	memset(t, 0, sizeof(*t));
	if ((t->name = strdup(name)) == NULL)
		goto oom;
	t->p = p;
	p->ntopics++;
	return t;
oom:
	mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	return NULL;
}

/* Takes the enrollment as a push target, or reports why not. */
static int
add_target(struct mdm_push *p, const struct mdm_state_enrollment *en,
    struct mdm_err *e)
{
	const char *why = NULL;
	struct topic *t;
	struct item *it;

	if (!en->enabled)
		why = "enrollment disabled";
	else if (en->token_dead)
		why = "push token dead: waiting for a new TokenUpdate";
	else if (en->topic == NULL || en->push_token == NULL ||
	    en->push_magic == NULL)
		why = "no push token, magic or topic yet";
	else if (strlen(en->push_token) > MDM_APNS_TOKEN_MAX ||
	    strlen(en->push_magic) > MDM_APNS_MAGIC_MAX)
		why = "push token or magic too long";
	if (why != NULL)
		return report(p, en->id, MDM_PUSH_SKIPPED, 0, why, e);
	if ((t = topic_get(p, en->topic, e)) == NULL)
		return -1;
	if (t->n == t->alloc) {
		it = reallocarray(t->v, t->alloc ? 2 * t->alloc : 64,
		    sizeof(*it));
		if (it == NULL)
			goto oom;
		t->v = it;
		t->alloc = t->alloc ? 2 * t->alloc : 64;
	}
	it = &t->v[t->n];
	memset(it, 0, sizeof(*it));
	it->outcome = OUT_NONE;
	it->id = strdup(en->id);
	it->token = strdup(en->push_token);
	it->magic = strdup(en->push_magic);
	if (it->id == NULL || it->token == NULL || it->magic == NULL) {
		item_release(it);
		goto oom;
	}
	t->n++;
	p->held++;
	return 0;
oom:
	return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
}

static int flush(struct mdm_push *, struct mdm_err *);

/* One page of a filter: its targets and the id to go on after. */
struct page {
	struct mdm_push *p;
	int64_t rows;
	char last[512];
};

static int
add_each(const struct mdm_state_enrollment *en, void *arg,
    struct mdm_err *e)
{
	struct page *pg = arg;

	pg->rows++;
	snprintf(pg->last, sizeof(pg->last), "%s", en->id);
	return add_target(pg->p, en, e);
}

/*
 * A page at a time, so no more than a window of enrollments is ever
 * held, and the database is written (push results) only between pages,
 * never under a running SELECT.
 */
int
mdm_push_add_filter(struct mdm_push *p,
    const struct mdm_state_enroll_filter *f, struct mdm_err *e)
{
	struct mdm_state_enroll_filter pf = { 0 };
	struct page pg;
	char after[sizeof(pg.last)];

	if (f != NULL)
		pf = *f;
	pf.limit = MDM_PUSH_WINDOW;
	pf.after_id = NULL;
	for (;;) {
		memset(&pg, 0, sizeof(pg));
		pg.p = p;
		if (mdm_state_enroll_foreach(p->st, &pf, add_each, &pg,
		    e) == -1)
			return -1;
		if (pg.rows < MDM_PUSH_WINDOW)
			return 0;
		snprintf(after, sizeof(after), "%s", pg.last);
		pf.after_id = after;
		if (p->held >= MDM_PUSH_WINDOW && flush(p, e) == -1)
			return -1;
	}
}

int
mdm_push_add(struct mdm_push *p, const char *key, struct mdm_err *e)
{
	struct mdm_state_enrollment en;
	struct mdm_err le = { 0 };
	int rc;

	if (mdm_state_enroll_get(p->st, key, &en, &le) == -1) {
		if (le.code != MDM_E_NOINPUT && le.code != MDM_E_DATA) {
			if (e != NULL)
				*e = le;
			return -1;
		}
		return report(p, key, MDM_PUSH_UNKNOWN, 0, le.msg, e);
	}
	rc = add_target(p, &en, e);
	mdm_state_enrollment_release(&en);
	if (rc == 0 && p->held >= MDM_PUSH_WINDOW)
		rc = flush(p, e);
	return rc;
}

/* STATE/push/TOPIC.pem and .key, read afresh by every run. */
static int
load_identity(struct mdm_state *st, struct topic *t, struct mdm_err *e)
{
	char stem[MDM_PUSHCERT_TOPIC_MAX + 8];

	/* The topic came from a device: it names a file only if it passes. */
	if (mdm_pushcert_topic_check(t->name, e) == -1)
		return -1;
	snprintf(stem, sizeof(stem), "push/%s", t->name);
	return mdm_state_identity(st, stem, "no push certificate for this "
	    "topic: run 'mdm-certs push-import'", &t->cert, &t->key, e);
}

static int
next_push(void *arg, struct mdm_apns_push *ap)
{
	struct topic *t = arg;
	const struct item *it;
	size_t i;

	if (t->cursor == t->ntodo)
		return 0;
	i = t->todo[t->cursor++];
	it = &t->v[i];
	memset(ap, 0, sizeof(*ap));
	/* Lengths were checked when the target was taken. */
	snprintf(ap->token, sizeof(ap->token), "%s", it->token);
	snprintf(ap->magic, sizeof(ap->magic), "%s", it->magic);
	ap->priority = t->p->cfg.priority;
	ap->expiration = t->p->cfg.expiration;
	ap->cookie = i;
	return 1;
}

static void
done_push(void *arg, const struct mdm_apns_push *ap,
    const struct mdm_apns_result *r)
{
	static const enum mdm_push_outcome map[] = {
		[MDM_APNS_OK] = MDM_PUSH_OK,
		[MDM_APNS_TOKEN_DEAD] = MDM_PUSH_TOKEN_DEAD,
		[MDM_APNS_TOPIC_FATAL] = MDM_PUSH_TOPIC_FAILED,
		[MDM_APNS_RETRY] = MDM_PUSH_RETRY,
		[MDM_APNS_REFUSED] = MDM_PUSH_REFUSED,
	};
	struct topic *t = arg;
	struct item *it = &t->v[ap->cookie];

	it->outcome = map[r->outcome];
	it->status = r->status;
	if (r->status != 0)
		it->answered = 1;
	set_reason(it, r->reason[0] != '\0' ? r->reason : r->error);
	if (it->outcome != MDM_PUSH_RETRY) {
		t->counted++;
		pthread_mutex_lock(&t->p->lock);
		t->p->done++;
		pthread_mutex_unlock(&t->p->lock);
	}
}

/* Marks the ids of this round mdm_apns_run() never took. */
static void
mark_rest(struct topic *t, enum mdm_push_outcome o, const char *reason)
{
	struct item *it;

	for (; t->cursor < t->ntodo; t->cursor++) {
		it = &t->v[t->todo[t->cursor]];
		it->outcome = o;
		set_reason(it, reason);
	}
}

static void
backoff(int round)
{
	struct timespec ts;
	uint16_t r = 0;
	long ms = (long)MDM_PUSH_RETRY_BASE_MS << round;

	/* Jitter, so many runs retrying at once do not stay in step. */
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) == 1)
		ms += (long)r % (ms / 2 + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * One topic's pushes of this window: a first round over every id, then
 * up to MDM_PUSH_RETRY_ROUNDS more over those that came back RETRY.  A
 * fatal topic ends it, and every later window; a server that cannot be
 * reached ends it (the client already retried connecting, with backoff,
 * before saying so), and the next window connects afresh.
 */
static void *
topic_main(void *arg)
{
	struct topic *t = arg;
	struct mdm_apns_config cfg;
	struct mdm_err e = { 0 };
	size_t i, n;
	int round;

	for (i = 0; i < t->n; i++)
		t->todo[i] = i;
	t->ntodo = t->n;
	t->cursor = 0;
	if (t->fatal != NULL) {
		mark_rest(t, MDM_PUSH_TOPIC_FAILED, t->fatal);
		goto out;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.host = t->p->cfg.host;
	cfg.port = t->p->cfg.port;
	cfg.topic = t->name;
	cfg.cert = t->cert;
	cfg.key = t->key;
	cfg.ca_file = t->p->cfg.ca_file;
	cfg.max_streams = t->p->cfg.max_streams;
	if (t->apns == NULL && mdm_apns_new(&cfg, &t->apns, &e) == -1) {
		t->fatal = strdup(e.msg);
		mark_rest(t, MDM_PUSH_TOPIC_FAILED, e.msg);
		goto out;
	}
	for (round = 0;; round++) {
		if (mdm_apns_run(t->apns, next_push, done_push, t, &e) == -1) {
			if (e.code == MDM_E_CONFIG) {
				t->fatal = strdup(e.msg);
				mark_rest(t, MDM_PUSH_TOPIC_FAILED, e.msg);
			} else {
				mark_rest(t, MDM_PUSH_RETRY, e.msg);
				t->transport_failed = 1;
			}
			mdm_apns_free(t->apns);
			t->apns = NULL;
			break;
		}
		for (i = n = 0; i < t->ntodo; i++)
			if (t->v[t->todo[i]].outcome == MDM_PUSH_RETRY)
				t->todo[n++] = t->todo[i];
		if (n == 0 || round == MDM_PUSH_RETRY_ROUNDS)
			break;
		mdm_log_info("%s: %zu push%s to retry", t->name, n,
		    n == 1 ? "" : "es");
		t->ntodo = n;
		t->cursor = 0;
		backoff(round);
	}
	if (t->fatal != NULL)
		mdm_log_error("topic %s: %s", t->name, t->fatal);
out:
	for (i = 0; i < t->n && !t->reached; i++)
		t->reached = t->v[i].answered;
	pthread_mutex_lock(&t->p->lock);
	/* Those still to retry, or never sent, are done now too. */
	t->p->done += t->n - t->counted;
	t->p->finished++;
	pthread_mutex_unlock(&t->p->lock);
	return NULL;
}

/* Stores the push health of every id APNs (or the transport) judged. */
static int
record_topic(struct mdm_push *p, struct topic *t, struct mdm_err *e)
{
	struct item *it;
	int64_t now = (int64_t)time(NULL);
	size_t i, inchunk = 0;

	for (i = 0; i < t->n; i++) {
		it = &t->v[i];
		if (it->outcome == OUT_NONE)
			it->outcome = MDM_PUSH_RETRY;
		if (it->outcome != MDM_PUSH_NO_PUSH_CERT && (it->answered ||
		    it->outcome == MDM_PUSH_RETRY)) {
			if (inchunk == 0 && mdm_state_begin(p->st, e) == -1)
				return -1;
			if (mdm_state_enroll_push_result(p->st, it->id, now,
			    it->status, it->reason,
			    it->outcome == MDM_PUSH_TOKEN_DEAD, e) == -1 &&
			    e->code != MDM_E_NOINPUT)
				goto fail;
			if (++inchunk == MDM_PUSH_RECORD_CHUNK) {
				if (mdm_state_commit(p->st, e) == -1)
					goto fail;
				inchunk = 0;
			}
		}
		if (report(p, it->id, it->outcome, it->status,
		    it->reason != NULL ? it->reason : "", e) == -1)
			goto fail;
	}
	if (inchunk > 0 && mdm_state_commit(p->st, e) == -1)
		goto fail;
	return 0;
fail:
	mdm_state_rollback(p->st);
	return -1;
}

/* Empties a topic's window; what the items held is reported by now. */
static void
topic_clear(struct topic *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		item_release(&t->v[i]);
	t->n = 0;
	t->ntodo = t->cursor = t->counted = 0;
	t->started = 0;
}

static void
wait_topics(struct mdm_push *p)
{
	struct timespec ts = { 0, 100 * 1000000L };
	unsigned long long done;
	size_t finished, started = 0, i;

	for (i = 0; i < p->ntopics; i++)
		started += p->topics[i].started;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		done = p->done;
		finished = p->finished;
		pthread_mutex_unlock(&p->lock);
		if (p->cfg.progress != NULL)
			p->cfg.progress(p->cfg.arg, done, p->taken);
		if (finished == started)
			break;
		nanosleep(&ts, NULL);
	}
	for (i = 0; i < p->ntopics; i++)
		if (p->topics[i].started)
			pthread_join(p->topics[i].tid, NULL);
}

/* The identity of a topic, read once a run; a failure is kept. */
static void
topic_load(struct mdm_push *p, struct topic *t)
{
	struct mdm_err le = { 0 };

	if (t->loaded)
		return;
	t->loaded = 1;
	if (load_identity(p->st, t, &le) == 0)
		return;
	mdm_log_error("%s", le.msg);
	t->no_cert = strdup(le.msg);
}

/* Room for a round's indexes: a window's worth at most. */
static int
todo_reserve(struct topic *t, struct mdm_err *e)
{
	size_t *v;

	if (t->todo_alloc >= t->n)
		return 0;
	if ((v = reallocarray(t->todo, t->n, sizeof(*v))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	t->todo = v;
	t->todo_alloc = t->n;
	return 0;
}

/*
 * Pushes the targets held, one thread a topic, then records and reports
 * each and lets them go: the window is empty again.
 */
static int
flush(struct mdm_push *p, struct mdm_err *e)
{
	struct topic *t;
	size_t i, j;
	int rc = 0, err;

	p->finished = 0;
	for (i = 0; i < p->ntopics && rc == 0; i++) {
		t = &p->topics[i];
		if (t->n == 0)
			continue;
		topic_load(p, t);
		if (t->no_cert != NULL) {
			for (j = 0; j < t->n; j++) {
				t->v[j].outcome = MDM_PUSH_NO_PUSH_CERT;
				set_reason(&t->v[j], t->no_cert);
			}
			continue;
		}
		if (todo_reserve(t, e) == -1) {
			rc = -1;
			break;
		}
		p->taken += t->n;
		if ((err = pthread_create(&t->tid, NULL, topic_main, t)) != 0) {
			mdm_err_set_sys(e, MDM_E_SOFTWARE, err,
			    "pthread_create");
			rc = -1;
			break;
		}
		t->started = 1;
		if (!t->tried) {
			t->tried = 1;
			p->stats.topics_tried++;
		}
	}
	wait_topics(p);
	for (i = 0; i < p->ntopics; i++) {
		t = &p->topics[i];
		if (rc == 0 && t->n > 0 && record_topic(p, t, e) == -1)
			rc = -1;
		topic_clear(t);
	}
	p->held = 0;
	return rc;
}

int
mdm_push_run(struct mdm_push *p, struct mdm_err *e)
{
	struct topic *t;
	size_t i;

	/* A second run would push and report every target again. */
	if (p->ran)
		return mdm_err_set(e, MDM_E_USAGE, "push: run twice");
	p->ran = 1;
	if (flush(p, e) == -1)
		return -1;
	for (i = 0; i < p->ntopics; i++) {
		t = &p->topics[i];
		p->stats.topics_unreachable += t->tried &&
		    t->transport_failed && !t->reached;
		mdm_apns_free(t->apns);
		t->apns = NULL;
	}
	return 0;
}
