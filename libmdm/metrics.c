#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>

#include "metrics.h"
#include "pushcert.h"
#include "state_queue.h"
#include "version.h"
#include "x509.h"
#include "mdm_int.h"

/* Prometheus' default buckets, in microseconds, to compare integers. */
static const long long bucket_us[] = {
	5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
	2500000, 5000000, 10000000,
};
static const char *const bucket_le[] = {
	"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
	"2.5", "5", "10",
};
#define NBUCKETS	MDM_ARRAY_LEN(bucket_us)

static const char *const route_names[MDM_METRICS_NROUTES] = {
	"mdm", "api", "metrics", "scep", "enroll", "other",
};

/*
 * A label set: outcome strings as the service and SCEP name them, mapped
 * onto the label value exposed.  The last value of each family is
 * "other" (anything unlisted).
 */
struct label_map {
	const char *outcome;
	unsigned slot;
};

static const char *const checkin_labels[] = {
	"Authenticate", "TokenUpdate", "CheckOut", "UserAuthenticate",
	"SetBootstrapToken", "GetBootstrapToken", "DeclarativeManagement",
	"GetToken", "other",
};
static const struct label_map checkin_map[] = {
	{ "authenticate", 0 }, { "token-update", 1 }, { "check-out", 2 },
	{ "user-authenticated", 3 }, { "user-challenge", 3 },
	{ "declined", 3 }, { "bootstrap-stored", 4 }, { "bootstrap-sent", 5 },
	{ "bootstrap-none", 5 }, { "declarative", 6 }, { "dm-failed", 6 },
	{ "token", 7 },
};

/*
 * Command reports, by the service's outcome: a stored result is named by
 * its status; "result" is one of any other status.
 */
static const char *const report_labels[] = {
	"Idle", "Acknowledged", "Error", "CommandFormatError", "NotNow",
	"Result", "Unparseable", "UnknownCommand", "Orphan", "other",
};
static const struct label_map report_map[] = {
	{ "idle", 0 }, { "acknowledged", 1 }, { "command-error", 2 },
	{ "format-error", 3 }, { "not-now", 4 }, { "result", 5 },
	{ "unparseable", 6 }, { "unknown-command", 7 }, { "orphan", 8 },
};

static const char *const refusal_labels[] = {
	"refused", "malformed", "unauthenticated", "method", "not-found",
	"too-large", "other",
};

static const char *const scep_labels[] = {
	"caps", "cacert", "issued", "renewed", "resent", "poll", "cert",
	"crl", "failure:badAlg", "failure:badMessageCheck",
	"failure:badRequest", "failure:badTime", "failure:badCertId",
	"invalid", "not-found", "method", "too-large", "error", "busy",
	"other",
};

#define NCHECKIN	MDM_ARRAY_LEN(checkin_labels)
#define NREPORT		MDM_ARRAY_LEN(report_labels)
#define NREFUSAL	MDM_ARRAY_LEN(refusal_labels)
#define NSCEP		MDM_ARRAY_LEN(scep_labels)

struct mdm_metrics {
	atomic_ullong checkins[NCHECKIN];
	atomic_ullong reports[NREPORT];
	atomic_ullong refusals[NREFUSAL];
	atomic_ullong push[MDM_PUSH_NOUTCOMES];
	atomic_ullong scep[NSCEP];
	atomic_ullong requests[MDM_METRICS_NROUTES][5];	/* 1xx..5xx */
	/* Per bucket, not cumulative: made cumulative when rendered. */
	atomic_ullong buckets[MDM_METRICS_NROUTES][NBUCKETS];
	atomic_ullong count[MDM_METRICS_NROUTES];
	atomic_ullong sum_us[MDM_METRICS_NROUTES];
};

