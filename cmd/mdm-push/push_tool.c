#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "apns.h"
#include "file.h"
#include "log.h"
#include "push_tool.h"
#include "state.h"
#include "state_queue.h"
#include "x509.h"
#include "banned.h"

#define RETRY_ROUNDS	3	/* rounds after the first, for RETRY ones */
#define RETRY_BASE_MS	1000	/* doubled each round, plus jitter */
#define RECORD_CHUNK	1000	/* push results per state transaction */
#define URL_MAX		512

enum {
	OPT_PENDING = 256,
	OPT_STALE,
	OPT_APNS_URL,
	OPT_SANDBOX,
	OPT_APNS_CA,
	OPT_PRIORITY,
	OPT_EXPIRATION,
	OPT_MAX_STREAMS,
};

/* What one id came to; the order is the order of the names below. */
enum outcome {
	OUT_NONE,		/* not pushed yet */
	OUT_OK,
	OUT_TOKEN_DEAD,
	OUT_REFUSED,
	OUT_RETRY,
	OUT_TOPIC_FAILED,
	OUT_UNKNOWN,
	OUT_SKIPPED,
	OUT_NO_PUSH_CERT,
};

static const char *const outcome_names[] = {
	"none", "ok", "token-dead", "refused", "retry", "topic-failed",
	"unknown", "skipped", "no-push-cert",
};

struct item {
	char *id, *token, *magic;	/* owned */
	enum outcome outcome;
	int status;
	int answered;			/* APNs gave an HTTP answer */
	char reason[MDM_ERR_MSG_MAX];
};

struct push;

/* One topic: its ids, its identity, its thread. */
struct topic {
	char *name;			/* owned */
	struct item *v;			/* owned */
	size_t n, alloc;
	size_t *todo;			/* owned: indexes of this round */
	size_t ntodo, cursor;
	X509 *cert;
	EVP_PKEY *key;
	int unreachable;		/* never reached the server */
	size_t counted;			/* ids added to p->done */
	pthread_t tid;
	int started;
	struct push *p;
};

struct push {
	struct mdm_cli *cli;
	char host[URL_MAX];
	char port[16];
	const char *ca_file;
	int priority;
	int64_t expiration;		/* 0: deliver now or never */
	unsigned max_streams;
	struct topic *topics;		/* owned */
	size_t ntopics;
	pthread_mutex_t lock;
	unsigned long long done;	/* under lock: pushes reported */
	size_t finished;		/* under lock: topics done */
	/* tallies for the exit status */
	int refused, retry, attempted, unreachable;
};

static const struct mdm_cli_opt push_opts[] = {
	{ "pending", 0, NULL, OPT_PENDING,
	    "push every enabled enrollment with queued commands" },
	{ "stale", 0, "duration", OPT_STALE,
	    "push every enabled enrollment not seen for this long" },
	{ "apns-url", 0, "url", OPT_APNS_URL,
	    "APNs server, https://host[:port] (default: "
	    "https://" MDM_APNS_HOST ")" },
	{ "sandbox", 0, NULL, OPT_SANDBOX,
	    "use the sandbox server " MDM_APNS_HOST_SANDBOX },
	{ "apns-ca", 0, "file", OPT_APNS_CA,
	    "trust this CA for the APNs server (default: the system's)" },
	{ "priority", 0, "5|10", OPT_PRIORITY,
	    "apns-priority (default: 10)" },
	{ "expiration", 0, "duration", OPT_EXPIRATION,
	    "keep the push this long for an offline device (default: 1d; "
	    "0: now or never)" },
	{ "max-streams", 0, "n", OPT_MAX_STREAMS,
	    "pushes in flight per topic at most (default: 1000)" },
	MDM_CLI_OPT_END
};

static void
item_release(struct item *it)
{
	free(it->id);
	free(it->token);
	free(it->magic);
}

