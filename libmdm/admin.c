#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "admin.h"
#include "json.h"
#include "log.h"
#include "pushcert.h"
#include "queue.h"
#include "state_queue.h"
#include "version.h"
#include "x509.h"
#include "mdm_int.h"

#define CT_JSON		"application/json"
#define REALM		"Basic realm=\"mdm\""
#define PUSH_EXPIRY_S	86400	/* mdm-push's default: a day offline */

/* ---- the push thread ---- */

struct push_item {
	char *id;
	enum mdm_push_outcome o;
	char *reason;
};

/*
 * One request's push.  refs and done are guarded by the pusher's lock;
 * items are written by the push thread only until done is set, and read
 * by the waiter only after it saw done.
 */
struct job {
	struct job *next;
	int refs;
	int done;
	char **ids;
	size_t n;
	struct push_item *items;
	size_t nitems, capitems;
	char error[MDM_ERR_MSG_MAX];	/* the run failed: why */
};

struct mdm_admin_pusher {
	char *state_dir;
	struct mdm_push_config cfg;
	struct mdm_metrics *metrics;
	size_t max_jobs, njobs;
	struct job *head, *tail;
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	pthread_t tid;
	int started, stopping;
};

static void
job_free(struct job *j)
{
	size_t i;

	if (j == NULL)
		return;
	for (i = 0; i < j->n; i++)
		free(j->ids[i]);
	free(j->ids);
	for (i = 0; i < j->nitems; i++) {
		free(j->items[i].id);
		free(j->items[i].reason);
	}
	free(j->items);
	free(j);
}

/* With the pusher's lock held. */
static void
job_unref(struct job *j)
{
	if (--j->refs == 0)
		job_free(j);
}

struct run_ctx {
	struct mdm_admin_pusher *p;
	struct job *j;
};

static int
job_report(void *arg, const char *id, enum mdm_push_outcome o, int status,
    const char *reason, struct mdm_err *e)
{
	struct run_ctx *c = arg;
	struct job *j = c->j;
	struct push_item *it;
	size_t cap;

	(void)status;
	mdm_metrics_push(c->p->metrics, o);
	if (j->nitems == j->capitems) {
		cap = j->capitems == 0 ? 8 : j->capitems * 2;
		if ((it = realloc(j->items, cap * sizeof(*it))) == NULL)
			return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		j->items = it;
		j->capitems = cap;
	}
	it = &j->items[j->nitems];
	it->o = o;
	it->id = strdup(id);
	it->reason = strdup(reason != NULL ? reason : "");
	if (it->id == NULL || it->reason == NULL) {
		free(it->id);
		free(it->reason);
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	}
	j->nitems++;
	return 0;
}

static void
run_job(struct mdm_admin_pusher *p, struct mdm_state **st, struct job *j)
{
	struct mdm_push_config cfg = p->cfg;
	struct mdm_push *run = NULL;
	struct run_ctx c;
	struct mdm_err e = { 0 };
	size_t i;

	c.p = p;
	c.j = j;
	cfg.report = job_report;
	cfg.progress = NULL;
	cfg.arg = &c;
	cfg.expiration = (int64_t)time(NULL) + PUSH_EXPIRY_S;
	if (*st == NULL && mdm_state_open(p->state_dir, 0, st, &e) == -1)
		goto fail;
	if (mdm_push_new(*st, &cfg, &run, &e) == -1)
		goto fail;
	for (i = 0; i < j->n; i++)
		if (mdm_push_add(run, j->ids[i], &e) == -1)
			goto fail;
	if (mdm_push_run(run, &e) == -1)
		goto fail;
	mdm_push_free(run);
	return;
fail:
	mdm_push_free(run);
	mdm_log_warn("push: %s", e.msg);
	snprintf(j->error, sizeof(j->error), "%s", e.msg);
	/* A handle that failed may be broken: the next job opens anew. */
	if (e.code == MDM_E_IO || e.code == MDM_E_CONFIG) {
		mdm_state_close(*st);
		*st = NULL;
	}
}

static void *
pusher_main(void *arg)
{
	struct mdm_admin_pusher *p = arg;
	struct mdm_state *st = NULL;
	struct job *j;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stopping && p->head == NULL)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stopping)
			break;
		j = p->head;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->njobs--;
		pthread_mutex_unlock(&p->lock);
		run_job(p, &st, j);
		pthread_mutex_lock(&p->lock);
		j->done = 1;
		pthread_cond_broadcast(&p->done);
		job_unref(j);
	}
	while ((j = p->head) != NULL) {
		p->head = j->next;
		snprintf(j->error, sizeof(j->error), "the server is stopping");
		j->done = 1;
		job_unref(j);
	}
	p->tail = NULL;
	p->njobs = 0;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->lock);
	mdm_state_close(st);
	return NULL;
}

