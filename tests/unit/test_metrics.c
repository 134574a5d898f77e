/*
 * test_metrics: the counters of libmdm/metrics and their exposition:
 * every line parses as a comment or `name{labels} value`, each family
 * has one TYPE, counters count, histogram buckets are cumulative and
 * end at +Inf = count, label values are escaped, threads count exactly,
 * and a state's gauges appear.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "state.h"
#include "tap.h"
#include "x509.h"

/* The value of the sample line "series value", or -1 when absent. */
static double
sample(const struct mdm_buf *b, const char *series)
{
	const char *p = (const char *)b->data;
	size_t n = strlen(series);

	while (p != NULL && *p != '\0') {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

/*
 * Checks the text format line by line; 0 when every line is a comment
 * (# HELP / # TYPE) or a sample with a metric name, optional well-formed
 * labels and a number.
 */
static int
parse_all(const struct mdm_buf *b, int *samples)
{
	char line[4096], *p, *end;
	const char *s = (const char *)b->data, *nl;
	size_t len;

	*samples = 0;
	if (b->len == 0 || b->data[b->len - 1] != '\n')
		return -1;
	while (*s != '\0') {
		nl = strchr(s, '\n');
		len = (size_t)(nl - s);
		if (len >= sizeof(line))
			return -1;
		memcpy(line, s, len);
		line[len] = '\0';
		s = nl + 1;
		if (strncmp(line, "# HELP mdm_", 11) == 0 ||
		    strncmp(line, "# TYPE mdm_", 11) == 0)
			continue;
		p = line;
		if (strncmp(p, "mdm_", 4) != 0)
			return -1;
		while ((*p >= 'a' && *p <= 'z') || *p == '_' ||
		    (*p >= '0' && *p <= '9'))
			p++;
		if (*p == '{') {
			p++;
			for (;;) {
				while ((*p >= 'a' && *p <= 'z') || *p == '_')
					p++;
				if (*p++ != '=' || *p++ != '"')
					return -1;
				while (*p != '"' && *p != '\0') {
					if (*p == '\\' && (p[1] == '\\' ||
					    p[1] == '"' || p[1] == 'n'))
						p++;
					else if (*p == '\\')
						return -1;
					p++;
				}
				if (*p++ != '"')
					return -1;
				if (*p == ',') {
					p++;
					continue;
				}
				if (*p++ != '}')
					return -1;
				break;
			}
		}
		if (*p++ != ' ')
			return -1;
		strtod(p, &end);
		if (end == p || *end != '\0')
			return -1;
		(*samples)++;
	}
	return 0;
}

/* Buckets of route are non-decreasing and +Inf equals _count. */
static int
buckets_ok(const struct mdm_buf *b, const char *route)
{
	static const char *const le[] = { "0.005", "0.01", "0.025", "0.05",
		"0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf" };
	char series[200];
	double prev = 0, v;
	size_t i;

	for (i = 0; i < sizeof(le) / sizeof(le[0]); i++) {
		snprintf(series, sizeof(series),
		    "mdm_http_request_duration_seconds_bucket{route=\"%s\","
		    "le=\"%s\"}", route, le[i]);
		if ((v = sample(b, series)) < prev)
			return 0;
		prev = v;
	}
	snprintf(series, sizeof(series),
	    "mdm_http_request_duration_seconds_count{route=\"%s\"}", route);
	return sample(b, series) == prev;
}

static struct mdm_metrics *shared;

static void *
hammer(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 10000; i++) {
		mdm_metrics_service(shared, "idle", 200);
		mdm_metrics_request(shared, MDM_METRICS_ROUTE_MDM, 200, 1000);
	}
	return NULL;
}

int
main(void)
{
	struct mdm_metrics *m = NULL;
	struct mdm_metrics_scrape sc = { 0 };
	struct mdm_state *st = NULL;
	struct mdm_buf b;
	struct mdm_x509_opts o = { .kind = MDM_X509_CA,
	    .common_name = "metrics CA", .days = 30 };
	struct mdm_x509_info info;
	EVP_PKEY *k = NULL;
	X509 *ca = NULL;
	pthread_t t[4];
	char want[128];
	int n, i;

	mdm_buf_init(&b, MDM_METRICS_MAX);

	/* NULL is a no-op everywhere. */
	mdm_metrics_request(NULL, MDM_METRICS_ROUTE_API, 200, 5);
	mdm_metrics_service(NULL, "idle", 200);
	mdm_metrics_push(NULL, MDM_PUSH_OK);
	mdm_metrics_scep(NULL, "issued", 5);
	ok(mdm_metrics_render(NULL, NULL, &b, NULL) == -1, "render of no "
	    "metrics fails");

	ok(mdm_metrics_new(&m, NULL) == 0, "new");
	ok(mdm_metrics_render(m, NULL, &b, NULL) == 0, "render when nothing "
	    "was counted");
	ok(parse_all(&b, &n) == 0 && n > 100, "every line parses (%d samples)",
	    n);
	is_int((long long)sample(&b, "mdm_checkins_total{message_type="
	    "\"Authenticate\"}"), 0, "counters start at 0");
	ok(buckets_ok(&b, "mdm"), "empty histogram is consistent");
	ok(strstr((const char *)b.data, "# TYPE mdm_http_request_duration_"
	    "seconds histogram\n") != NULL, "histogram TYPE");
	ok(strstr((const char *)b.data, "mdm_state_up") == NULL, "no state: "
	    "no state_up");

	/* Counting. */
	mdm_metrics_service(m, "authenticate", 200);
	mdm_metrics_service(m, "token-update", 200);
	mdm_metrics_service(m, "token-update", 200);
	mdm_metrics_service(m, "idle", 200);
	mdm_metrics_service(m, "not-now", 200);
	mdm_metrics_service(m, "acknowledged", 200);
	mdm_metrics_service(m, "refused", 400);
	mdm_metrics_service(m, "something-new", 400);
	mdm_metrics_service(m, "busy", 503);
	mdm_metrics_service(m, "zzz", 200);
	mdm_metrics_push(m, MDM_PUSH_OK);
	mdm_metrics_push(m, MDM_PUSH_TOKEN_DEAD);
	mdm_metrics_push(m, (enum mdm_push_outcome)999);
	mdm_metrics_scep(m, "issued", 20000);
	mdm_metrics_scep(m, "busy", 100);
	mdm_metrics_scep(m, "weird", 100);
	mdm_metrics_request(m, MDM_METRICS_ROUTE_API, 200, 3000);
	mdm_metrics_request(m, MDM_METRICS_ROUTE_API, 401, 7000);
	mdm_metrics_request(m, MDM_METRICS_ROUTE_API, 500, 60000000);
	mdm_metrics_request(m, MDM_METRICS_ROUTE_API, 200, -5);
	mdm_metrics_request(m, (enum mdm_metrics_route)77, 999, 5);
	mdm_buf_reset(&b);
	ok(mdm_metrics_render(m, NULL, &b, NULL) == 0, "render");
	ok(parse_all(&b, &n) == 0, "every line parses");
#define IS(series, v) is_int((long long)sample(&b, series), v, series)
	IS("mdm_checkins_total{message_type=\"Authenticate\"}", 1);
	IS("mdm_checkins_total{message_type=\"TokenUpdate\"}", 2);
	IS("mdm_command_reports_total{status=\"Idle\"}", 1);
	IS("mdm_command_reports_total{status=\"NotNow\"}", 1);
	IS("mdm_command_reports_total{status=\"Acknowledged\"}", 1);
	IS("mdm_command_reports_total{status=\"other\"}", 1);
	IS("mdm_device_refusals_total{outcome=\"refused\"}", 1);
	IS("mdm_device_refusals_total{outcome=\"other\"}", 1);
	IS("mdm_push_total{outcome=\"ok\"}", 1);
	IS("mdm_push_total{outcome=\"token-dead\"}", 1);
	IS("mdm_scep_requests_total{outcome=\"issued\"}", 1);
	IS("mdm_scep_requests_total{outcome=\"other\"}", 1);
	IS("mdm_http_requests_total{route=\"scep\",code=\"2xx\"}", 2);
	IS("mdm_http_requests_total{route=\"scep\",code=\"5xx\"}", 1);
	IS("mdm_http_requests_total{route=\"api\",code=\"2xx\"}", 2);
	IS("mdm_http_requests_total{route=\"api\",code=\"4xx\"}", 1);
	IS("mdm_http_requests_total{route=\"api\",code=\"5xx\"}", 1);
	IS("mdm_http_request_duration_seconds_bucket{route=\"api\","
	    "le=\"0.005\"}", 2);
	IS("mdm_http_request_duration_seconds_bucket{route=\"api\","
	    "le=\"0.01\"}", 3);
	IS("mdm_http_request_duration_seconds_bucket{route=\"api\","
	    "le=\"10\"}", 3);
	IS("mdm_http_request_duration_seconds_bucket{route=\"api\","
	    "le=\"+Inf\"}", 4);
	IS("mdm_http_request_duration_seconds_count{route=\"other\"}", 1);
	ok(sample(&b, "mdm_http_request_duration_seconds_sum{route=\"api\"}")
	    == 60.01, "sum in seconds");
	ok(buckets_ok(&b, "api") && buckets_ok(&b, "scep") &&
	    buckets_ok(&b, "other"), "buckets cumulative, +Inf = count");
	snprintf(want, sizeof(want), "mdm_build_info{version=\"");
	ok(strstr((const char *)b.data, want) != NULL, "build_info");

	/* Escaping. */
	mdm_buf_reset(&b);
	ok(mdm_metrics_escape("a\\b\"c\nd", &b, NULL) == 0 && b.len == 10 &&
	    memcmp(b.data, "a\\\\b\\\"c\\nd", 10) == 0, "label escaping");

	/* Threads: atomics lose nothing. */
	mdm_metrics_free(m);
	ok(mdm_metrics_new(&shared, NULL) == 0, "new shared");
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, NULL);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	mdm_buf_reset(&b);
	mdm_metrics_render(shared, NULL, &b, NULL);
	IS("mdm_command_reports_total{status=\"Idle\"}", 40000);
	IS("mdm_http_request_duration_seconds_bucket{route=\"mdm\","
	    "le=\"0.001\"}", -1);
	IS("mdm_http_request_duration_seconds_bucket{route=\"mdm\","
	    "le=\"0.005\"}", 40000);
	ok(sample(&b, "mdm_http_request_duration_seconds_sum{route=\"mdm\"}")
	    == 40.0, "sum of 40000 ms");

	/* Gauges from a state, certificates by kind and topic. */
	mdm_crypto_init(NULL);
	if (mdm_state_open(tap_tmpdir(), MDM_STATE_CREATE, &st, NULL) == -1 ||
	    mdm_x509_gen_rsa(2048, &k, NULL) == -1 ||
	    mdm_x509_self_sign(k, &o, &ca, NULL) == -1 ||
	    mdm_x509_inspect(ca, &info, NULL) == -1)
		abort();
	{
		struct mdm_buf pem;

		mdm_buf_init(&pem, MDM_CAP_CERT);
		if (mdm_x509_cert_to_pem(ca, &pem, NULL) == -1 ||
		    mdm_state_write_file(st, "push/com.apple.mgmt.t1.pem",
		    pem.data, pem.len, 0644, 0, NULL) == -1)
			abort();
		mdm_buf_release(&pem);
	}
	sc.st = st;
	sc.ca = ca;
	mdm_buf_reset(&b);
	ok(mdm_metrics_render(shared, &sc, &b, NULL) == 0, "render with a "
	    "state");
	ok(parse_all(&b, &n) == 0, "every line parses");
	IS("mdm_state_up", 1);
	IS("mdm_queue_rows{status=\"pending\"}", 0);
	IS("mdm_enrollments", 0);
	IS("mdm_enrollments_pushable", 0);
	IS("mdm_certificate_not_after_seconds{kind=\"ca\",topic=\"\"}",
	    (long long)info.not_after);
	IS("mdm_certificate_not_after_seconds{kind=\"push\","
	    "topic=\"com.apple.mgmt.t1\"}", (long long)info.not_after);

	mdm_metrics_free(shared);
	mdm_state_close(st);
	X509_free(ca);
	EVP_PKEY_free(k);
	mdm_buf_release(&b);
	return tap_done();
}