static void
push_release(struct push *p)
{
	size_t i, j;

	for (i = 0; i < p->ntopics; i++) {
		for (j = 0; j < p->topics[i].n; j++)
			item_release(&p->topics[i].v[j]);
		free(p->topics[i].v);
		free(p->topics[i].todo);
		free(p->topics[i].name);
		X509_free(p->topics[i].cert);
		EVP_PKEY_free(p->topics[i].key);
	}
	free(p->topics);
	pthread_mutex_destroy(&p->lock);
}

/* https://host[:port][/], host a name, an IPv4 or a [IPv6] literal. */
static int
parse_url(const char *url, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char *h, *end, *colon;
	size_t len, plen;

	if (strncmp(url, "https://", 8) != 0)
		return -1;
	h = url + 8;
	len = strlen(h);
	if (len > 0 && h[len - 1] == '/')
		len--;
	end = h + len;
	if (*h == '[') {
		if ((colon = memchr(h, ']', len)) == NULL)
			return -1;
		h++;
		len = (size_t)(colon - h);
		colon++;
		if (colon != end && *colon != ':')
			return -1;
	} else {
		colon = memchr(h, ':', len);
		len = colon != NULL ? (size_t)(colon - h) : len;
	}
	if (len == 0 || len >= hostlen || memchr(h, '/', len) != NULL)
		return -1;
	memcpy(host, h, len);
	host[len] = '\0';
	if (colon == NULL || colon == end) {
		snprintf(port, portlen, "443");
		return 0;
	}
	plen = (size_t)(end - colon - 1);
	if (plen == 0 || plen >= portlen ||
	    strspn(colon + 1, "0123456789") < plen)
		return -1;
	memcpy(port, colon + 1, plen);
	port[plen] = '\0';
	return 0;
}

static int
print_rec(struct mdm_cli *cli, const char *id, enum outcome o, int status,
    const char *reason, struct mdm_err *e)
{
	struct mdm_cli_field f[4] = {
		MDM_CLI_FSTR("id", id),
		MDM_CLI_FSTR("outcome", outcome_names[o]),
		MDM_CLI_FINT("status", status),
		MDM_CLI_FSTR("reason", reason),
	};

	return mdm_cli_record(cli, f, 4, e);
}

/* An id that goes no further than this: printed now, and tallied. */
static int
report_now(struct push *p, const char *id, enum outcome o,
    const char *reason, struct mdm_err *e)
{
	if (o != OUT_SKIPPED)
		p->refused = 1;
	return print_rec(p->cli, id, o, 0, reason, e);
}

/* A topic names files in STATE/push/: a plain file name only. */
static int
safe_topic(const char *s)
{
	return *s != '\0' && *s != '.' && strlen(s) <= MDM_APNS_TOPIC_MAX &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-_") == strlen(s);
}

static struct topic *
topic_get(struct push *p, const char *name, struct mdm_err *e)
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

/*
 * Takes the enrollment as a push target, or reports why not.  Only the
 * id, token and magic are kept (about 150 bytes an id).
 */
static int
add_target(struct push *p, const struct mdm_state_enrollment *en,
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
		return report_now(p, en->id, OUT_SKIPPED, why, e);
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
	it->id = strdup(en->id);
	it->token = strdup(en->push_token);
	it->magic = strdup(en->push_magic);
	if (it->id == NULL || it->token == NULL || it->magic == NULL) {
		item_release(it);
		goto oom;
	}
	t->n++;
	return 0;
oom:
	return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
}

static int
add_each(const struct mdm_state_enrollment *en, void *arg,
    struct mdm_err *e)
{
	return add_target(arg, en, e);
}

static int
add_ids(struct push *p, struct mdm_state *st, int argc, char **argv,
    struct mdm_err *e)
{
	struct mdm_state_enrollment en;
	struct mdm_cli_ids ids;
	const char *id;
	int rc;