int
mdm_admin_pusher_new(const char *state_dir, const struct mdm_push_config *cfg,
    struct mdm_metrics *metrics, size_t max_jobs,
    struct mdm_admin_pusher **out, struct mdm_err *e)
{
	struct mdm_admin_pusher *p;
	pthread_condattr_t ca;
	int err;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->state_dir = strdup(state_dir)) == NULL) {
		free(p);
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	}
	p->cfg = *cfg;
	p->metrics = metrics;
	p->max_jobs = max_jobs > 0 ? max_jobs : MDM_ADMIN_PUSH_JOBS;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	/* Waiters time out by the monotonic clock: a clock step is no
	   reason to answer late or early. */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->done, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&p->work, NULL);
	if ((err = pthread_create(&p->tid, NULL, pusher_main, p)) != 0) {
		mdm_admin_pusher_free(p);
		return mdm_err_set_sys(e, MDM_E_SOFTWARE, err, "cannot start "
		    "the push thread");
	}
	p->started = 1;
	*out = p;
	return 0;
}

void
mdm_admin_pusher_free(struct mdm_admin_pusher *p)
{
	if (p == NULL)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->lock);
		p->stopping = 1;
		pthread_cond_signal(&p->work);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->tid, NULL);
	}
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	free(p->state_dir);
	free(p);
}

/*
 * Queues a push of ids (copied) and waits for it at most wait_ms.
 * Returns the job (the caller holds a reference: put_job it), or NULL
 * with e set when the queue is full or memory ran out.  *done says
 * whether its outcomes are in.
 */
static struct job *
push_and_wait(struct mdm_admin_pusher *p, char *const *ids, size_t n,
    int wait_ms, int *done, struct mdm_err *e)
{
	struct job *j;
	struct timespec until;

	*done = 0;
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->ids = calloc(n > 0 ? n : 1, sizeof(*j->ids))) == NULL) {
		free(j);
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		return NULL;
	}
	for (j->n = 0; j->n < n; j->n++)
		if ((j->ids[j->n] = strdup(ids[j->n])) == NULL) {
			job_free(j);
			mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
			return NULL;
		}
	j->refs = 2;
	pthread_mutex_lock(&p->lock);
	if (p->stopping || p->njobs >= p->max_jobs) {
		pthread_mutex_unlock(&p->lock);
		job_free(j);
		mdm_err_set(e, MDM_E_TEMPFAIL, "the push queue is full (%zu "
		    "pushes waiting): the command is queued, the device "
		    "gets it at its next check-in", p->max_jobs);
		return NULL;
	}
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->njobs++;
	pthread_cond_signal(&p->work);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!j->done && pthread_cond_timedwait(&p->done, &p->lock,
	    &until) != ETIMEDOUT)
		;
	*done = j->done;
	pthread_mutex_unlock(&p->lock);
	return j;
}

static void
put_job(struct mdm_admin_pusher *p, struct job *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	job_unref(j);
	pthread_mutex_unlock(&p->lock);
}

/* ---- requests ---- */

struct mdm_admin {
	struct mdm_state *st;
	const struct mdm_admin_config *cfg;
};

int
mdm_admin_new(struct mdm_state *st, const struct mdm_admin_config *cfg,
    struct mdm_admin **out, struct mdm_err *e)
{
	struct mdm_admin *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	a->st = st;
	a->cfg = cfg;
	*out = a;
	return 0;
}

void
mdm_admin_free(struct mdm_admin *a)
{
	free(a);
}

int
mdm_admin_route(const char *path)
{
	return path != NULL && (strncmp(path, "/v1/", 4) == 0 ||
	    strcmp(path, "/version") == 0 || strcmp(path, "/metrics") == 0);
}

void
mdm_admin_response_init(struct mdm_admin_response *r)
{
	memset(r, 0, sizeof(*r));
	mdm_buf_init(&r->body, MDM_ADMIN_BODY_MAX);
}

void
mdm_admin_response_release(struct mdm_admin_response *r)
{
	if (r == NULL)
		return;
	mdm_buf_release(&r->body);
}