static void
bump(atomic_ullong *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned long long
load(atomic_ullong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

int
mdm_metrics_new(struct mdm_metrics **out, struct mdm_err *e)
{
	struct mdm_metrics *m;
	size_t i, j;

	if ((m = malloc(sizeof(*m))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	for (i = 0; i < NCHECKIN; i++)
		atomic_init(&m->checkins[i], 0);
	for (i = 0; i < NREPORT; i++)
		atomic_init(&m->reports[i], 0);
	for (i = 0; i < NREFUSAL; i++)
		atomic_init(&m->refusals[i], 0);
	for (i = 0; i < MDM_PUSH_NOUTCOMES; i++)
		atomic_init(&m->push[i], 0);
	for (i = 0; i < NSCEP; i++)
		atomic_init(&m->scep[i], 0);
	for (i = 0; i < MDM_METRICS_NROUTES; i++) {
		for (j = 0; j < 5; j++)
			atomic_init(&m->requests[i][j], 0);
		for (j = 0; j < NBUCKETS; j++)
			atomic_init(&m->buckets[i][j], 0);
		atomic_init(&m->count[i], 0);
		atomic_init(&m->sum_us[i], 0);
	}
	*out = m;
	return 0;
}

void
mdm_metrics_free(struct mdm_metrics *m)
{
	free(m);
}

void
mdm_metrics_request(struct mdm_metrics *m, enum mdm_metrics_route route,
    int status, long long us)
{
	size_t i;

	if (m == NULL)
		return;
	if ((unsigned)route >= MDM_METRICS_NROUTES)
		route = MDM_METRICS_ROUTE_OTHER;
	if (us < 0)
		us = 0;
	if (status >= 100 && status <= 599)
		bump(&m->requests[route][status / 100 - 1]);
	for (i = 0; i < NBUCKETS && us > bucket_us[i]; i++)
		;
	if (i < NBUCKETS)
		bump(&m->buckets[route][i]);
	bump(&m->count[route]);
	atomic_fetch_add_explicit(&m->sum_us[route], (unsigned long long)us,
	    memory_order_relaxed);
}

/* The slot of outcome in map, else other. */
static unsigned
map_slot(const struct label_map *map, size_t n, const char *outcome,
    unsigned other)
{
	size_t i;

	for (i = 0; outcome != NULL && i < n; i++)
		if (strcmp(map[i].outcome, outcome) == 0)
			return map[i].slot;
	return other;
}

static unsigned
label_slot(const char *const *labels, size_t n, const char *outcome)
{
	size_t i;

	for (i = 0; outcome != NULL && i + 1 < n; i++)
		if (strcmp(labels[i], outcome) == 0)
			return (unsigned)i;
	return (unsigned)(n - 1);
}

void
mdm_metrics_service(struct mdm_metrics *m, const char *outcome, int status)
{
	unsigned slot;

	if (m == NULL)
		return;
	if (status >= 400 && status < 500) {
		bump(&m->refusals[label_slot(refusal_labels, NREFUSAL,
		    outcome)]);
		return;
	}
	if (status != 200)
		return;
	slot = map_slot(checkin_map, MDM_ARRAY_LEN(checkin_map), outcome,
	    UINT_MAX);
	if (slot != UINT_MAX) {
		bump(&m->checkins[slot]);
		return;
	}
	bump(&m->reports[map_slot(report_map, MDM_ARRAY_LEN(report_map),
	    outcome, NREPORT - 1)]);
}

void
mdm_metrics_push(struct mdm_metrics *m, enum mdm_push_outcome o)
{
	if (m == NULL || (unsigned)o >= MDM_PUSH_NOUTCOMES)
		return;
	bump(&m->push[o]);
}

/* The status each non-200 outcome of scep.h stands for. */
static const struct label_map scep_status[] = {
	{ "invalid", 400 }, { "not-found", 404 }, { "method", 405 },
	{ "too-large", 413 }, { "error", 500 }, { "busy", 503 },
};

void
mdm_metrics_scep(struct mdm_metrics *m, const char *outcome, long long us)
{
	if (m == NULL)
		return;
	bump(&m->scep[label_slot(scep_labels, NSCEP, outcome)]);
	mdm_metrics_request(m, MDM_METRICS_ROUTE_SCEP,
	    (int)map_slot(scep_status, MDM_ARRAY_LEN(scep_status), outcome,
	    200), us);
}

int
mdm_metrics_escape(const char *s, struct mdm_buf *out, struct mdm_err *e)
{
	size_t n;

	while (*s != '\0') {
		n = strcspn(s, "\\\"\n");
		if (n > 0 && mdm_buf_append(out, s, n, e) == -1)
			return -1;
		s += n;
		if (*s == '\0')
			break;
		if (mdm_buf_append_str(out, *s == '\\' ? "\\\\" : *s == '"' ?
		    "\\\"" : "\\n", e) == -1)
			return -1;
		s++;
	}
	return 0;
}

static int
header(struct mdm_buf *out, const char *name, const char *type,
    const char *help, struct mdm_err *e)
{
	return mdm_buf_printf(out, e, "# HELP mdm_%s %s\n# TYPE mdm_%s %s\n",
	    name, help, name, type);
}

/* A family with one label over a fixed label set. */
static int
family(struct mdm_buf *out, const char *name, const char *help,
    const char *label, const char *const *values, atomic_ullong *counts,
    size_t n, struct mdm_err *e)
{
	size_t i;

	if (header(out, name, "counter", help, e) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (mdm_buf_printf(out, e, "mdm_%s{%s=\"%s\"} %llu\n", name,
		    label, values[i], load(&counts[i])) == -1)
			return -1;
	return 0;
}

static int
render_http(struct mdm_metrics *m, struct mdm_buf *out, struct mdm_err *e)
{
	unsigned long long cum;
	size_t r, i;

	if (header(out, "http_requests_total", "counter", "HTTP requests "
	    "answered, by route and status class.", e) == -1)
		return -1;
	for (r = 0; r < MDM_METRICS_NROUTES; r++)
		for (i = 0; i < 5; i++)
			if (mdm_buf_printf(out, e, "mdm_http_requests_total"
			    "{route=\"%s\",code=\"%zuxx\"} %llu\n",
			    route_names[r], i + 1,
			    load(&m->requests[r][i])) == -1)
				return -1;
	if (header(out, "http_request_duration_seconds", "histogram",
	    "Time from the request read to the answer made.", e) == -1)
		return -1;
	for (r = 0; r < MDM_METRICS_NROUTES; r++) {
		unsigned long long count = load(&m->count[r]);
		unsigned long long sum = load(&m->sum_us[r]);

		cum = 0;
		for (i = 0; i < NBUCKETS; i++) {
			cum += load(&m->buckets[r][i]);
			/* Loaded apart from count: never show more. */
			if (cum > count)
				cum = count;
			if (mdm_buf_printf(out, e,
			    "mdm_http_request_duration_seconds_bucket"
			    "{route=\"%s\",le=\"%s\"} %llu\n", route_names[r],
			    bucket_le[i], cum) == -1)
				return -1;
		}
		if (mdm_buf_printf(out, e,
		    "mdm_http_request_duration_seconds_bucket"
		    "{route=\"%s\",le=\"+Inf\"} %llu\n"
		    "mdm_http_request_duration_seconds_sum{route=\"%s\"} "
		    "%llu.%06llu\n"
		    "mdm_http_request_duration_seconds_count{route=\"%s\"} "
		    "%llu\n", route_names[r], count, route_names[r],
		    sum / 1000000, sum % 1000000, route_names[r], count) == -1)
			return -1;
	}
	return 0;
}

/* notAfter as unix seconds; 0 when it cannot be read. */
static long long
not_after(X509 *c)
{
	struct mdm_x509_info info;

	if (c == NULL || mdm_x509_inspect(c, &info, NULL) == -1)
		return 0;
	return (long long)info.not_after;
}

static int
cert_line(struct mdm_buf *out, const char *kind, const char *topic, X509 *c,
    struct mdm_err *e)
{
	if (mdm_buf_printf(out, e, "mdm_certificate_not_after_seconds"
	    "{kind=\"%s\",topic=\"", kind) == -1 ||
	    mdm_metrics_escape(topic, out, e) == -1 ||
	    mdm_buf_printf(out, e, "\"} %lld\n", not_after(c)) == -1)
		return -1;
	return 0;
}

struct push_scan {
	struct mdm_state *st;
	struct mdm_buf *out;
	struct mdm_err *e;
	int failed;		/* out is full: stop, and say so */
};

static int
push_cert(const char *topic, void *arg, struct mdm_err *e)
{
	/* e is the listing's; ps->e the caller's, for a full out. */
	struct push_scan *ps = arg;
	X509 *c;
	int rc;

	/* One unreadable file hides only its own line. */
	if (mdm_pushcert_load(ps->st, topic, &c, NULL) == -1)
		return 0;
	rc = cert_line(ps->out, "push", topic, c, ps->e);
	X509_free(c);
	if (rc == -1) {
		ps->failed = 1;
		return mdm_err_set(e, MDM_E_TOOBIG, "metrics too large");
	}
	return 0;
}

static int
render_state(const struct mdm_metrics_scrape *sc, struct mdm_buf *out,
    struct mdm_err *e)
{
	static const char *const qnames[] = {
		"pending", "acknowledged", "error", "format_error",
		"unparseable", "cancelled", "superseded",
	};
	struct mdm_state_queue_counts qc;
	int64_t v[7];
	size_t i;
	int up;

	up = mdm_state_queue_counts(sc->st, &qc, NULL) == 0;
	if (header(out, "state_up", "gauge", "1 when this scrape could read "
	    "the state, else 0.", e) == -1 ||
	    mdm_buf_printf(out, e, "mdm_state_up %d\n", up) == -1)
		return -1;
	if (up) {
		v[0] = qc.pending;
		v[1] = qc.acknowledged;
		v[2] = qc.error;
		v[3] = qc.format_error;
		v[4] = qc.unparseable;
		v[5] = qc.cancelled;
		v[6] = qc.superseded;
		if (header(out, "queue_rows", "gauge", "Queue rows (enrollment, "
		    "command) by status.", e) == -1)
			return -1;
		for (i = 0; i < MDM_ARRAY_LEN(qnames); i++)
			if (mdm_buf_printf(out, e, "mdm_queue_rows"
			    "{status=\"%s\"} %lld\n", qnames[i],
			    (long long)v[i]) == -1)
				return -1;
		if (header(out, "queue_not_now", "gauge", "Pending rows a "
		    "device has answered NotNow.", e) == -1 ||
		    mdm_buf_printf(out, e, "mdm_queue_not_now %lld\n",
		    (long long)qc.not_now) == -1 ||
		    header(out, "commands", "gauge", "Commands stored.",
		    e) == -1 ||
		    mdm_buf_printf(out, e, "mdm_commands %lld\n",
		    (long long)qc.commands) == -1 ||
		    header(out, "results", "gauge", "Command results stored.",
		    e) == -1 ||
		    mdm_buf_printf(out, e, "mdm_results %lld\n",
		    (long long)qc.results) == -1 ||
		    header(out, "enrollments", "gauge", "Enrollments, device "
		    "and user channels.", e) == -1 ||
		    mdm_buf_printf(out, e, "mdm_enrollments %lld\n",
		    (long long)qc.enrollments) == -1 ||
		    header(out, "enrollments_pushable", "gauge", "Enabled "
		    "enrollments with a live push token.", e) == -1 ||
		    mdm_buf_printf(out, e, "mdm_enrollments_pushable %lld\n",
		    (long long)qc.pushable) == -1)
			return -1;
	}
	return 0;
}

static int
render_certs(const struct mdm_metrics_scrape *sc, struct mdm_buf *out,
    struct mdm_err *e)
{
	struct mdm_err le = { 0 };
	struct push_scan ps;

	if (header(out, "certificate_not_after_seconds", "gauge", "Expiry "
	    "of the certificates the server uses, unix seconds.", e) == -1)
		return -1;
	if (sc->ca != NULL && cert_line(out, "ca", "", sc->ca, e) == -1)
		return -1;
	if (sc->tls != NULL && cert_line(out, "tls", "", sc->tls, e) == -1)
		return -1;
	if (sc->st == NULL)
		return 0;
	ps.st = sc->st;
	ps.out = out;
	ps.e = e;
	ps.failed = 0;
	/* A push directory that cannot be listed only hides its lines. */
	(void)mdm_pushcert_foreach(sc->st, push_cert, &ps, &le);
	return ps.failed ? -1 : 0;
}

int
mdm_metrics_render(struct mdm_metrics *m, const struct mdm_metrics_scrape *sc,
    struct mdm_buf *out, struct mdm_err *e)
{
	const char *push_labels[MDM_PUSH_NOUTCOMES];
	size_t i;

	if (m == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "metrics are off");
	for (i = 0; i < MDM_PUSH_NOUTCOMES; i++)
		push_labels[i] = mdm_push_outcome_name((enum mdm_push_outcome)i);
	if (header(out, "build_info", "gauge", "The version of mdm-serve.",
	    e) == -1 ||
	    mdm_buf_printf(out, e, "mdm_build_info{version=\"%s\"} 1\n",
	    MDM_VERSION) == -1 ||
	    family(out, "checkins_total", "Check-in messages answered 200, "
	    "by MessageType.", "message_type", checkin_labels, m->checkins,
	    NCHECKIN, e) == -1 ||
	    family(out, "command_reports_total", "Command reports answered "
	    "200, by Status.", "status", report_labels, m->reports, NREPORT,
	    e) == -1 ||
	    family(out, "device_refusals_total", "Device requests refused, "
	    "by reason.", "outcome", refusal_labels, m->refusals, NREFUSAL,
	    e) == -1 ||
	    family(out, "push_total", "APNs pushes of the admin API, by "
	    "outcome.", "outcome", push_labels, m->push, MDM_PUSH_NOUTCOMES,
	    e) == -1 ||
	    family(out, "scep_requests_total", "SCEP requests, by outcome.",
	    "outcome", scep_labels, m->scep, NSCEP, e) == -1 ||
	    render_http(m, out, e) == -1)
		return -1;
	if (sc == NULL)
		return 0;
	if (sc->st != NULL && render_state(sc, out, e) == -1)
		return -1;
	return render_certs(sc, out, e);
}