	mdm_cli_ids_init(&ids, p->cli, argc, argv);
	while ((rc = mdm_cli_ids_next(&ids, &id, e)) == 1) {
		if (mdm_state_enroll_get(st, id, &en, e) == -1) {
			if (e->code != MDM_E_NOINPUT && e->code != MDM_E_DATA) {
				rc = -1;
				break;
			}
			if (report_now(p, id, OUT_UNKNOWN, e->msg, e) == -1) {
				rc = -1;
				break;
			}
			continue;
		}
		rc = add_target(p, &en, e);
		mdm_state_enrollment_release(&en);
		if (rc == -1)
			break;
	}
	mdm_cli_ids_release(&ids);
	return rc;
}

/* STATE/push/TOPIC.pem and .key, read afresh by every run. */
static int
load_identity(struct mdm_state *st, struct topic *t, struct mdm_err *e)
{
	char rel[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	struct mdm_buf b;
	int rc = -1;

	mdm_buf_init_secret(&b, MDM_CAP_CERT);
	if (!safe_topic(t->name)) {
		mdm_err_set(e, MDM_E_CONFIG, "topic '%s' is not a file name",
		    t->name);
		goto out;
	}
	snprintf(rel, sizeof(rel), "push/%s.pem", t->name);
	if (mdm_state_path(st, rel, cert, sizeof(cert), e) == -1)
		goto out;
	snprintf(rel, sizeof(rel), "push/%s.key", t->name);
	if (mdm_state_path(st, rel, key, sizeof(key), e) == -1)
		goto out;
	if (!mdm_file_exists(cert)) {
		mdm_err_set(e, MDM_E_CONFIG, "no push certificate for topic "
		    "%s: run 'mdm-certs push-import'", t->name);
		goto out;
	}
	if (mdm_x509_load_cert(cert, &t->cert, e) == -1 ||
	    mdm_file_read_private(key, &b, e) == -1)
		goto out;
	if (mdm_x509_key_from_mem(b.data, b.len, NULL, &t->key, e) == -1) {
		mdm_err_prefix(e, "%s", key);
		goto out;
	}
	if (!mdm_x509_key_matches(t->cert, t->key)) {
		mdm_err_set(e, MDM_E_CONFIG, "%s does not belong to %s", key,
		    cert);
		goto out;
	}
	rc = 0;
out:
	mdm_buf_release_secret(&b);
	return rc;
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
	ap->priority = t->p->priority;
	ap->expiration = t->p->expiration;
	ap->cookie = i;
	return 1;
}

static void
done_push(void *arg, const struct mdm_apns_push *ap,
    const struct mdm_apns_result *r)
{
	static const enum outcome map[] = {
		[MDM_APNS_OK] = OUT_OK,
		[MDM_APNS_TOKEN_DEAD] = OUT_TOKEN_DEAD,
		[MDM_APNS_TOPIC_FATAL] = OUT_TOPIC_FAILED,
		[MDM_APNS_RETRY] = OUT_RETRY,
		[MDM_APNS_REFUSED] = OUT_REFUSED,
	};
	struct topic *t = arg;
	struct item *it = &t->v[ap->cookie];

	it->outcome = map[r->outcome];
	it->status = r->status;
	if (r->status != 0)
		it->answered = 1;
	snprintf(it->reason, sizeof(it->reason), "%s", r->reason[0] != '\0' ?
	    r->reason : r->error);
	if (it->outcome != OUT_RETRY) {
		t->counted++;
		pthread_mutex_lock(&t->p->lock);
		t->p->done++;
		pthread_mutex_unlock(&t->p->lock);
	}
}

/* Marks the ids of this round run() never took. */
static void
mark_rest(struct topic *t, enum outcome o, const char *reason)
{
	struct item *it;

	for (; t->cursor < t->ntodo; t->cursor++) {
		it = &t->v[t->todo[t->cursor]];
		it->outcome = o;
		snprintf(it->reason, sizeof(it->reason), "%s", reason);
	}
}

static void
backoff(int round)
{
	struct timespec ts;
	uint16_t r = 0;
	long ms = (long)RETRY_BASE_MS << round;

	/* Jitter, so many runs retrying at once do not stay in step. */
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) == 1)
		ms += (long)r % (ms / 2 + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * One topic's pushes: a first round over every id, then up to
 * RETRY_ROUNDS more over those that came back RETRY.  A fatal topic or
 * a server that cannot be reached ends it: the client already retried
 * connecting, with backoff, before saying so.
 */
static void *
topic_main(void *arg)
{
	struct topic *t = arg;
	struct mdm_apns_config cfg;
	struct mdm_apns *a = NULL;
	struct mdm_err e = { 0 };
	size_t i, n;
	int round, answered = 0;

	memset(&cfg, 0, sizeof(cfg));
	cfg.host = t->p->host;
	cfg.port = t->p->port;
	cfg.topic = t->name;
	cfg.cert = t->cert;
	cfg.key = t->key;
	cfg.ca_file = t->p->ca_file;
	cfg.max_streams = t->p->max_streams;
	for (i = 0; i < t->n; i++)
		t->todo[i] = i;
	t->ntodo = t->n;
	t->cursor = 0;
	if (mdm_apns_new(&cfg, &a, &e) == -1) {
		mark_rest(t, OUT_TOPIC_FAILED, e.msg);
		goto out;
	}
	for (round = 0;; round++) {
		if (mdm_apns_run(a, next_push, done_push, t, &e) == -1) {
			for (i = 0; i < t->n && !answered; i++)
				answered = t->v[i].answered;
			if (e.code == MDM_E_CONFIG)
				mark_rest(t, OUT_TOPIC_FAILED, e.msg);
			else {
				mark_rest(t, OUT_RETRY, e.msg);
				t->unreachable = !answered;
			}
			break;
		}
		for (i = n = 0; i < t->ntodo; i++)
			if (t->v[t->todo[i]].outcome == OUT_RETRY)
				t->todo[n++] = t->todo[i];
		if (n == 0 || round == RETRY_ROUNDS)
			break;
		mdm_log_info("%s: %zu push%s to retry", t->name, n,
		    n == 1 ? "" : "es");
		t->ntodo = n;
		t->cursor = 0;
		backoff(round);
	}
	for (i = 0; i < t->n; i++)
		if (t->v[i].outcome == OUT_TOPIC_FAILED) {
			mdm_log_error("topic %s: %s", t->name,
			    t->v[i].reason);
			break;
		}
out:
	mdm_apns_free(a);
	pthread_mutex_lock(&t->p->lock);
	/* Those still to retry, or never sent, are done now too. */
	t->p->done += t->n - t->counted;
	t->p->finished++;
	pthread_mutex_unlock(&t->p->lock);
	return NULL;
}

/* Stores the push health of every id APNs (or the transport) judged. */
static int
record_topic(struct push *p, struct mdm_state *st, struct topic *t,
    struct mdm_err *e)
{
	struct item *it;
	int64_t now = (int64_t)time(NULL);
	size_t i, inchunk = 0;

	for (i = 0; i < t->n; i++) {
		it = &t->v[i];
		if (it->outcome == OUT_NONE)
			it->outcome = OUT_RETRY;
		switch (it->outcome) {
		case OUT_OK:
			break;
		case OUT_RETRY:
			p->retry = 1;
			break;
		default:
			p->refused = 1;
			break;
		}
		if (it->outcome != OUT_NO_PUSH_CERT && (it->answered ||
		    it->outcome == OUT_RETRY)) {
			if (inchunk == 0 && mdm_state_begin(st, e) == -1)
				return -1;
			if (mdm_state_enroll_push_result(st, it->id, now,
			    it->status, it->reason[0] != '\0' ? it->reason :
			    NULL, it->outcome == OUT_TOKEN_DEAD, e) == -1 &&
			    e->code != MDM_E_NOINPUT)
				goto fail;
			if (++inchunk == RECORD_CHUNK) {
				if (mdm_state_commit(st, e) == -1)
					goto fail;
				inchunk = 0;
			}
		}
		if (print_rec(p->cli, it->id, it->outcome, it->status,
		    it->reason, e) == -1)
			goto fail;
	}
	if (inchunk > 0 && mdm_state_commit(st, e) == -1)
		goto fail;
	return 0;
fail:
	mdm_state_rollback(st);
	return -1;
}

static void
wait_topics(struct push *p, unsigned long long total)
{
	struct mdm_progress pg;
	struct timespec ts = { 0, 100 * 1000000L };
	unsigned long long done;
	size_t finished, started = 0, i;

	for (i = 0; i < p->ntopics; i++)
		started += p->topics[i].started;
	mdm_progress_start(&pg, p->cli, "pushing", total);
	for (;;) {
		pthread_mutex_lock(&p->lock);
		done = p->done;
		finished = p->finished;
		pthread_mutex_unlock(&p->lock);
		mdm_progress_update(&pg, done);
		if (finished == started)
			break;
		nanosleep(&ts, NULL);
	}
	mdm_progress_end(&pg);
	for (i = 0; i < p->ntopics; i++)
		if (p->topics[i].started)
			pthread_join(p->topics[i].tid, NULL);
}

static int
push_all(struct push *p, struct mdm_state *st, struct mdm_err *e)
{
	struct mdm_err le;
	struct topic *t;
	unsigned long long total = 0;
	size_t i, j;
	int rc = 0, err;

	for (i = 0; i < p->ntopics; i++) {
		t = &p->topics[i];
		memset(&le, 0, sizeof(le));
		if (load_identity(st, t, &le) == -1) {
			mdm_log_error("%s", le.msg);
			for (j = 0; j < t->n; j++) {
				t->v[j].outcome = OUT_NO_PUSH_CERT;
				snprintf(t->v[j].reason,
				    sizeof(t->v[j].reason), "%s", le.msg);
			}
			continue;
		}
		if ((t->todo = calloc(t->n, sizeof(*t->todo))) == NULL)
			return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		total += t->n;
	}
	for (i = 0; i < p->ntopics; i++) {
		t = &p->topics[i];
		if (t->todo == NULL)
			continue;
		if ((err = pthread_create(&t->tid, NULL, topic_main, t)) != 0) {
			mdm_err_set_sys(e, MDM_E_SOFTWARE, err,
			    "pthread_create");
			rc = -1;
			break;
		}
		t->started = 1;
		p->attempted++;
	}
	wait_topics(p, total);
	if (rc == -1)
		return -1;
	for (i = 0; i < p->ntopics; i++) {
		t = &p->topics[i];
		p->unreachable += t->unreachable;
		if (record_topic(p, st, t, e) == -1)
			return -1;
	}
	return 0;
}

static int
run(struct mdm_cli *cli, int argc, char **argv)
{
	struct push p;
	struct mdm_state_enroll_filter f;
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	const char *arg, *url = NULL;
	long long v, stale = -1, expiration = 86400;
	int ch, pending = 0, sandbox = 0, rc;

	memset(&p, 0, sizeof(p));
	pthread_mutex_init(&p.lock, NULL);
	p.cli = cli;
	p.priority = 10;
	while ((ch = mdm_cli_getopt(cli, argc, argv, push_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_PENDING:
			pending = 1;
			break;
		case OPT_STALE:
			if (mdm_cli_parse_duration(arg, &stale, &e) == -1 ||
			    stale < 1) {
				rc = mdm_cli_usage(cli, "--stale: '%s' is not "
				    "a positive duration", arg);
				goto out;
			}
			break;
		case OPT_APNS_URL:
			url = arg;
			break;
		case OPT_SANDBOX:
			sandbox = 1;
			break;
		case OPT_APNS_CA:
			p.ca_file = arg;
			break;
		case OPT_PRIORITY:
			if (strcmp(arg, "5") != 0 && strcmp(arg, "10") != 0) {
				rc = mdm_cli_usage(cli, "--priority: '%s' is "
				    "not 5 or 10", arg);
				goto out;
			}
			p.priority = atoi(arg);
			break;
		case OPT_EXPIRATION:
			if (mdm_cli_parse_duration(arg, &expiration, &e) ==
			    -1 || expiration < 0 || expiration > 366 * 86400) {
				rc = mdm_cli_usage(cli, "--expiration: '%s' is "
				    "not a duration up to 366d", arg);
				goto out;
			}
			break;
		case OPT_MAX_STREAMS:
			if (mdm_cli_parse_int(arg, 1, 100000, &v, &e) == -1) {
				rc = mdm_cli_usage(cli, "--max-streams: %s",
				    e.msg);
				goto out;
			}
			p.max_streams = (unsigned)v;
			break;
		default:
			rc = cli->status;
			goto out;
		}
	}
	if (pending && stale != -1) {
		rc = mdm_cli_usage(cli, "--pending and --stale exclude each "
		    "other");
		goto out;
	}
	if ((pending || stale != -1) && cli->optind != argc) {
		rc = mdm_cli_usage(cli, "--pending and --stale take no ids");
		goto out;
	}
	if (url != NULL && sandbox) {
		rc = mdm_cli_usage(cli, "--apns-url and --sandbox exclude each "
		    "other");
		goto out;
	}
	if (url != NULL && parse_url(url, p.host, sizeof(p.host), p.port,
	    sizeof(p.port)) == -1) {
		rc = mdm_cli_usage(cli, "--apns-url: '%s' is not "
		    "https://host[:port]", url);
		goto out;
	}
	if (url == NULL) {
		snprintf(p.host, sizeof(p.host), "%s", sandbox ?
		    MDM_APNS_HOST_SANDBOX : MDM_APNS_HOST);
		snprintf(p.port, sizeof(p.port), "443");
	}
	p.expiration = expiration == 0 ? 0 :
	    (int64_t)time(NULL) + expiration;

	if (mdm_state_open(mdm_cli_state_dir(cli), 0, &st, &e) == -1)
		goto fail;
	if (pending || stale != -1) {
		memset(&f, 0, sizeof(f));
		f.pending = pending;
		f.enabled = 1;
		if (stale != -1)
			f.seen_before = (int64_t)time(NULL) - stale;
		if (mdm_state_enroll_foreach(st, &f, add_each, &p, &e) == -1)
			goto fail;
	} else if (add_ids(&p, st, argc - cli->optind, argv + cli->optind,
	    &e) == -1)
		goto fail;
	if (push_all(&p, st, &e) == -1)
		goto fail;
	if (p.attempted > 0 && p.unreachable == p.attempted) {
		mdm_log_error("APNs at %s:%s could not be reached", p.host,
		    p.port);
		rc = MDM_EX_UNAVAILABLE;
	} else if (p.retry)
		rc = MDM_EX_TEMPFAIL;
	else if (p.refused)
		rc = MDM_EX_NO;
	else
		rc = MDM_EX_OK;
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	mdm_state_close(st);
	push_release(&p);
	return rc;
}

const struct mdm_cli_tool mdm_push_tool = {
	.name = "mdm-push",
	.summary = "Wake enrolled devices through APNs so they check in",
	.synopsis = "[--pending | --stale duration] [--apns-url url | "
	    "--sandbox] [--apns-ca file] [--priority 5|10] "
	    "[--expiration duration] [--max-streams n] [id ...]",
	.opts = push_opts,
	.run = run,
};
