/*
 * metrics: mdm-serve's counters and the Prometheus text exposition
 * (format 0.0.4) of GET /metrics.  A struct mdm_metrics owns a fixed set
 * of counters, shared by every worker thread; the gauges (queue depth,
 * enrollments, certificate expiry) are not kept here but read from the
 * state at scrape time, so they are right whichever tool changed it.
 *
 * Invariants:
 *  - counting never locks, allocates or fails: every counter is a C11
 *    atomic, bumped with relaxed ordering (a scrape may see one counter
 *    a request ahead of another; each is exact on its own);
 *  - the label sets are fixed at compile time, so the exposition has a
 *    bounded size whatever devices and clients send: a value outside a
 *    family's set is counted under "other";
 *  - every function taking a struct mdm_metrics * accepts NULL and then
 *    does nothing, so callers need not ask whether metrics are on;
 *  - the exposition only ever holds counts, times and certificate topics:
 *    no enrollment id, no secret.
 *
 * Families (all prefixed mdm_):
 *  checkins_total{message_type}          check-ins answered 200
 *  command_reports_total{status}         command reports answered 200
 *  device_refusals_total{outcome}        device requests refused (4xx)
 *  push_total{outcome}                   pushes of the admin API
 *  scep_requests_total{outcome}          /scep answers (issued, renewed, ...)
 *  http_requests_total{route,code}       every request, code "2xx".."5xx"
 *  http_request_duration_seconds{route}  histogram
 *  queue_rows{status}, queue_not_now, commands, results, enrollments,
 *  enrollments_pushable, certificate_not_after_seconds{kind,topic},
 *  state_up                              gauges read at scrape time
 */
#ifndef MDM_METRICS_H
#define MDM_METRICS_H

#include <stddef.h>

#include <openssl/x509.h>

#include "buf.h"
#include "err.h"
#include "push.h"
#include "state.h"

/* The Content-Type of the exposition. */
#define MDM_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* The largest exposition rendered (push topics are the only open set). */
#define MDM_METRICS_MAX		(1u << 20)

/* Where a request went, for the HTTP families. */
enum mdm_metrics_route {
	MDM_METRICS_ROUTE_MDM,		/* /mdm, /mdm/checkin, /mdm/connect */
	MDM_METRICS_ROUTE_API,		/* /v1/..., /version */
	MDM_METRICS_ROUTE_METRICS,	/* /metrics */
	MDM_METRICS_ROUTE_SCEP,		/* /scep */
	MDM_METRICS_ROUTE_ENROLL,	/* /mdm/enroll */
	MDM_METRICS_ROUTE_OTHER,
	MDM_METRICS_NROUTES
};

struct mdm_metrics;

/* *out owned: mdm_metrics_free.  Every counter starts at 0. */
int mdm_metrics_new(struct mdm_metrics **out, struct mdm_err *e);
void mdm_metrics_free(struct mdm_metrics *m);

/*
 * One request answered: status (100..599) and how long it took, in
 * microseconds (negative counts as 0).
 */
void mdm_metrics_request(struct mdm_metrics *m, enum mdm_metrics_route route,
    int status, long long us);
/*
 * What the device service made of a request: outcome and status as in
 * struct mdm_service_response.  A 200 counts as a check-in or a command
 * report by the outcome, a 4xx as a refusal; others only count through
 * mdm_metrics_request.
 */
void mdm_metrics_service(struct mdm_metrics *m, const char *outcome,
    int status);
/* One id's push outcome. */
void mdm_metrics_push(struct mdm_metrics *m, enum mdm_push_outcome o);
/*
 * One SCEP request answered, in us microseconds: its outcome, as struct
 * mdm_scep_response names it, which also gives the status class counted
 * for the scep route (the SCEP handler answers by itself).
 */
void mdm_metrics_scep(struct mdm_metrics *m, const char *outcome,
    long long us);

/* What a scrape reads besides the counters; everything borrowed. */
struct mdm_metrics_scrape {
	struct mdm_state *st;	/* gauges from mdm.db and STATE/push; NULL:
				   none (state_up is then not written) */
	X509 *ca;		/* the CA certificate, or NULL */
	X509 *tls;		/* the server's TLS certificate, or NULL */
};

/*
 * Appends the exposition to out (out's cap should allow MDM_METRICS_MAX).
 * A state that cannot be read is no failure: its gauges are left out and
 * mdm_state_up is 0.  Fails only when out is full or memory runs out.
 */
int mdm_metrics_render(struct mdm_metrics *m,
    const struct mdm_metrics_scrape *sc, struct mdm_buf *out,
    struct mdm_err *e);

/*
 * Appends s to out escaped as a label value: backslash, double quote and
 * line feed become \\, \" and \n.
 */
int mdm_metrics_escape(const char *s, struct mdm_buf *out, struct mdm_err *e);

#endif