/* An answer with no body, or a plain-text reason for an API client. */
static void
answer(struct mdm_admin_response *r, int status, const char *outcome,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
answer(struct mdm_admin_response *r, int status, const char *outcome,
    const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	r->outcome = outcome;
	r->content_type = NULL;
	mdm_buf_reset(&r->body);
	if (fmt == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	mdm_strip_newlines(r->reason);
	/* API clients are ours: they get the reason. */
	if (mdm_buf_printf(&r->body, NULL, "%s\n", r->reason) == 0)
		r->content_type = "text/plain; charset=utf-8";
}

/* Answers j (a reference taken: freed here) as JSON. */
static void
answer_json(struct mdm_admin_response *r, int status, const char *outcome,
    json_t *j)
{
	struct mdm_err e = { 0 };

	mdm_buf_reset(&r->body);
	if (j == NULL || mdm_json_dump(j, &r->body, 0, &e) == -1 ||
	    mdm_buf_append_str(&r->body, "\n", &e) == -1) {
		json_decref(j);
		answer(r, 500, "error", "cannot make the JSON answer: %s",
		    j == NULL ? "out of memory" : e.msg);
		return;
	}
	json_decref(j);
	r->status = status;
	r->outcome = outcome;
	r->content_type = CT_JSON;
}

/* A state failure: busy is worth a retry, the rest is ours. */
static void
answer_err(struct mdm_admin_response *r, const struct mdm_err *e)
{
	switch (e->code) {
	case MDM_E_TEMPFAIL:
		answer(r, 503, "busy", "%s", e->msg);
		break;
	case MDM_E_NOINPUT:
		answer(r, 404, "not-found", "%s", e->msg);
		break;
	case MDM_E_DATA:
	case MDM_E_TOOBIG:
	case MDM_E_USAGE:
		answer(r, 400, "bad-request", "%s", e->msg);
		break;
	case MDM_E_EXISTS:
		answer(r, 409, "conflict", "%s", e->msg);
		break;
	default:
		answer(r, 500, "error", "%s", e->msg);
		break;
	}
}

static int
authorized(const struct mdm_admin *a, const char *header)
{
	unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
	unsigned int wn = 0, gn = 0;
	struct mdm_buf cred;
	const char *pw;
	size_t hl;
	int ok = 0;

	if (header == NULL || strncasecmp(header, "Basic ", 6) != 0)
		return 0;
	header += 6;
	while (*header == ' ')
		header++;
	hl = strlen(header);
	/* Room for a user name beside the longest key. */
	if (hl > 2 * MDM_ADMIN_KEY_MAX)
		return 0;
	mdm_buf_init_secret(&cred, 2 * MDM_ADMIN_KEY_MAX);
	if (mdm_base64_decode(header, hl, &cred, NULL) == -1 ||
	    mdm_buf_append(&cred, "", 1, NULL) == -1 ||
	    (pw = memchr(cred.data, ':', cred.len - 1)) == NULL)
		goto out;
	pw++;
	/* Digests, so the comparison takes as long whatever the lengths. */
	if (EVP_Digest(pw, cred.len - 1 - (size_t)(pw -
	    (const char *)cred.data), got, &gn, EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(a->cfg->key, a->cfg->key_len, want, &wn, EVP_sha256(),
	    NULL) != 1 || gn != wn)
		goto out;
	ok = CRYPTO_memcmp(got, want, wn) == 0;
out:
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	mdm_buf_release_secret(&cred);
	return ok;
}

/*
 * %-decodes s[0..len) into out.  Refuses a bad escape and anything that
 * decodes to a control character (NUL included): ids are printed in
 * logs and JSON keys.
 */
static int
pct_decode(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;
	int hi, lo, c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			if ((hi = mdm_hex_digit(s[i + 1])) < 0 ||
			    (lo = mdm_hex_digit(s[i + 2])) < 0)
				return -1;
			c = hi << 4 | lo;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f || o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/*
 * The query parameter name, %-decoded ('+' left as is) into out: 1 when
 * present, 0 when absent, -1 when it does not decode or fit.
 */
static int
query_param(const char *query, const char *name, char *out, size_t outlen)
{
	const char *p = query, *amp, *eq;
	size_t nl = strlen(name);

	while (p != NULL && *p != '\0') {
		amp = strchr(p, '&');
		eq = memchr(p, '=', amp != NULL ? (size_t)(amp - p) :
		    strlen(p));
		if ((size_t)((eq != NULL ? eq : amp != NULL ? amp :
		    p + strlen(p)) - p) == nl && strncmp(p, name, nl) == 0) {
			if (eq == NULL) {
				out[0] = '\0';
				return 1;
			}
			eq++;
			return pct_decode(eq, amp != NULL ? (size_t)(amp - eq) :
			    strlen(eq), out, outlen) == -1 ? -1 : 1;
		}
		p = amp != NULL ? amp + 1 : NULL;
	}
	return 0;
}

/* The limit parameter: 1..MDM_ADMIN_LIMIT_MAX, default when absent. */
static int
parse_limit(const char *query, size_t *out)
{
	char v[32], *end;
	long long n;
	int rc;

	*out = MDM_ADMIN_LIMIT_DEFAULT;
	if ((rc = query_param(query, "limit", v, sizeof(v))) <= 0)
		return rc;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (v[0] == '\0' || *end != '\0' || errno != 0 || n < 1 ||
	    n > MDM_ADMIN_LIMIT_MAX)
		return -1;
	*out = (size_t)n;
	return 0;
}

/* The comma-separated ids of a path's tail; -1 with why in e. */
static int
parse_ids(const char *s, struct mdm_queue_ids *out, struct mdm_err *e)
{
	char id[MDM_QUEUE_ID_MAX + 1];
	const char *comma;
	size_t len, n = 1;

	for (comma = s; (comma = strchr(comma, ',')) != NULL; comma++)
		n++;
	if (*s == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "no enrollment id in the "
		    "path");
	if (n > MDM_ADMIN_IDS_MAX)
		return mdm_err_set(e, MDM_E_USAGE, "more than %d ids in one "
		    "request", MDM_ADMIN_IDS_MAX);
	for (;;) {
		comma = strchr(s, ',');
		len = comma != NULL ? (size_t)(comma - s) : strlen(s);
		if (len == 0 || pct_decode(s, len, id, sizeof(id)) == -1 ||
		    id[0] == '\0')
			return mdm_err_set(e, MDM_E_USAGE, "id %zu of the path "
			    "is empty, too long or not printable", out->n + 1);
		if (mdm_queue_ids_add(out, id, MDM_ADMIN_IDS_MAX, e) == -1)
			return -1;
		if (comma == NULL)
			break;
		s = comma + 1;
	}
	return 0;
}

/* "2026-01-07T04:04:46Z", NanoMDM's form of a time. */
static json_t *
json_time(int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	char s[32];

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(s);
}

static json_t *
json_str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

/* The per-id entry of an APIResult's status map, made when missing. */
static json_t *
status_entry(json_t *status, const char *id)
{
	json_t *o;

	if ((o = json_object_get(status, id)) != NULL)
		return o;
	o = json_object();
	if (o == NULL || json_object_set_new(status, id, o) == -1)
		return NULL;
	return o;
}

/*
 * Adds the outcome of a push to status: what arrived in time, and
 * "queued" for the ids whose push is still to come.  ids are those
 * pushed, keys of status.
 */
static int
push_results(struct mdm_admin *a, json_t *res, json_t *status,
    char *const *ids, size_t n)
{
	struct mdm_err e = { 0 };
	struct job *j;
	json_t *o;
	char msg[MDM_ERR_MSG_MAX + 64];
	size_t i;
	int done, wait_ms;

	if (n == 0)
		return 0;
	if (a->cfg->pusher == NULL)
		return json_object_set_new(res, "push_error",
		    json_string("no push configured"));
	wait_ms = a->cfg->push_wait_ms > 0 ? a->cfg->push_wait_ms :
	    MDM_ADMIN_PUSH_WAIT_MS;
	if ((j = push_and_wait(a->cfg->pusher, ids, n, wait_ms, &done,
	    &e)) == NULL) {
		for (i = 0; i < n; i++)
			if ((o = status_entry(status, ids[i])) == NULL ||
			    json_object_set_new(o, "push_error",
			    json_string(e.msg)) == -1)
				return -1;
		return 0;
	}
	if (done) {
		for (i = 0; i < j->nitems; i++) {
			if ((o = status_entry(status, j->items[i].id)) == NULL)
				goto fail;
			if (j->items[i].o == MDM_PUSH_OK) {
				if (json_object_set_new(o, "push_result",
				    json_string("ok")) == -1)
					goto fail;
				continue;
			}
			snprintf(msg, sizeof(msg), "%s%s%s",
			    mdm_push_outcome_name(j->items[i].o),
			    j->items[i].reason[0] != '\0' ? ": " : "",
			    j->items[i].reason);
			if (json_object_set_new(o, "push_error",
			    json_string(msg)) == -1)
				goto fail;
		}
		if (j->error[0] != '\0' && json_object_set_new(res,
		    "push_error", json_string(j->error)) == -1)
			goto fail;
	}
	/* Ids without an outcome yet: their push is on its way. */
	for (i = 0; i < n; i++) {
		if ((o = status_entry(status, ids[i])) == NULL)
			goto fail;
		if (json_object_get(o, "push_result") == NULL &&
		    json_object_get(o, "push_error") == NULL &&
		    json_object_set_new(o, "push_result", done &&
		    j->error[0] != '\0' ? json_string("not pushed") :
		    json_string("queued")) == -1)
			goto fail;
	}
	put_job(a->cfg->pusher, j);
	return 0;
fail:
	put_job(a->cfg->pusher, j);
	return -1;
}

/* NanoMDM's status code: 200 all went through, 207 some, 500 none. */
static int
api_status(json_t *res)
{
	json_t *status, *o;
	const char *k;
	size_t errs = 0, total;

	if (json_object_get(res, "push_error") != NULL ||
	    json_object_get(res, "command_error") != NULL)
		return 500;
	status = json_object_get(res, "status");
	total = json_object_size(status);
	json_object_foreach(status, k, o) {
		if (json_object_get(o, "push_error") != NULL ||
		    json_object_get(o, "command_error") != NULL)
			errs++;
	}
	if (errs == 0)
		return 200;
	return errs < total ? 207 : 500;
}

struct enq_ctx {
	json_t *status;
	struct mdm_queue_ids topush;
	int failed;
};

static int
enq_report(const char *given, const char *id,
    enum mdm_state_enqueue_outcome o, void *arg, struct mdm_err *e)
{
	struct enq_ctx *c = arg;
	json_t *ent;

	if ((ent = status_entry(c->status, id != NULL ? id : given)) == NULL)
		goto oom;
	switch (o) {
	case MDM_STATE_ENQ_UNKNOWN:
		if (json_object_set_new(ent, "command_error",
		    json_string("no such enrollment")) == -1)
			goto oom;
		return 0;
	case MDM_STATE_ENQ_AMBIGUOUS:
		if (json_object_set_new(ent, "command_error",
		    json_string("serial number of several enrollments: name "
		    "one by its enrollment id")) == -1)
			goto oom;
		return 0;
	case MDM_STATE_ENQ_QUEUED:
	case MDM_STATE_ENQ_DUPLICATE:
		break;
	}
	return mdm_queue_ids_add(&c->topush, id, MDM_ADMIN_IDS_MAX, e);
oom:
	return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
}

static int
nopush_param(const char *query)
{
	char v[16];

	/* NanoMDM: any non-empty value means no push. */
	return query_param(query, "nopush", v, sizeof(v)) != 0 && v[0] != '\0';
}

static void
do_enqueue(struct mdm_admin *a, const struct mdm_admin_request *q,
    const char *tail, struct mdm_admin_response *r)
{
	struct mdm_queue_ids ids = { 0 };
	struct enq_ctx c = { 0 };
	struct mdm_queue_cmd cmd = { 0 };
	struct mdm_err e = { 0 };
	json_t *res = NULL;
	int nopush;

	if (strcmp(q->method, "PUT") != 0 && strcmp(q->method, "POST") != 0) {
		answer(r, 405, "method", "enqueue takes PUT or POST");
		goto out;
	}
	nopush = nopush_param(q->query);
	if (parse_ids(tail, &ids, &e) == -1) {
		answer_err(r, &e);
		goto out;
	}
	if (q->len == 0 || mdm_queue_cmd_parse(q->body, q->len, &cmd,
	    &e) == -1) {
		if (q->len == 0)
			mdm_err_set(&e, MDM_E_DATA, "no command in the body");
		res = json_pack("{s:s}", "command_error", e.msg);
		answer_json(r, 400, "bad-command", res);
		snprintf(r->reason, sizeof(r->reason), "%s", e.msg);
		res = NULL;
		goto out;
	}
	if ((res = json_object()) == NULL ||
	    (c.status = json_object()) == NULL ||
	    json_object_set_new(res, "status", c.status) == -1) {
		answer(r, 500, "error", "out of memory");
		goto out;
	}
	if (mdm_state_queue_enqueue(a->st, &cmd, (const char *const *)ids.v,
	    ids.n, MDM_STATE_ENQ_SKIP_UNKNOWN, enq_report, &c, NULL,
	    &e) == -1) {
		answer_err(r, &e);
		goto out;
	}
	if ((nopush && json_object_set_new(res, "no_push",
	    json_true()) == -1) ||
	    (!nopush && push_results(a, res, c.status, c.topush.v,
	    c.topush.n) == -1) ||
	    json_object_set_new(res, "command_uuid",
	    json_string(cmd.uuid)) == -1 ||
	    json_object_set_new(res, "request_type",
	    json_string(cmd.request_type)) == -1) {
		answer(r, 500, "error", "out of memory");
		goto out;
	}
	answer_json(r, api_status(res), "enqueue", res);
	res = NULL;
out:
	json_decref(res);
	mdm_queue_ids_release(&c.topush);
	mdm_queue_ids_release(&ids);
	mdm_queue_cmd_release(&cmd);
}

static void
do_push(struct mdm_admin *a, const char *tail, struct mdm_admin_response *r)
{
	struct mdm_queue_ids ids = { 0 };
	struct mdm_err e = { 0 };
	json_t *res = NULL, *status;

	if (parse_ids(tail, &ids, &e) == -1) {
		answer_err(r, &e);
		goto out;
	}
	if ((res = json_object()) == NULL ||
	    (status = json_object()) == NULL ||
	    json_object_set_new(res, "status", status) == -1 ||
	    push_results(a, res, status, ids.v, ids.n) == -1) {
		answer(r, 500, "error", "out of memory");
		goto out;
	}
	answer_json(r, api_status(res), "push", res);
	res = NULL;
out:
	json_decref(res);
	mdm_queue_ids_release(&ids);
}

/* ---- push certificates ---- */

static json_t *
pushcert_json(const char *topic, X509 *c)
{
	struct mdm_x509_info info;

	if (mdm_x509_inspect(c, &info, NULL) == -1)
		return json_pack("{s:s,s:n}", "topic", topic, "not_after");
	return json_pack("{s:s,s:o}", "topic", topic, "not_after",
	    json_time((int64_t)info.not_after));
}

static void
pushcert_put(struct mdm_admin *a, const struct mdm_admin_request *q,
    struct mdm_admin_response *r)
{
	struct mdm_buf b;
	struct mdm_err e = { 0 };
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	char topic[MDM_PUSHCERT_TOPIC_MAX], other[MDM_PUSHCERT_TOPIC_MAX];
	char force[8];
	const char *k;
	int known;

	/* A NUL-terminated copy, wiped: it holds the private key. */
	mdm_buf_init_secret(&b, MDM_CAP_CERT);
	if (mdm_buf_append(&b, q->body, q->len, &e) == -1 ||
	    mdm_buf_append(&b, "", 1, &e) == -1)
		goto bad;
	if ((k = mdm_pushcert_pem_key((const char *)b.data)) == NULL) {
		mdm_err_set(&e, MDM_E_DATA, "no PEM private key in the body "
		    "(send the certificate and its key, PEM, concatenated)");
		goto bad;
	}
	if (mdm_x509_cert_from_mem(b.data, b.len - 1, &cert, &e) == -1 ||
	    mdm_x509_key_from_mem(k, b.len - 1 - (size_t)(k -
	    (const char *)b.data), NULL, &key, &e) == -1 ||
	    mdm_pushcert_topic(cert, topic, sizeof(topic), &e) == -1)
		goto bad;
	if (mdm_pushcert_other_topic(a->st, topic, &known, other,
	    sizeof(other), &e) == -1) {
		answer_err(r, &e);
		goto out;
	}
	/* As mdm-certs push-import: a new topic strands enrolled devices. */
	if (!known && other[0] != '\0' && query_param(q->query, "force",
	    force, sizeof(force)) != 1) {
		answer_json(r, 409, "conflict", json_pack("{s:s,s:s}", "error",
		    "the state holds the push certificate of another topic: "
		    "a new topic strands every device enrolled under it; "
		    "renew that certificate, or add ?force=1", "topic",
		    other));
		goto out;
	}
	if (mdm_pushcert_store(a->st, topic, cert, key, &e) == -1) {
		/* MDM_E_DATA: the key does not belong to the certificate. */
		if (e.code == MDM_E_DATA)
			goto bad;
		answer_err(r, &e);
		goto out;
	}
	answer_json(r, 200, "pushcert", pushcert_json(topic, cert));
	goto out;
bad:
	answer_json(r, 400, "bad-pushcert", json_pack("{s:s}", "error",
	    e.msg));
	snprintf(r->reason, sizeof(r->reason), "%s", e.msg);
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	mdm_buf_release_secret(&b);
}

struct cert_list {
	struct mdm_state *st;
	json_t *arr;
	const char *only;	/* the topic asked for, or NULL */
};

static int
list_cert(const char *topic, void *arg, struct mdm_err *e)
{
	struct cert_list *cl = arg;
	X509 *c;
	int rc;

	if (cl->only != NULL && strcmp(cl->only, topic) != 0)
		return 0;
	if (mdm_pushcert_load(cl->st, topic, &c, NULL) == -1)
		return 0;
	rc = json_array_append_new(cl->arr, pushcert_json(topic, c));
	X509_free(c);
	if (rc == -1)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	return 0;
}

static void
pushcert_get(struct mdm_admin *a, const struct mdm_admin_request *q,
    struct mdm_admin_response *r)
{
	struct cert_list cl;
	struct mdm_err e = { 0 };
	char topic[MDM_PUSHCERT_TOPIC_MAX];
	int has;

	if ((has = query_param(q->query, "topic", topic, sizeof(topic))) ==
	    -1) {
		answer(r, 400, "bad-request", "topic: not a topic");
		return;
	}
	cl.st = a->st;
	cl.only = has == 1 ? topic : NULL;
	if ((cl.arr = json_array()) == NULL) {
		answer(r, 500, "error", "out of memory");
		return;
	}
	if (mdm_pushcert_foreach(a->st, list_cert, &cl, &e) == -1) {
		json_decref(cl.arr);
		answer_err(r, &e);
		return;
	}
	/* NanoMDM answers ?topic= with that one certificate. */
	if (cl.only != NULL) {
		if (json_array_size(cl.arr) == 0) {
			json_decref(cl.arr);
			answer(r, 404, "not-found", "no push certificate for "
			    "topic %.200s", topic);
			return;
		}
		answer_json(r, 200, "pushcert",
		    json_incref(json_array_get(cl.arr, 0)));
		json_decref(cl.arr);
		return;
	}
	answer_json(r, 200, "pushcert", json_pack("{s:o}", "pushcerts",
	    cl.arr));
}

/* ---- read endpoints ---- */

struct rows {
	json_t *arr;
	size_t limit;
	int truncated;
};

/* A full page: stops the foreach (told apart from an error by truncated). */
static int
rows_full(struct rows *rw, struct mdm_err *e)
{
	rw->truncated = 1;
	return mdm_err_set(e, MDM_E_OK, "limit reached");
}

static int
add_row(struct rows *rw, json_t *o, struct mdm_err *e)
{
	if (o == NULL || json_array_append_new(rw->arr, o) == -1)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	return 0;
}

static int
enrollment_row(const struct mdm_state_enrollment *en, void *arg,
    struct mdm_err *e)
{
	struct rows *rw = arg;

	if (json_array_size(rw->arr) >= rw->limit)
		return rows_full(rw, e);
	return add_row(rw, json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:b,s:o,"
	    "s:I,s:{s:o,s:o,s:o,s:b}}",
	    "id", en->id, "type", en->type,
	    "device_id", json_str_or_null(en->device_id),
	    "udid", json_str_or_null(en->udid),
	    "user_id", json_str_or_null(en->user_id),
	    "serial", json_str_or_null(en->serial_number),
	    "topic", json_str_or_null(en->topic),
	    "enabled", en->enabled,
	    "last_seen", json_time(en->last_seen_at),
	    "pending", (json_int_t)en->pending,
	    "push",
	    "last_push", json_time(en->last_push_at),
	    "last_status", en->last_push_status != 0 ?
	    json_integer(en->last_push_status) : json_null(),
	    "last_reason", json_str_or_null(en->last_push_reason),
	    "token_dead", en->token_dead), e);
}

static int
queue_row(const struct mdm_state_queue_row *row, void *arg, struct mdm_err *e)
{
	struct rows *rw = arg;

	if (json_array_size(rw->arr) >= rw->limit)
		return rows_full(rw, e);
	return add_row(rw, json_pack("{s:s,s:s,s:s,s:s,s:I,s:o,s:o}",
	    "id", row->enrollment_id, "command_uuid", row->command_uuid,
	    "request_type", row->request_type, "status", row->status,
	    "not_now_count", (json_int_t)row->not_now_count,
	    "sent_at", json_time(row->sent_at),
	    "created_at", json_time(row->created_at)), e);
}

static int
result_row(const struct mdm_state_result_row *row, void *arg,
    struct mdm_err *e)
{
	struct rows *rw = arg;
	json_t *chain = NULL;

	if (json_array_size(rw->arr) >= rw->limit)
		return rows_full(rw, e);
	if (row->error_chain != NULL)
		chain = json_loads(row->error_chain, 0, NULL);
	return add_row(rw, json_pack("{s:s,s:o,s:o,s:s,s:o,s:o}",
	    "id", row->enrollment_id,
	    "command_uuid", json_str_or_null(row->command_uuid),
	    "request_type", json_str_or_null(row->request_type),
	    "status", row->status,
	    "error_chain", chain != NULL ? chain : json_null(),
	    "received_at", json_time(row->received_at)), e);
}

enum listing { LIST_ENROLLMENTS, LIST_QUEUE, LIST_RESULTS };

static void
do_list(struct mdm_admin *a, const struct mdm_admin_request *q,
    enum listing what, const char *tail, struct mdm_admin_response *r)
{
	static const char *const names[] = { "enrollments", "commands",
		"results" };
	struct mdm_state_queue_filter f = { 0 };
	struct rows rw = { 0 };
	struct mdm_err e = { 0 };
	char id[MDM_QUEUE_ID_MAX + 1];
	int rc;

	if (parse_limit(q->query, &rw.limit) == -1) {
		answer(r, 400, "bad-request", "limit: not a number from 1 to "
		    "%d", MDM_ADMIN_LIMIT_MAX);
		return;
	}
	if (what != LIST_ENROLLMENTS && (tail[0] == '\0' ||
	    pct_decode(tail, strlen(tail), id, sizeof(id)) == -1 ||
	    strchr(id, '/') != NULL)) {
		answer(r, 400, "bad-request", "name one enrollment id in the "
		    "path");
		return;
	}
	if ((rw.arr = json_array()) == NULL) {
		answer(r, 500, "error", "out of memory");
		return;
	}
	switch (what) {
	case LIST_ENROLLMENTS:
		rc = mdm_state_enroll_foreach(a->st, NULL, enrollment_row,
		    &rw, &e);
		break;
	case LIST_QUEUE:
		f.key = id;
		f.statuses = MDM_STATE_Q_PENDING;
		rc = mdm_state_queue_foreach(a->st, &f, queue_row, &rw, &e);
		break;
	default:
		rc = mdm_state_queue_results_foreach(a->st, id, NULL,
		    result_row, &rw, &e);
		break;
	}
	if (rc == -1 && !rw.truncated) {
		json_decref(rw.arr);
		answer_err(r, &e);
		return;
	}
	answer_json(r, 200, names[what], json_pack("{s:o,s:b}", names[what],
	    rw.arr, "truncated", rw.truncated));
}

/* ---- the entry point ---- */

static void
do_metrics(struct mdm_admin *a, struct mdm_admin_response *r)
{
	struct mdm_metrics_scrape sc;
	struct mdm_err e = { 0 };

	sc.st = a->st;
	sc.ca = a->cfg->ca;
	sc.tls = a->cfg->tls;
	mdm_buf_reset(&r->body);
	if (mdm_metrics_render(a->cfg->metrics, &sc, &r->body, &e) == -1) {
		answer(r, 500, "error", "metrics: %s", e.msg);
		return;
	}
	r->status = 200;
	r->outcome = "metrics";
	r->content_type = MDM_METRICS_CONTENT_TYPE;
}

static int
is_get(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

void
mdm_admin_handle(struct mdm_admin *a, const struct mdm_admin_request *q,
    struct mdm_admin_response *r)
{
	const char *p = q->path != NULL ? q->path : "";
	const char *m = q->method != NULL ? q->method : "";

	mdm_buf_reset(&r->body);
	r->status = 500;
	r->content_type = NULL;
	r->www_authenticate = NULL;
	r->outcome = "error";
	r->reason[0] = '\0';
	if (strcmp(p, "/version") == 0) {
		if (!is_get(m))
			answer(r, 405, "method", "GET only");
		else
			answer_json(r, 200, "version", json_pack("{s:s}",
			    "version", MDM_VERSION));
		return;
	}
	if ((strcmp(p, "/metrics") == 0 && a->cfg->metrics == NULL) ||
	    (strcmp(p, "/metrics") != 0 && a->cfg->key == NULL) ||
	    !mdm_admin_route(p)) {
		answer(r, 404, "not-found", "no such endpoint");
		return;
	}
	if (a->cfg->key != NULL && !authorized(a, q->authorization)) {
		answer(r, 401, "unauthorized", "the API key is missing or "
		    "wrong");
		r->www_authenticate = REALM;
		return;
	}
	if (strcmp(p, "/metrics") == 0) {
		if (!is_get(m))
			answer(r, 405, "method", "GET only");
		else
			do_metrics(a, r);
	} else if (strncmp(p, "/v1/enqueue/", 12) == 0)
		do_enqueue(a, q, p + 12, r);
	else if (strncmp(p, "/v1/push/", 9) == 0)
		do_push(a, p + 9, r);
	else if (strcmp(p, "/v1/pushcert") == 0) {
		if (strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0)
			pushcert_put(a, q, r);
		else if (is_get(m))
			pushcert_get(a, q, r);
		else
			answer(r, 405, "method", "GET or PUT");
	} else if (!is_get(m) && (strcmp(p, "/v1/enrollments") == 0 ||
	    strncmp(p, "/v1/queue/", 10) == 0 ||
	    strncmp(p, "/v1/results/", 12) == 0))
		answer(r, 405, "method", "GET only");
	else if (strcmp(p, "/v1/enrollments") == 0)
		do_list(a, q, LIST_ENROLLMENTS, "", r);
	else if (strncmp(p, "/v1/queue/", 10) == 0)
		do_list(a, q, LIST_QUEUE, p + 10, r);
	else if (strncmp(p, "/v1/results/", 12) == 0)
		do_list(a, q, LIST_RESULTS, p + 12, r);
	else
		answer(r, 404, "not-found", "no such endpoint");
}
